"""WorkspaceIndex: the similarity index of one workspace, kept in step with disk and editor.

Owns the policy the raw index does not: which files (``crawl``), what a file's chunks are
(``chunking``), which text wins (an open document shadows its file on disk until it is
closed), when to persist (``store``), and what counts as a near-duplicate.  The language
server and the ``ghostline index`` / ``ghostline similar`` commands both drive this class,
so the command line shows exactly what the editor would.

Indexing is two passes.  ``refresh`` (and every file update) puts chunks in with their
lexical features at once, so lexical results are ready in seconds; the chunks' texts wait
in a queue, and ``embed_pending`` -- run by ``EmbeddingWorker`` in the background, or by
``ghostline index`` in the foreground -- runs the transformer encoder over them in batches
and fills the vectors in.  Only what changed is queued (a file from the cache keeps its
vectors), and a vector computed for a text that has since changed is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lsp_server.documents import lsp_line_breaks
from lsp_server.files import read_regular_text
from lsp_server.languages import TEXT, language_of
from lsp_server.similarity.build import file_entries
from lsp_server.similarity.chunking import Chunk, ChunkConfig, chunk_file
from lsp_server.similarity.crawl import CrawlConfig, crawl
from lsp_server.similarity.encoder import CodeEncoder, EncoderConfig
from lsp_server.similarity.fingerprint import Fingerprint, fingerprint, fingerprint_chunks
from lsp_server.similarity.index import Entry, Hit, IndexConfig, SimilarityIndex
from lsp_server.similarity.store import cache_folder, load_index, save_index

log = logging.getLogger("lsp_server.similarity")


@dataclass(frozen=True)
class WorkspaceConfig:
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    # Chunks per encoder call in the background: the worker yields to the user's typing and
    # to completions between calls, so one call is the most it can delay them (at 64 ~0.22 s
    # on two cores, at 16 ~0.04 s; the chunks a second are the same).
    embed_batch: int = 16
    remembered_vectors: int = 4096  # open documents' chunk vectors kept by text (~0.5 KB each)
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


def _is_open(stamp: object) -> bool:
    return isinstance(stamp, tuple) and stamp[:1] == ("open",)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class WorkspaceIndex:
    def __init__(self, root: Path, config: WorkspaceConfig | None = None, encoder: CodeEncoder | None = None) -> None:
        self.root = root.resolve()
        self.config = config or WorkspaceConfig()
        self.encoder = encoder or CodeEncoder.load(config=self.config.encoder)
        self.embedder_id = self.encoder.identity
        self.index = SimilarityIndex(self.encoder.dim, self.config.index)
        self.open_docs: dict[str, int] = {}  # file -> version of the open document shadowing it
        self._lock = threading.RLock()  # one refresh or update at a time
        self._save_lock = threading.Lock()
        self._cache_read = False  # the first refresh reads the cache folder
        # file -> (stamp, chunk texts) whose vectors are still to compute, oldest first
        self._pending: dict[str, tuple[object, list[str]]] = {}
        self._pending_lock = threading.Lock()
        self.on_pending: Callable[[], None] | None = None  # the background worker's wake-up
        self._known: OrderedDict[str, np.ndarray] = OrderedDict()  # open documents' chunk text -> vector
        self._known_lock = threading.Lock()
        self._unsaved = False  # vectors of files on disk computed since the last save
        # Files on disk indexed or dropped since the last save: a warm start that finds every
        # file as the cache left it has nothing to write (a rewrite is a good part of a warm start).
        self._changed = False

    # -- embeddings, behind the lexical index ------------------------------------------------

    def _queue(self, file: str, stamp: object, texts: list[str]) -> None:
        with self._pending_lock:
            self._pending.pop(file, None)  # re-queued at the end: newest edits last
            if texts:
                self._pending[file] = (stamp, texts)
        if texts and self.on_pending is not None:
            self.on_pending()

    def _unqueue(self, file: str) -> None:
        with self._pending_lock:
            self._pending.pop(file, None)

    def take_unsaved(self) -> bool:
        """Whether vectors of files on disk were computed since the last call (the cache is
        worth saving; an open document's are not saved)."""
        unsaved, self._unsaved = self._unsaved, False
        return unsaved

    def pending_chunks(self) -> int:
        with self._pending_lock:
            return sum(len(texts) for _, texts in self._pending.values())

    def embed_pending(self, cancel: threading.Event | _Interrupt | None = None,
                      progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every queued chunk, a batch at a time, without holding the index's lock while
        the encoder runs (searches go on meanwhile); the number of chunks embedded.
        ``progress(embedded, chunks)`` is called after each batch."""
        embedded = 0
        while cancel is None or not cancel.is_set():
            with self._pending_lock:
                batch, size = [], 0
                for file in list(self._pending):
                    if batch and size + len(self._pending[file][1]) > self.config.embed_batch:
                        break
                    stamp, texts = self._pending.pop(file)
                    batch.append((file, stamp, texts))
                    size += len(texts)
            if not batch:
                break
            texts = [t for _, _, file_texts in batch for t in file_texts]
            with self._known_lock:
                computed = {t: self._known[t] for t in texts if t in self._known}
            new = list(dict.fromkeys(t for t in texts if t not in computed))
            if new:
                computed.update(zip(new, self.encoder.embed_many(new), strict=True))
            for file, stamp, file_texts in batch:
                vectors = np.stack([computed[t] for t in file_texts])
                # False when the file changed meanwhile: its new text is queued already.
                if self.index.set_vectors(file, stamp, vectors):
                    embedded += len(file_texts)
                    if _is_open(stamp):
                        self._remember(file_texts, vectors)
                    else:
                        self._unsaved = True
            if progress is not None:
                progress(*self.index.embedding_progress())
        return embedded

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        """Keep open documents' chunk vectors by text: an edit changes one chunk of a file,
        and its other chunks get their vectors back at once instead of waiting to be
        embedded again."""
        with self._known_lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._known[text] = vector
                self._known.move_to_end(text)
            while len(self._known) > self.config.remembered_vectors:
                self._known.popitem(last=False)

    def _put(self, file: str, stamp: object, entries: list[Entry], texts: list[str]) -> None:
        """Index ``file``'s chunks: with their vectors when every text is remembered, else
        queued for the encoder."""
        with self._known_lock:
            known = [self._known.get(t) for t in texts]
        vectors = np.stack(known) if texts and all(v is not None for v in known) else None
        self.index.set_file(file, stamp, entries, vectors)
        if vectors is None:
            self._queue(file, stamp, texts)
        else:
            self._unqueue(file)

    # -- keeping in step ---------------------------------------------------------------------

    def _entries(self, file: str, text: str) -> tuple[list[Entry], list[str]]:
        """The chunks of ``file`` as index entries, and their texts (for the encoder)."""
        language = language_of(file)
        if language is None:
            return [], []
        return file_entries(file, text, language.grammar, self.config.chunk, self.config.index.preview_lines)

    def refresh(self, progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None,
                make_way: Callable[[], bool] | None = None) -> RefreshReport:
        """Bring the index in line with the workspace on disk: load the cache, crawl, re-read
        what changed, drop what is gone, save.  ``progress(done, total)`` is called as it goes;
        while ``make_way()`` is true the next file waits (at most ``MAKE_WAY_MAX_S`` each)."""
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
            indexed = 0
            for i, path in enumerate(paths):
                if cancel is not None and cancel.is_set():
                    break
                if progress is not None and (i % 50 == 0 or i == len(paths) - 1):
                    progress(i + 1, len(paths))
                file = str(path)
                if file in self.open_docs:
                    continue
                record = self.index.files.get(file)
                stamp = _stamp(path)
                if record is not None and record.stamp == stamp:
                    continue
                _wait_while(make_way, cancel)
                indexed += self.update_file(path)
            on_disk = {str(p) for p in paths}
            gone = [f for f in self.index.files if f not in on_disk and f not in self.open_docs]
            for file in gone:
                self.remove_file(Path(file))
            self.index.settle()  # the postings folded in now, not in the first search
            if self._changed:
                self.save()
        return RefreshReport(len(self.index.files), indexed, from_cache, len(gone), len(self.index),
                             time.perf_counter() - t0)

    def update_file(self, path: Path) -> bool:
        """Re-read one file from disk (a save or a file event); False if it is not indexable."""
        file = str(path.resolve()) if not path.is_absolute() else str(path)
        if file in self.open_docs:
            return False  # the editor's text wins until the document closes
        stamp = _stamp(path)
        if stamp is None or language_of(file) is None or stamp[1] > self.config.crawl.max_file_bytes:
            self.remove_file(Path(file))
            return False
        try:
            text = read_regular_text(path, self.config.crawl.max_file_bytes)
        except (OSError, UnicodeDecodeError):
            self.remove_file(Path(file))
            return False
        entries, texts = self._entries(file, text)
        self._put(file, stamp, entries, texts)
        self._changed = True
        return True

    def remove_file(self, path: Path) -> None:
        self._unqueue(str(path))
        if str(path) in self.index.files:
            self._changed = True
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
        entries, texts = ([], []) if too_big else self._entries(file, lsp_line_breaks(text))
        with self._lock:
            held = self.open_docs.get(file)
            if held is not None and held > version:
                return False
            self._put(file, ("open", version), entries, texts)
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
        with self._save_lock:  # the refresh and the embedding worker both save
            self._changed = False
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
        lines = text.split("\n", max(start_line, end_line, 0) + 1)  # the lines up to the selection's (and the rest)
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
        vector = self._stored_vector(file, chunk) if signals != "lexical" else None
        if vector is None and signals != "lexical":
            vector = self.encoder.embed(chunk.text)
        with self._lock:  # an update in progress (a document being chunked) lands first
            return self.index.search(fp, limit, exclude_file=file,
                                     exclude_lines=(chunk.start_line, chunk.end_line), signals=signals,
                                     vector=vector)

    def _stored_vector(self, file: str, chunk: Chunk):
        """The index's vector for ``chunk`` when the query is an indexed chunk of ``file`` as
        it stands (same lines, same opening lines -- a selection of a method's whole lines
        keeps its indentation, so it differs and is embedded): it saves running the encoder."""
        index = self.index
        preview = "\n".join(chunk.text.split("\n")[:self.config.index.preview_lines])
        with index.lock:
            record = index.files.get(file)
            for slot in record.slots if record is not None else ():
                e = index.entries[slot]
                if (e is not None and index.embedded[slot] and e.preview == preview
                        and (e.start_line, e.end_line) == (chunk.start_line, chunk.end_line)):
                    return index.vectors[slot].copy()
        return None

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
            with self.index.lock:
                vector = self.index.vectors[slot].copy() if self.index.embedded[slot] else None
            hits = self.index.search(entry.fingerprint, 1, exclude_file=file,
                                     exclude_lines=(entry.start_line, entry.end_line), vector=vector)
            if hits and hits[0].score >= self.config.duplicate_threshold:
                out.append(Duplicate(entry, hits[0]))
        return out


# Background indexing waits for a completion at most this long a file, so a user who
# never stops typing still gets an index; it looks again this often.
MAKE_WAY_MAX_S = 1.0
MAKE_WAY_POLL_S = 0.005


def _wait_while(busy: Callable[[], bool] | None, cancel: threading.Event | None = None) -> None:
    """Sleep while ``busy()`` says so, at most ``MAKE_WAY_MAX_S``, and not past ``cancel``."""
    if busy is None:
        return
    deadline = time.monotonic() + MAKE_WAY_MAX_S
    while busy() and time.monotonic() < deadline and not (cancel is not None and cancel.is_set()):
        time.sleep(MAKE_WAY_POLL_S)


class _Interrupt:
    """``embed_pending``'s cancel flag: stopping, or the user busy again."""

    def __init__(self, stop: threading.Event, busy: Callable[[], bool]) -> None:
        self._stop, self._busy = stop, busy

    def is_set(self) -> bool:
        return self._stop.is_set() or self._busy()


class EmbeddingWorker:
    """A daemon thread that embeds ``workspace``'s queued chunks while the user is not typing.

    The encoder competes with completions for the same cores, so it runs only after
    ``QUIET_SECONDS`` without editor activity (``touch()``, called by the server on every
    open and edit, on the event loop: one clock read, nothing woken) and stops between two
    batches as soon as the user is active again; what is left waits for the next pause.
    ``progress(embedded, chunks)`` after every batch; ``done()`` each time the queue runs
    dry (the server re-publishes hints and status)."""

    QUIET_SECONDS = 1.0

    def __init__(self, workspace: WorkspaceIndex, progress: Callable[[int, int], None] | None = None,
                 done: Callable[[], None] | None = None, make_way: Callable[[], bool] = lambda: False) -> None:
        self.workspace = workspace
        self._make_way = make_way  # a completion is being worked on: stop after the batch
        self._progress = progress
        self._done = done
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._active_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="similarity-embed", daemon=True)
        workspace.on_pending = self._wake.set

    def touch(self) -> None:
        """The user did something: hold the encoder back for a quiet moment."""
        self._active_at = time.monotonic()

    def _busy(self) -> bool:
        return time.monotonic() - self._active_at < self.QUIET_SECONDS or self._make_way()

    def start(self) -> None:
        self._wake.set()  # whatever the first refresh queued
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        workspace = self.workspace
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()  # before looking at the queue: anything queued from here on wakes the next round
            embedded = 0
            while not self._stop.is_set() and workspace.pending_chunks():
                idle = time.monotonic() - self._active_at
                if idle < self.QUIET_SECONDS:
                    self._stop.wait(self.QUIET_SECONDS - idle)
                    continue
                if self._make_way():
                    self._stop.wait(MAKE_WAY_POLL_S)
                    continue
                try:
                    embedded += workspace.embed_pending(_Interrupt(self._stop, self._busy), self._progress)
                except Exception:  # noqa: BLE001 - logged; lexical search goes on without vectors
                    log.exception("embedding chunks failed")
                    break
            if embedded and not self._stop.is_set():
                if workspace.take_unsaved():
                    workspace.save()
                if self._done is not None:
                    self._done()
