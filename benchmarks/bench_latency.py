"""Single-line completion latency through the real language server, as an editor sees it.

Opens a 2,000-line Python file, then simulates typing: at each of N cursor lines it types a
few characters one by one (didChange) and asks for an inline completion after each
keystroke.  Reports p50/p95 of request latency with the static-prompt cache on and off and
with token healing off (healing re-reads the cursor's line once more per request),
the first keystroke on each line apart (its prompt is new: nothing is cached yet), and the
server's resident memory at the end.

    .venv/bin/python benchmarks/bench_latency.py [--model DIR] [--lines 30] [--keys 4] [--setting NAME=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.measure import pct  # noqa: E402
from lsp_server.client import running_server  # noqa: E402
from training.cli import setting_pair  # noqa: E402


def two_thousand_lines() -> str:
    src = Path(sysconfig.get_paths()["stdlib"]) / "argparse.py"
    return "\n".join(src.read_text().split("\n")[:2000]) + "\n"


def server_rss_mb(client) -> float:
    """Resident memory of the server process (Linux)."""
    for row in Path(f"/proc/{client._server.pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


async def run(model: str | None, reuse: bool, n_lines: int, keys: int, workdir: Path,
              line_memory: bool = False, healing: bool = True,
              settings: dict | None = None) -> tuple[list[float], list[float], float]:
    """Latencies of every keystroke, of the first keystroke on each line, and the RSS (MB)."""
    text = two_thousand_lines()
    path = workdir / "big.py"
    path.write_text(text)
    uri = path.as_uri()
    # Line memory off by default: this measures the model (with it, many keystrokes on this
    # file are answered by copying an existing line, in well under a millisecond).
    options = {"debounceMs": 0, "staticPromptReuse": reuse, "maxTokens": 24, "lineMemory": line_memory,
               "tokenHealing": healing, **(settings or {})}
    if model:
        options["modelPath"] = model
    lines = text.split("\n")
    targets = [i for i in range(100, 2000, 1900 // n_lines) if len(lines[i].strip()) > keys + 4][:n_lines]
    latencies: list[float] = []
    first: list[float] = []
    async with running_server(workdir, options) as client:
        client.open(uri, text)
        await client.inline(uri, 0, 0)  # load the model before timing
        version = 1
        for line_no in targets:
            line = lines[line_no]
            indent = len(line) - len(line.lstrip())
            # Delete the line's text after its indentation, then type it back key by key.
            version += 1
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=line_no, character=indent),
                                      end=types.Position(line=line_no, character=len(line))), text="")]))
            for k in range(keys):
                version += 1
                col = indent + k
                client.text_document_did_change(types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangePartial(
                        range=types.Range(start=types.Position(line=line_no, character=col),
                                          end=types.Position(line=line_no, character=col)), text=line[col])]))
                t0 = time.perf_counter()
                await client.inline(uri, line_no, col + 1)
                latencies.append(time.perf_counter() - t0)
                if k == 0:
                    first.append(latencies[-1])
            # Restore the line so later prompts see the original file.
            version += 1
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=line_no, character=indent),
                                      end=types.Position(line=line_no, character=indent + keys)), text=line[indent:])]))
        rss = server_rss_mb(client)
    return latencies, first, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="CTranslate2 model folder (default: the shipped model)")
    parser.add_argument("--lines", type=int, default=30)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--line-memory", action="store_true", help="let line memory answer where it can")
    parser.add_argument("--setting", type=setting_pair, action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting for every run (e.g. maxPrefixTokens=240); repeatable")
    args = parser.parse_args()
    if args.model and not (Path(args.model) / "model.bin").is_file():
        # The server would run on without a model (completions off, one message) and the
        # numbers would be line memory's alone.
        parser.error(f"no model at {args.model} (model.bin is missing)")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for reuse, healing in ((True, True), (True, False), (False, True)):
            lat, first, rss = asyncio.run(run(args.model, reuse, args.lines, args.keys, Path(tmp), args.line_memory,
                                              healing, dict(args.setting)))
            ms = [1000 * x for x in lat]
            first_ms = [1000 * x for x in first]
            print(f"static prompt reuse {'on ' if reuse else 'off'}{'' if healing else ', no token healing'}: "
                  f"{len(ms)} requests, "
                  f"p50 {pct(ms, 0.5):.1f} ms, p95 {pct(ms, 0.95):.1f} ms, mean {statistics.mean(ms):.1f} ms; "
                  f"first key on a line p50 {pct(first_ms, 0.5):.1f} ms, max {max(first_ms):.1f} ms; "
                  f"server RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
