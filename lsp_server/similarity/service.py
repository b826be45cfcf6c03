"""WorkspaceIndex: the similarity index of one workspace, kept in step with disk and editor.

Owns the policy the raw index does not: which files (``crawl``), what a file's chunks are
(``chunking``), which text wins (an open document shadows its file on disk until it is
closed), when to persist (``store``), and what counts as a near-duplicate.  The language
server and the ``ghostline index`` / ``ghostline similar`` commands both drive this class,
so the command line shows exactly what the editor would.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from lsp_server.documents import lsp_line_breaks
from lsp_server.files import read_regular_text
from lsp_server.languages import TEXT, language_of
from lsp_server.similarity.build import BuildConfig, FileResult, file_entries, read_in_workers
from lsp_server.similarity.chunking import Chunk, ChunkConfig, chunk_file
from lsp_server.similarity.crawl import CrawlConfig, crawl
from lsp_server.similarity.embedder import DEFAULT_EMBEDDER, CodeEmbedder
from lsp_server.similarity.fingerprint import Fingerprint, fingerprint, fingerprint_chunks
from lsp_server.similarity.index import Entry, Hit, IndexConfig, SimilarityIndex
from lsp_server.similarity.store import cache_folder, load_index, save_index

log = logging.getLogger("lsp_server.similarity")


@dataclass(frozen=True)
class WorkspaceConfig:
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    cache_dir: Path | None = None  # None: nothing persisted
    duplicate_threshold: float = 0.8  # hint when a chunk's best match scores at least this


@dataclass(frozen=True)
class RefreshReport:
    files: int  # files in the index after the refresh
    indexed: int  # files (re)read and chunked by this refresh
    from_cache: int
    removed: int
    chunks: int
    seconds: float


@dataclass(frozen=True)
class Duplicate:
    entry: Entry  # the chunk in the document
    match: Hit  # its nearest neighbour elsewhere


def embedder_identity(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class WorkspaceIndex:
    def __init__(self, root: Path, config: WorkspaceConfig | None = None, embedder_path: Path | None = None) -> None:
        self.root = root.resolve()
        self.config = config or WorkspaceConfig()
        path = embedder_path or DEFAULT_EMBEDDER
        self.embedder = CodeEmbedder.load(path)
        self.embedder_id = embedder_identity(path)
        self.index = SimilarityIndex(self.embedder, self.config.index)
        self.open_docs: dict[str, int] = {}  # file -> version of the open document shadowing it
        self._lock = threading.RLock()  # one refresh or update at a time
        self._cache_read = False  # the first refresh reads the cache folder

    # -- keeping in step ---------------------------------------------------------------------

    def _entries(self, file: str, text: str) -> list[Entry]:
        language = language_of(file)
        if language is None:
            return []
        return file_entries(file, text, language.grammar, self.config.chunk, self.config.index.preview_lines)

    def refresh(self, progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None) -> RefreshReport:
        """Bring the index in line with the workspace on disk: load the cache, crawl, re-read
        what changed, drop what is gone, save.  ``progress(done, total)`` is called as it goes."""
        t0 = time.perf_counter()
        with self._lock:
            from_cache = 0
            folder = cache_folder(self.config.cache_dir, self.root) if self.config.cache_dir else None
            if folder is not None and not self._cache_read:
                # Once, even when open documents came first (editors reopen their tabs as
                # the server starts); an open document's text wins over the cache's copy.
                self._cache_read = True
                from_cache = load_index(self.index, folder, self.embedder_id, skip=set(self.open_docs))
            paths = list(crawl(self.root, self.config.crawl))
            changed = [p for p in paths if str(p) not in self.open_docs
                       and getattr(self.index.files.get(str(p)), "stamp", None) != _stamp(p)]
            ahead = self._read_ahead(changed, cancel)
            changed_files = {str(p) for p in changed}
            indexed = 0
            try:
                for i, path in enumerate(paths):
                    if cancel is not None and cancel.is_set():
                        break
                    if progress is not None and (i % 50 == 0 or i == len(paths) - 1):
                        progress(i + 1, len(paths))
                    if str(path) in changed_files:
                        indexed += self.update_file(path, next(ahead, None) if ahead is not None else None)
            finally:
                if ahead is not None:
                    ahead.close()
            on_disk = {str(p) for p in paths}
            gone = [f for f in self.index.files if f not in on_disk and f not in self.open_docs]
            for file in gone:
                self.index.remove_file(file)
            self.index.settle()
            self.save()
        return RefreshReport(len(self.index.files), indexed, from_cache, len(gone), len(self.index),
                             time.perf_counter() - t0)

    def _read_ahead(self, paths: list[Path], cancel: threading.Event | None) -> Iterator[FileResult] | None:
        """Many files to read (a first index): worker processes read them, in ``paths``' order."""
        build = self.config.build
        if build.workers <= 1 or len(paths) < build.min_files:
            return None
        return read_in_workers([str(p) for p in paths], build, self.config.chunk, self.config.index.preview_lines,
                               self.config.crawl.max_file_bytes, cancel)

    def update_file(self, path: Path, read: FileResult | None = None) -> bool:
        """Re-read one file from disk (a save or a file event); False if it is not indexable.
        ``read``: the file as a worker read it, used if the file has not changed since."""
        file = str(path.resolve()) if not path.is_absolute() else str(path)
        if file in self.open_docs:
            return False  # the editor's text wins until the document closes
        stamp = _stamp(path)
        if read is not None and read.file == file and read.stamp is not None and read.stamp == stamp:
            self.index.set_file(file, stamp, read.entries)
            return True
        if stamp is None or language_of(file) is None or stamp[1] > self.config.crawl.max_file_bytes:
            self.index.remove_file(file)
            return False
        try:
            text = read_regular_text(path, self.config.crawl.max_file_bytes)
        except (OSError, UnicodeDecodeError):
            self.index.remove_file(file)
            return False
        self.index.set_file(file, stamp, self._entries(file, text))
        return True

    def remove_file(self, path: Path) -> None:
        self.index.remove_file(str(path))

    def set_document(self, path: Path, version: int, text: str) -> bool:
        """An open document's text shadows the file on disk.

        Two threads sync documents (the index worker after edits, a search before it runs),
        and chunking happens outside the lock, so an older text can arrive after a newer
        one: versions only move forward, and a stale text is dropped (returns False).
        """
        file = str(path)
        if language_of(file) is None:
            return False
        # A document too big to index (the crawl skips such files on disk: generated or
        # vendored code) shadows its file with no chunks; parsing it would hold the GIL for
        # seconds on every edit, stalling the server's event loop.
        too_big = len(text) > self.config.crawl.max_file_bytes
        entries = [] if too_big else self._entries(file, lsp_line_breaks(text))
        with self._lock:
            held = self.open_docs.get(file)
            if held is not None and held > version:
                return False
            self.index.set_file(file, ("open", version), entries)
            self.open_docs[file] = version  # after the chunks: a reader seeing it finds them
        return True

    def close_document(self, path: Path) -> None:
        with self._lock:
            self.open_docs.pop(str(path), None)
            self.update_file(path)

    def save(self) -> Path | None:
        if self.config.cache_dir is None:
            return None
        disk_files = {f for f in self.index.files if f not in self.open_docs}
        return save_index(self.index, cache_folder(self.config.cache_dir, self.root), self.root,
                          self.embedder_id, disk_files)

    # -- questions ---------------------------------------------------------------------------

    def query_chunk(self, file: str, text: str, start_line: int, end_line: int) -> Chunk:
        """What to search for: the selected lines, or with an empty selection the innermost
        function or class around the cursor (in a document small enough to index: a bigger
        one is searched by the selected lines, at most ``max_file_bytes`` of them)."""
        return self._query(file, text, start_line, end_line)[0]

    def _query(self, file: str, text: str, start_line: int, end_line: int) -> tuple[Chunk, Fingerprint]:
        """``query_chunk`` and its fingerprint (a chunk's as the index made it, from its file's tree)."""
        small = len(text) <= self.config.crawl.max_file_bytes
        text = lsp_line_breaks(text)
        lines = text.split("\n")
        start_line = max(0, min(start_line, len(lines) - 1))
        end_line = max(start_line, min(end_line, len(lines) - 1))
        language = (language_of(file) or TEXT).grammar
        selected = "\n".join(lines[start_line:end_line + 1])[:self.config.crawl.max_file_bytes]
        if start_line == end_line and language != "text" and small:
            chunked = chunk_file(text, language, self.config.chunk)
            around = [c for c in chunked.chunks if c.start_line <= start_line <= c.end_line]
            if around:
                chunk = min(around, key=lambda c: c.end_line - c.start_line)
                return chunk, fingerprint_chunks(replace(chunked, chunks=[chunk]))[0]
        chunk = Chunk("selection", "selection", start_line, end_line, selected,
                      language if language != "text" else "python")
        return chunk, fingerprint(chunk.text, chunk.language)

    def find_similar(self, file: str, text: str, start_line: int, end_line: int, limit: int = 10,
                     signals: str = "fused") -> list[Hit]:
        chunk, fp = self._query(file, text, start_line, end_line)
        if not chunk.text.strip():
            return []  # a blank selection or an empty file is like nothing (fusion would rank anything)
        with self._lock:  # an update in progress (a document being embedded) lands first
            return self.index.search(fp, limit, exclude_file=file,
                                     exclude_lines=(chunk.start_line, chunk.end_line), signals=signals)

    def duplicates(self, file: str) -> list[Duplicate]:
        """Functions and classes of ``file`` whose best match elsewhere reaches the threshold."""
        record = self.index.files.get(file)
        if record is None:
            return []
        out = []
        for slot in list(record.slots):
            entry = self.index.entries[slot]
            if entry is None or entry.kind not in ("function", "class"):
                continue
            hits = self.index.search(entry.fingerprint, 1, exclude_file=file,
                                     exclude_lines=(entry.start_line, entry.end_line))
            if hits and hits[0].score >= self.config.duplicate_threshold:
                out.append(Duplicate(entry, hits[0]))
        return out
