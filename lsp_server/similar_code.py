"""Similar code over LSP: ``ghostline/findSimilar``, duplicate hints, and the index behind them.

``SimilarityService`` translates between the protocol and ``WorkspaceIndex``
(``similarity/service.py``); the server's handlers call it on each event:

* after ``initialized`` the workspace is indexed in a worker thread, with ``$/progress``
  when the client supports it, and the cache folder makes restarts cheap; lexical search is
  ready when that pass ends, and the chunks' embeddings fill in behind it in a second
  thread (``EmbeddingWorker``), counted in ``ghostline/status`` (``similarity``);
* open documents shadow their files: edits (``didChange``, no save needed) re-chunk the
  document, ``didClose`` goes back to the disk copy, ``workspace/didChangeWatchedFiles``
  and ``didSave`` re-read files changed outside the editor;
* ``ghostline/findSimilar`` ``{textDocument, range, limit?}`` -> ``{items: [{uri, range,
  score, preview}]}``, best first; an empty range means the function around the cursor;
* every open document gets Hint diagnostics on functions whose nearest neighbour elsewhere
  scores at least ``similarityThreshold``, naming where (``similarityHints``; off in
  workspaces over ``similarityHintsMaxFiles`` files).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.progress import Progress
from pygls.workspace import Workspace

from lsp_server.documents import display_path, file_path, find_document, utf16_len
from lsp_server.files import read_regular_text
from lsp_server.jsonrpc import param
from lsp_server.settings import ServerSettings
from lsp_server.similarity.crawl import CrawlConfig
from lsp_server.similarity.index import Hit
from lsp_server.similarity.service import EmbeddingWorker, WorkspaceConfig, WorkspaceIndex
from model.adapted import default_cache_dir

FIND_SIMILAR = "ghostline/findSimilar"
MAX_LIMIT = 200
MAX_QUERY_FILE_BYTES = 16_000_000  # findSimilar on a file that is not open reads at most this
log = logging.getLogger("lsp_server.similarity")


class SimilarityService:
    """The similarity index of the workspace, kept in step with the editor.

    What it needs from the server: the current ``settings()``, ``documents()`` (pygls's
    workspace: open documents, root folder), ``publish_diagnostics``, the client's work-done
    ``progress()`` (None when unsupported), ``show_error`` for the user, and ``on_loop`` to
    run a protocol write on the event loop from a worker thread.
    """

    QUIET_SECONDS = 0.75  # open documents' index updates and hints wait for a pause in typing this long

    def __init__(self, *, settings: Callable[[], ServerSettings], documents: Callable[[], Workspace],
                 publish_diagnostics: Callable[[types.PublishDiagnosticsParams], None],
                 progress: Callable[[], Progress | None], show_error: Callable[[str], None],
                 on_loop: Callable[..., None], on_status: Callable[[], None] | None = None,
                 make_way: Callable[[], bool] = lambda: False) -> None:
        self._settings = settings
        self._documents = documents
        self._publish = publish_diagnostics
        self._progress = progress
        self._show_error = show_error
        self._on_loop = on_loop
        self._on_status = on_status  # re-send ghostline/status (called on the event loop)
        # True while a completion is being worked on: indexing and embedding wait for it
        # (they share the cores and the interpreter with it, and a suggestion is awaited).
        self._make_way = make_way
        self._status_sent = 0.0
        self.embedder: EmbeddingWorker | None = None
        self.workspace: WorkspaceIndex | None = None
        self.ready: Future | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="similarity-index")
        self._dirty: set[str] = set()  # uris opened or edited since the last update
        self._closed: set[Path] = set()  # paths closed since the last update
        self._dirty_lock = threading.Lock()
        self._stopping = False
        self._cancel = threading.Event()  # stops the first index between two files
        self._saved: Future | None = None
        self._hinted: set[str] = set()  # uris holding our diagnostics
        self._edited_at = 0.0  # monotonic time of the last open or edit
        self._quiet_timer: threading.Timer | None = None

    # -- index life cycle --------------------------------------------------------------------

    def config(self) -> WorkspaceConfig:
        s = self._settings()
        cache = Path(s.cache_dir).expanduser() if s.cache_dir else default_cache_dir()
        return WorkspaceConfig(crawl=CrawlConfig(max_files=s.similarity_max_files), cache_dir=cache,
                               duplicate_threshold=s.similarity_threshold)

    def start(self) -> None:
        """Index the workspace (once); later calls only re-apply settings and re-publish hints."""
        root = self._documents().root_path
        settings = self._settings()
        if not settings.similarity or not root:
            return
        if self.ready is not None:
            if self.workspace is not None:
                self.workspace.config = replace(self.workspace.config,
                                                duplicate_threshold=settings.similarity_threshold)
            self._submit(self._publish_hints)
            return
        self.ready = Future()
        asyncio.ensure_future(self._build(Path(root)))

    async def _build(self, root: Path) -> None:
        token = None
        progress = self._progress()
        if progress is not None:
            token = f"ghostline-index-{uuid.uuid4().hex[:8]}"
            try:
                await progress.create_async(token)
            except Exception as exc:  # noqa: BLE001 - a client that refuses progress still gets an index
                log.info("client refused a progress token (%s); indexing without progress", exc)
                token = None
        if token is not None:
            progress.begin(token, types.WorkDoneProgressBegin(
                title="ghostline: indexing for similar code", percentage=0, cancellable=False))
        try:
            await asyncio.wrap_future(self._worker.submit(self._index, root, progress, token))
        except Exception as exc:  # noqa: BLE001 - reported to the user, the server stays up
            log.exception("similarity indexing failed")
            self._show_error(f"ghostline: indexing for similar code failed: {exc}")
            self.ready.set_exception(exc)
            return
        finally:
            if token is not None:
                progress.end(token, types.WorkDoneProgressEnd(message="done"))
        self.ready.set_result(True)

    def _index(self, root: Path, progress: Progress | None, token: str | None) -> None:
        workspace = WorkspaceIndex(root, self.config())
        self.workspace = workspace
        self._sync_open_documents()

        def report_progress(done: int, total: int) -> None:
            if token is not None:
                report = types.WorkDoneProgressReport(message=f"{done}/{total} files",
                                                      percentage=int(100 * done / max(total, 1)))
                self._on_loop(progress.report, token, report)

        report = workspace.refresh(report_progress, cancel=self._cancel, make_way=self._make_way)
        log.info("similarity index: %d files, %d chunks (%d re-read, %d from cache) in %.1fs",
                 report.files, report.chunks, report.indexed, report.from_cache, report.seconds)
        # The index is hundreds of MB of long-lived objects: left in the collector's care,
        # every full collection walks them (up to ~0.2 s on sqlalchemy, in the middle of a
        # completion); frozen, collections look only at what came after.  What the index
        # drops later is still freed by reference counting; only reference cycles among
        # these objects would outlive it.
        gc.freeze()
        self._publish_hints()
        if not self._stopping:
            self.embedder = EmbeddingWorker(workspace, progress=self._embedding_progress, done=self._embedded,
                                            make_way=self._make_way)
            self.embedder.start()
        self._send_status(force=True)

    # -- embeddings in the background --------------------------------------------------------

    def status(self) -> dict | None:
        """What ``ghostline/status`` says of the index: chunks, and how many have vectors yet."""
        workspace = self.workspace
        if workspace is None:
            return None
        embedded, chunks = workspace.index.embedding_progress()
        return {"files": len(workspace.index.files), "chunks": chunks, "embedded": embedded,
                "ready": self.ready is not None and self.ready.done()}

    def _send_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_status is not None and (force or now - self._status_sent >= 1.0):  # a status bar, not a log
            self._status_sent = now
            self._on_loop(self._on_status)

    def _embedding_progress(self, embedded: int, chunks: int) -> None:
        self._send_status(force=embedded == chunks)

    def _embedded(self) -> None:
        """The queue ran dry: hints may change now that renamed copies have vectors."""
        self._send_status(force=True)
        self._submit(self._publish_hints)

    def _sync_open_documents(self) -> None:
        """Make every open document's current text what the index holds for its file."""
        workspace = self.workspace
        if workspace is None:
            return
        for uri, doc in list(self._documents().text_documents.items()):
            path = file_path(uri)
            version = doc.version or 0  # read before the text: pygls updates the text first
            if path is not None and workspace.open_docs.get(str(path)) != version:
                workspace.set_document(path, version, doc.source)

    def _submit(self, fn: Callable[[], None]) -> Future | None:
        def run() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a failed update is logged; the next one retries
                log.exception("similarity update failed")
        if self._stopping:
            return None
        return self._worker.submit(run)

    def shutdown(self) -> None:
        """Stop indexing between two files, queue a save of what the index has, and return
        at once: the event loop never waits for the indexer (``exit`` waits for the save).

        Updates still queued only bring the index up to date (cheap); hints are not worth
        computing any more."""
        if self._stopping:
            return
        self._cancel.set()
        if self.embedder is not None:
            self.embedder.stop()
        if self.workspace is not None:
            self._saved = self._submit(self.workspace.save)
        self._stopping = True
        self._worker.shutdown(wait=False, cancel_futures=False)

    def wait_saved(self, timeout: float) -> None:
        """At ``exit`` after ``shutdown``: give the queued save up to ``timeout`` seconds."""
        if self._saved is not None:
            try:
                self._saved.result(timeout)
            except Exception as exc:  # noqa: BLE001 - a cache not saved is rebuilt next time
                log.warning("similarity cache not saved before exit: %r", exc)

    def abandon(self) -> None:
        """At ``exit`` without ``shutdown``: stop indexing; nothing is waited for."""
        self._cancel.set()
        if self.embedder is not None:
            self.embedder.stop()
        self._stopping = True

    # -- events ------------------------------------------------------------------------------

    def on_document(self, params: Any) -> None:
        """didOpen / didChange: the open documents go into the index once typing pauses."""
        if self.workspace is None:
            return
        self._edited_at = time.monotonic()
        if self.embedder is not None:
            self.embedder.touch()
        with self._dirty_lock:
            self._dirty.add(params.text_document.uri)
        self._flush_when_quiet()

    def _flush_documents(self) -> None:
        """One update for any number of opens, edits and closes since the last."""
        with self._dirty_lock:
            self._dirty.clear()
            closed, self._closed = self._closed, set()
        for path in closed:  # back to the disk copy; a document opened again is re-read below
            self.workspace.close_document(path)
        self._sync_open_documents()
        self._flush_when_quiet()

    def _flush_when_quiet(self) -> None:
        """Open documents into the index, then hints, once the user pauses.  Re-chunking a long
        file costs tens of milliseconds and the hints search the workspace for each of its
        functions: on every keystroke both would take the CPU from that keystroke's
        completion, and nobody reads hints mid-word (``findSimilar`` brings open documents
        in itself).  One timer at a time; it looks again when it fires."""
        wait = self.QUIET_SECONDS - (time.monotonic() - self._edited_at)
        if wait <= 0:
            with self._dirty_lock:
                pending = bool(self._dirty or self._closed)
            if pending:
                self._flush_documents()
            else:
                self._publish_hints()
            return
        with self._dirty_lock:
            if self._quiet_timer is not None or self._stopping:
                return
            self._quiet_timer = threading.Timer(wait, self._quiet_timer_fired)
            self._quiet_timer.daemon = True
            self._quiet_timer.start()

    def _quiet_timer_fired(self) -> None:
        with self._dirty_lock:
            self._quiet_timer = None
        self._submit(self._flush_when_quiet)

    def on_close(self, params: types.DidCloseTextDocumentParams) -> None:
        path = file_path(params.text_document.uri)
        if self.workspace is None or path is None:
            return
        if params.text_document.uri in self._hinted:
            self._hinted.discard(params.text_document.uri)
            self._publish(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))
        with self._dirty_lock:
            queued = bool(self._closed)
            self._closed.add(path)
        if not queued:  # not typing: no reason to wait
            self._submit(self._flush_documents)

    def on_save(self, params: types.DidSaveTextDocumentParams) -> None:
        if self.workspace is not None:
            self._submit(self.workspace.save)

    def on_files(self, params: types.DidChangeWatchedFilesParams) -> None:
        workspace = self.workspace
        if workspace is None:
            return
        changes = [(c.type, file_path(c.uri)) for c in params.changes if file_path(c.uri) is not None]

        def apply() -> None:
            for kind, path in changes:
                if kind == types.FileChangeType.Deleted:
                    workspace.remove_file(path)
                else:
                    workspace.update_file(path)
            self._publish_hints()
        self._submit(apply)

    # -- hints -------------------------------------------------------------------------------

    def _publish_hints(self) -> None:
        workspace = self.workspace
        if workspace is None or self._stopping:
            return
        s = self._settings()
        enabled = s.similarity_hints and len(workspace.index.files) <= s.similarity_hints_max_files
        by_uri: dict[str, list[types.Diagnostic]] = {}
        for uri in list(self._documents().text_documents):
            path = file_path(uri)
            if path is None:
                continue
            by_uri[uri] = [self._diagnostic(d.entry, d.match) for d in workspace.duplicates(str(path))] \
                if enabled else []
        for uri, diagnostics in by_uri.items():
            if diagnostics or uri in self._hinted:
                self._on_loop(self._send_diagnostics, uri, diagnostics)

    def _send_diagnostics(self, uri: str, diagnostics: list[types.Diagnostic]) -> None:
        (self._hinted.add if diagnostics else self._hinted.discard)(uri)
        self._publish(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))

    def _diagnostic(self, entry, match: Hit) -> types.Diagnostic:
        first = entry.preview.split("\n", 1)[0]
        where = display_path(Path(match.entry.file).as_uri(), self._documents().root_path)
        line = types.Range(start=types.Position(entry.start_line, 0),
                           end=types.Position(entry.start_line, utf16_len(first)))
        return types.Diagnostic(
            range=line, severity=types.DiagnosticSeverity.Hint, source="ghostline", code="similar-code",
            message=f"Similar code: {match.entry.name} in {where}:{match.entry.start_line + 1} "
                    f"({match.score:.0%} similar)",
            related_information=[types.DiagnosticRelatedInformation(
                location=types.Location(uri=Path(match.entry.file).as_uri(), range=_hit_range(match)),
                message=f"{match.entry.kind} {match.entry.name}")])

    # -- ghostline/findSimilar ---------------------------------------------------------------

    async def find_similar(self, params: Any) -> dict:
        if not self._settings().similarity:
            raise JsonRpcInvalidRequest("similar code is switched off (ghostline.similarity)")
        if self.ready is None:
            raise JsonRpcInvalidRequest("no workspace folder to search: open a folder first")
        uri = param(param(params, "textDocument"), "uri")
        rng = param(params, "range")
        limit = param(params, "limit")
        limit = 20 if limit is None else limit
        if not isinstance(uri, str) or rng is None:
            raise JsonRpcInvalidParams("findSimilar needs {textDocument: {uri}, range, limit?}")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise JsonRpcInvalidParams(f"limit must be an integer from 1 to {MAX_LIMIT}")
        start, end = param(param(rng, "start"), "line"), param(param(rng, "end"), "line")
        end_char = param(param(rng, "end"), "character")
        if not isinstance(start, int) or not isinstance(end, int) or start < 0 or end < start:
            raise JsonRpcInvalidParams("range must have start.line <= end.line, both >= 0")
        if end > start and end_char == 0:
            end -= 1  # a selection ending at the start of a line does not include that line
        path = file_path(uri)
        doc = find_document(self._documents(), uri)
        if path is None:
            raise JsonRpcInvalidParams(f"not a file URI: {uri}")
        if doc is not None:
            text = doc.source
        else:
            try:
                text = read_regular_text(path, MAX_QUERY_FILE_BYTES)
            except (OSError, UnicodeDecodeError) as exc:
                raise JsonRpcInvalidParams(f"cannot read {uri}: {exc}") from None
        await asyncio.wrap_future(self.ready)
        loop = asyncio.get_running_loop()
        hits = await loop.run_in_executor(None, self._search, str(path), text, start, end, limit)
        return {"items": [{"uri": Path(h.entry.file).as_uri(), "range": _range_json(h), "score": h.score,
                           "preview": h.entry.preview} for h in hits]}

    def _search(self, file: str, text: str, start: int, end: int, limit: int) -> list[Hit]:
        self._sync_open_documents()  # edits not yet flushed by the worker count already
        return self.workspace.find_similar(file, text, start, end, limit)


def _hit_range(hit: Hit) -> types.Range:
    return types.Range(start=types.Position(hit.entry.start_line, 0),
                       end=types.Position(hit.entry.end_line, hit.entry.end_character))


def _range_json(hit: Hit) -> dict:
    return {"start": {"line": hit.entry.start_line, "character": 0},
            "end": {"line": hit.entry.end_line, "character": hit.entry.end_character}}
