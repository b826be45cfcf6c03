"""What completions keep of a workspace: memory and lookup time once every file is read.

    .venv/bin/python benchmarks/bench_workspace_context.py [/work/shared/corpus/sqlalchemy] [--queries 200]

The language server reads the workspace's files for two things on every completion:
retrieval (similar 8-line windows for the prompt) and line memory (lines that already
exist).  It reads them ahead in slices after a document opens (``Retriever.warm``) and
keeps them.  This script does the same reading in one go and reports the wall and CPU
time it takes, the peak resident memory it adds, and, for randomly chosen cursor
positions (a line cut after its first tokens), the time of one retrieval over every file
and of line memory's candidates over every file, p50 and p95, with those first tokens
typed and with the line still empty (its candidates then come from the lines around it).
Completions themselves stop reading at a time cap (``RetrievalConfig.time_cap_s``); here
the cap is lifted so that every file counts.  The figures in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import pct, peak_rss_mb  # noqa: E402
from lsp_server.line_memory import LineMemory  # noqa: E402
from lsp_server.retrieval import RetrievalConfig, Retriever  # noqa: E402

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sqlalchemy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", default=DEFAULT_CORPUS)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.root.is_dir():
        parser.error(f"not a folder: {args.root}")
    files = sorted(p for p in args.root.rglob("*.py") if p.is_file())
    if not files:
        parser.error(f"no Python files under {args.root}")

    rss0 = peak_rss_mb()
    retriever = Retriever(RetrievalConfig(time_cap_s=1e9))
    current = args.root / "__bench__.py"  # a file that is not there: every file is a source
    t0, cpu0 = time.perf_counter(), time.process_time()
    while not retriever.warm(current, args.root, time_cap_s=0.05):
        pass
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss1 = peak_rss_mb()

    rng = random.Random(args.seed)
    memory = LineMemory()
    retrieve_ms, memory_ms, empty_ms = [], [], []
    while len(retrieve_ms) < args.queries:
        path = rng.choice(files)
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        candidates = [i for i, line in enumerate(lines) if len(line.split()) >= 2]
        if not candidates:
            continue
        i = rng.choice(candidates)
        indent = len(lines[i]) - len(lines[i].lstrip())
        cut = indent + len(lines[i].split()[0]) + 1  # the first word and a space typed
        prefix = "\n".join(lines[:i] + [lines[i][:cut]])
        suffix = "\n" + "\n".join(lines[i + 1:])
        t = time.perf_counter()
        retriever.retrieve(path, "\n".join(lines[:i]), {}, args.root)
        retrieve_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        memory.candidates(prefix, suffix, retriever.file_lines(path, {}, args.root))
        memory_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        memory.candidates(prefix[: len(prefix) - cut + indent], suffix, retriever.file_lines(path, {}, args.root))
        empty_ms.append(1000 * (time.perf_counter() - t))

    chars = sum(len(p.read_text(encoding="utf-8", errors="replace")) for p in files)
    print(f"workspace: {args.root} ({len(files)} Python files, {chars / 1e6:.1f} M chars)")
    print(f"read every file: {read_s:.1f} s wall, {read_cpu:.1f} s CPU; peak RSS {rss0:.0f} -> {rss1:.0f} MB "
          f"(+{rss1 - rss0:.0f} MB)")
    for name, values in (("retrieval", retrieve_ms), ("line memory", memory_ms),
                         ("line memory, empty line", empty_ms)):
        print(f"{name} over every file ({len(values)} positions): p50 {statistics.median(values):.1f} ms, "
              f"p95 {pct(values, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
