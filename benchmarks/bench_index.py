"""Similarity index benchmark: index a repository, restart from the cache, time queries.

    .venv/bin/python benchmarks/bench_index.py [/work/shared/corpus/sqlalchemy] [--queries 300]

Reports the two passes of cold indexing apart, each in wall-clock and CPU seconds (on a
shared machine wall time follows the load; CPU time much less): lexical search ready
(crawl, tree-sitter chunking, fingerprints, save) and every chunk embedded (the
transformer encoder over all chunks, what the server's background worker does); then
peak resident memory, the cache's size on disk, a warm restart from the cache, and the
latency of ``find_similar``
(what ``ghostline/findSimilar`` runs: fingerprint and embed the query, score both signals
over every chunk, fuse) for randomly chosen functions, p50 and p95.
The figures in docs/similarity.md come from this script.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks.measure import pct, peak_rss_mb  # noqa: E402
from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex  # noqa: E402

threadpool_limits(limits=1, user_api="blas")  # as the server does (lsp_server/__main__.py)

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sqlalchemy"


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", default=DEFAULT_CORPUS)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = WorkspaceConfig(cache_dir=Path(tmp))
        rss0 = peak_rss_mb()
        t0, cpu0 = time.perf_counter(), time.process_time()  # every thread's CPU, the encoder's too
        workspace = WorkspaceIndex(args.root, config)
        report = workspace.refresh()
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        t1, cpu1 = time.perf_counter(), time.process_time()
        embedded = workspace.embed_pending()
        workspace.save()
        embed_s, embed_cpu = time.perf_counter() - t1, time.process_time() - cpu1
        rss1 = peak_rss_mb()
        size = _folder_mb(Path(tmp))

        t0 = time.perf_counter()
        warm = WorkspaceIndex(args.root, config)
        warm_report = warm.refresh()
        warm_s = time.perf_counter() - t0

    rng = random.Random(args.seed)
    index = workspace.index
    slots = [s for r in index.files.values() for s in r.slots if index.entries[s].kind == "function"]
    picks = rng.sample(slots, min(args.queries, len(slots)))
    texts: dict[str, str] = {}
    workspace.find_similar(index.entries[picks[0]].file, Path(index.entries[picks[0]].file).read_text(), 0, 0)
    latencies = []
    for s in picks:
        e = index.entries[s]
        text = texts.setdefault(e.file, Path(e.file).read_text(encoding="utf-8"))
        t0 = time.perf_counter()
        workspace.find_similar(e.file, text, e.start_line, e.end_line, limit=20)
        latencies.append(1000 * (time.perf_counter() - t0))
    latencies.sort()
    threshold = workspace.config.duplicate_threshold
    flagged = sum(1 for s in picks[:100] if (h := index.search(index.entries[s].fingerprint, 1,
                  exclude_file=index.entries[s].file, vector=index.vectors[s])) and h[0].score >= threshold)

    print(f"corpus            {args.root}")
    print(f"files / chunks    {report.files:,} / {report.chunks:,}")
    print(f"lexical ready     {cold:.1f} s, CPU {cold_cpu:.1f} s (refresh {report.seconds:.1f} s)")
    print(f"all embedded      {embed_s:.1f} s more, CPU {embed_cpu:.1f} s ({embedded:,} chunks, "
          f"{workspace.config.encoder.threads} encoder threads); {cold + embed_s:.1f} s in all, "
          f"CPU {cold_cpu + embed_cpu:.1f} s")
    print(f"peak RSS          {rss1:.0f} MB (before indexing {rss0:.0f} MB)")
    print(f"cache on disk     {size:.1f} MB")
    print(f"warm restart      {warm_s:.1f} s ({warm_report.from_cache:,} files from cache, "
          f"{warm_report.indexed} re-read)")
    print(f"find_similar      p50 {pct(latencies, 0.5):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms, "
          f"max {latencies[-1]:.1f} ms over {len(latencies)} queries (limit 20)")
    print(f"duplicate hints   {flagged} of {min(100, len(picks))} sampled functions have a match >= {threshold}")


if __name__ == "__main__":
    main()
