"""Turning files into index entries: chunk, fingerprint, describe -- one file, or many in
worker processes.

One file is chunked with one tree-sitter parse and fingerprinted with one tokenization
(``fingerprint_chunks``); the service calls ``file_entries`` for every save and edit.  A
refresh with many files to read (the first index of a workspace) spreads them over a few
processes (``read_in_workers``): chunking and fingerprinting are pure Python and hold the
GIL, so threads would not help.  The parent only adds the results to the index, in the
files' order, so the index is the one an in-process refresh builds, slot for slot.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from lsp_server.files import read_regular_text
from lsp_server.languages import language_of
from lsp_server.similarity.chunking import ChunkConfig, chunk_file
from lsp_server.similarity.fingerprint import fingerprint_chunks
from lsp_server.similarity.index import Entry, make_entry

log = logging.getLogger("lsp_server.similarity")


def file_entries(file: str, text: str, grammar: str, chunk_config: ChunkConfig | None = None,
                 preview_lines: int = 3) -> list[Entry]:
    """The index entries of one file's text; ``grammar`` is its tree-sitter grammar or "text"."""
    chunked = chunk_file(text, grammar, chunk_config)
    return [make_entry(file, chunk, preview_lines, fp)
            for chunk, fp in zip(chunked.chunks, fingerprint_chunks(chunked), strict=True)]


@dataclass(frozen=True)
class BuildConfig:
    """How a refresh with many files to read spreads them over worker processes."""

    # 0 or 1: everything in the calling process -- the default: on 2 cores the pool lost to
    # one process (docs/similarity.md: its start and pickling cost more than the second core
    # gave back), and results come back from the workers pickled, which the server's safety
    # audit counts as pickle loads.  Opt in (``bench_index.py --workers 2``) to measure.
    workers: int = 0
    min_files: int = 64  # fewer changed files than this are read in-process (a pool costs ~1 s to start)
    batch_files: int = 8  # files per task: big enough to amortise pickling, small for balance
    # The function a worker runs on a batch (``read_batch``'s signature); tests swap in failing ones.
    worker: Callable[[list[str], ChunkConfig, int, int], list[FileResult]] | None = None


@dataclass(frozen=True)
class FileResult:
    file: str
    stamp: tuple[int, int] | None  # None: unreadable or not indexable now; the caller re-checks in-process
    entries: list[Entry]


def read_batch(files: list[str], chunk_config: ChunkConfig, preview_lines: int,
               max_file_bytes: int) -> list[FileResult]:
    """Read, chunk and fingerprint ``files`` (what ``WorkspaceIndex.update_file`` does to one)."""
    out = []
    for file in files:
        path = Path(file)
        language = language_of(file)
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if language is None or stamp[1] > max_file_bytes:
                raise OSError("not indexable")
            text = read_regular_text(path, max_file_bytes)
        except (OSError, UnicodeDecodeError):
            out.append(FileResult(file, None, []))
            continue
        out.append(FileResult(file, stamp, file_entries(file, text, language.grammar, chunk_config, preview_lines)))
    return out


def read_in_workers(files: list[str], config: BuildConfig, chunk_config: ChunkConfig, preview_lines: int,
                    max_file_bytes: int, cancel: threading.Event | None = None) -> Iterator[FileResult]:
    """``read_batch`` over ``files`` in ``config.workers`` processes, results in ``files``' order.

    Files of a batch that failed (a worker raised or died, or the pool could not start) come
    back with no stamp, so the caller reads them in-process: a broken pool costs time, never
    files.  Cancelling stops at the next result and drops the queued batches."""
    batches = [files[i:i + config.batch_files] for i in range(0, len(files), config.batch_files)]
    worker = config.worker or read_batch
    try:
        # spawn, not fork: the server runs this in a thread beside its event loop and others,
        # and a forked child would inherit their locks mid-use.  (A spawned child imports the
        # main module again: a script without an ``if __name__ == "__main__"`` guard makes
        # every worker fail, and the files are read in-process.)
        pool = ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"))
    except (OSError, ValueError) as exc:
        log.warning("similarity index: no worker processes (%s); indexing in-process", exc)
        yield from (FileResult(f, None, []) for f in files)
        return
    try:
        futures = [pool.submit(worker, batch, chunk_config, preview_lines, max_file_bytes) for batch in batches]
        broken = False
        for future, batch in zip(futures, batches, strict=True):
            if cancel is not None and cancel.is_set():
                return
            if broken:
                yield from (FileResult(f, None, []) for f in batch)
                continue
            try:
                yield from future.result()
            except BrokenProcessPool as exc:  # a worker died: every batch still queued fails the same way
                log.warning("similarity index: a worker failed (%s); reading the rest in-process", exc)
                broken = True
                yield from (FileResult(f, None, []) for f in batch)
            except Exception as exc:  # noqa: BLE001 - whatever broke a batch, its files are read here
                log.warning("similarity index: a worker failed (%s); reading its %d files in-process",
                            exc, len(batch))
                yield from (FileResult(f, None, []) for f in batch)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
