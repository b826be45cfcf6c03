"""Cold refresh of two source trees, alternated: A B A B ..., each run in a fresh process.

    .venv/bin/python benchmarks/compare_refresh.py /work/main . [--rounds 3] [--corpus DIR]

On a shared machine one run's wall time says more about the load than about the code;
runs of two trees taken in turns see the same load, so their ratio is what to compare.
Each run times ``WorkspaceIndex(corpus, cache_dir=<empty temporary folder>).refresh()``
(crawl, chunking, fingerprints, postings, save: "lexical ready" of ``bench_index.py``)
with the given tree's ``lsp_server`` first on ``sys.path``; it prints wall and CPU seconds
of each run, then min and median per tree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sqlalchemy"

_CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from threadpoolctl import threadpool_limits
threadpool_limits(limits=1, user_api="blas")  # as the server does
from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex
with tempfile.TemporaryDirectory() as tmp:
    workspace = WorkspaceIndex(Path(sys.argv[2]), WorkspaceConfig(cache_dir=Path(tmp)))
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = workspace.refresh()
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu0, "chunks": report.chunks,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(tree: Path, corpus: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(corpus)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="a source tree (its lsp_server package is used)")
    parser.add_argument("b", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            result = _run(tree, args.corpus)
            runs[name].append(result)
            print(f"{name} {tree}: {result['wall']:.2f} s wall, {result['cpu']:.2f} s CPU, "
                  f"{result['chunks']:,} chunks, peak RSS {result['rss_mb']:.0f} MB", flush=True)
    for name, tree in trees.items():
        walls = [r["wall"] for r in runs[name]]
        cpus = [r["cpu"] for r in runs[name]]
        print(f"{name} {tree}: wall min {min(walls):.1f} / median {statistics.median(walls):.1f} s, "
              f"CPU min {min(cpus):.1f} / median {statistics.median(cpus):.1f} s")


if __name__ == "__main__":
    main()
