"""The language server: thin protocol handlers over the completion and similarity services.

Each handler translates between LSP types and domain calls and calls every service that
cares about the event; the work lives in ``completion.py`` (pipeline, with ``prompt.py``
and ``postprocess.py``) and ``similar_code.py`` (index, hints, search).  Anything a user must
know (no model, bad settings) goes out as ``window/showMessage``; everything else is
logged through ``window/logMessage``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.progress import Progress
from pygls.workspace import TextDocument

from lsp_server.completion import CompletionService, DocumentContext
from lsp_server.documents import (
    client_column,
    display_path,
    file_path,
    find_document,
    line_at,
    offset_at,
    use_lsp_documents,
)
from lsp_server.jsonrpc import GhostlineProtocol, ResyncingReader
from lsp_server.settings import ServerSettings, parse_settings
from lsp_server.similar_code import FIND_SIMILAR, SimilarityService
from lsp_server.telemetry import ACCEPTED_COMMAND, EVENT_METHOD, Telemetry
from model import __version__ as VERSION

log = logging.getLogger("lsp_server")


class GhostlineServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("ghostline", VERSION, protocol_cls=GhostlineProtocol)  # answers what pygls cannot read
        self.settings = ServerSettings()
        self.last_note: str | None = None  # the last "why no model here" the status bar got
        self.shut_down = False  # ``shutdown`` was received
        self.completions = CompletionService(on_error=self.show_error, on_warning=self.show_warning)
        self.telemetry = Telemetry(settings=lambda: self.settings)
        self.similarity = SimilarityService(
            settings=lambda: self.settings, documents=lambda: self.workspace,
            publish_diagnostics=self.text_document_publish_diagnostics, progress=self.client_progress,
            show_error=self.show_error, on_loop=self.on_loop, on_status=self.send_status,
            make_way=self.completions.generating)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def start_io(self, stdin=None, stdout=None) -> None:
        """Serve on stdio, reading past broken frames to the next message (``jsonrpc.py``)."""
        super().start_io(ResyncingReader(stdin or sys.stdin.buffer), stdout)

    def bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def off_loop(self, fn, *args) -> bool:
        """Reschedule ``fn(*args)`` on the event loop when called from a worker thread.

        The model loads and generates in worker threads; protocol writes belong to the loop.
        Returns True when the call was handed over (the caller should return).
        """
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(fn, *args)
            return True
        return False

    def on_loop(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the event loop: now when called there, else soon."""
        if not self.off_loop(fn, *args):
            fn(*args)

    def client_progress(self) -> Progress | None:
        """Work-done progress, when the client can show it."""
        caps = self.client_capabilities
        if caps is not None and caps.window is not None and caps.window.work_done_progress:
            return self.work_done_progress
        return None

    def show_error(self, message: str) -> None:
        if self.off_loop(self.show_error, message):
            return
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
        self.send_status(message)

    def send_status(self, message: str | None = None) -> None:
        """``ghostline/status``: what the client's status bar shows (state, model, latency)."""
        models = self.completions.models
        if not self.settings.enabled:
            state = "disabled"
        elif models.error:
            state = "error"
        elif models.engine is None:
            state = "loading"
        else:
            state = "ready"
        latency = self.completions.last_latency
        self.protocol.notify("ghostline/status", {
            "state": state,
            "model": models.label(self.settings),
            "lastLatencyMs": None if latency is None else round(1000 * latency, 1),
            # The language note stays until the model answers again: the index's progress
            # and the model's loading report in between must not wipe it from the status bar.
            "message": message or models.error or self.last_note,
            # {files, chunks, embedded, ready}: lexical search works once ready, dense as chunks embed
            "similarity": self.similarity.status(),
        })

    def show_warning(self, message: str) -> None:
        if self.off_loop(self.show_warning, message):
            return
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    def apply_settings(self, raw: object) -> None:
        self.settings, warnings = parse_settings(raw, self.settings)
        for w in warnings:
            log.warning(w)
        if warnings:  # one popup for the whole batch: a broken settings file is one problem
            self.show_warning("ghostline: " + ("; ".join(warnings) if len(warnings) <= 3 else
                              f"{len(warnings)} settings ignored: " + "; ".join(warnings[:3]) + "; ... (see the log)"))

    def open_document(self, uri: str) -> TextDocument:
        """An open document, or an InvalidParams error: we complete only what the editor holds."""
        doc = find_document(self.workspace, uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document not open: {uri}")
        return doc

    def document_context(self, uri: str) -> DocumentContext:
        """Where the document lives and what else is open, for retrieval."""
        doc = find_document(self.workspace, uri)
        language_id = doc.language_id if doc is not None else None
        if not self.settings.retrieval:
            return DocumentContext(uri=uri, language_id=language_id)
        open_docs: dict[Path, tuple[int, str]] = {}
        for other_uri, doc in self.workspace.text_documents.items():
            p = file_path(other_uri)
            if p is not None:
                open_docs[p] = (doc.version or 0, doc.source)
        root = Path(self.workspace.root_path) if self.workspace.root_path else None
        return DocumentContext(file_path=file_path(uri), open_docs=open_docs, root=root, uri=uri,
                               language_id=language_id)

    def display_path(self, uri: str) -> str:
        """Workspace-relative path of a document, for the prompt header."""
        return display_path(uri, self.workspace.root_path)


class _ClientLogHandler(logging.Handler):
    """Route Python logging to the client's output channel."""

    _TYPES = {logging.ERROR: types.MessageType.Error, logging.WARNING: types.MessageType.Warning,
              logging.INFO: types.MessageType.Info}

    def __init__(self, server: GhostlineServer) -> None:
        super().__init__(logging.INFO)
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kind = self._TYPES.get(record.levelno, types.MessageType.Log)
            params = types.LogMessageParams(type=kind, message=self.format(record))
            if not self.server.off_loop(self.server.window_log_message, params):
                self.server.window_log_message(params)
        except Exception:  # noqa: BLE001 - logging must never take the server down
            self.handleError(record)


def _cursor(doc: TextDocument, position: types.Position) -> int:
    lines = doc.lines
    if position.line < 0 or position.character < 0 or position.line > len(lines):
        raise JsonRpcInvalidParams(f"position {position.line}:{position.character} is outside the document")
    return offset_at(doc, position)


def create_server() -> GhostlineServer:
    server = GhostlineServer()
    handler = _ClientLogHandler(server)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("lsp_server")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the client shows these; stderr would show each line twice

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: GhostlineServer, params: types.InitializeParams) -> None:
        ls.bind_loop()
        use_lsp_documents(ls)  # lines end only at \n, \r\n, \r (not at form feeds)
        ls.apply_settings(params.initialization_options)
        if ls.workspace.root_path:  # where an adapted model is looked up
            ls.settings = replace(ls.settings, workspace_root=ls.workspace.root_path)

    @server.feature(types.INITIALIZED)
    def on_initialized(ls: GhostlineServer, params: types.InitializedParams) -> None:
        if ls.settings.enabled:
            ls.completions.preload(ls.settings, on_done=ls.send_status)
        ls.send_status()
        ls.similarity.start()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_configuration(ls: GhostlineServer, params: types.DidChangeConfigurationParams) -> None:
        ls.apply_settings(params.settings)
        if ls.settings.enabled:
            ls.completions.preload(ls.settings, on_done=ls.send_status)
        ls.send_status()
        ls.similarity.start()

    # pygls updates its open documents first, then calls these.
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def on_open(ls: GhostlineServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.similarity.on_document(params)
        ls.completions.read_ahead(ls.settings, ls.document_context(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: GhostlineServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.similarity.on_document(params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: GhostlineServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.similarity.on_close(params)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def on_save(ls: GhostlineServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.similarity.on_save(params)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def on_files(ls: GhostlineServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.similarity.on_files(params)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: GhostlineServer, params: types.InlineCompletionParams):
        t0 = time.perf_counter()
        doc = ls.open_document(params.text_document.uri)
        offset = _cursor(doc, params.position)
        result = await ls.completions.complete(
            doc.uri, ls.display_path(doc.uri), doc.source, offset, ls.settings, ls.document_context(doc.uri)
        )
        if result.note is not None and result.note != ls.last_note:  # the model stays quiet here, and why
            ls.last_note = result.note
            ls.send_status(result.note)
        elif result.completion is not None:  # the model ran: a language it knows
            ls.last_note = None
            ls.send_status()
        if not result.text:
            return types.InlineCompletionList(items=[])
        here = types.Range(start=params.position, end=params.position)
        item = types.InlineCompletionItem(insert_text=result.text, range=here)
        if result.origin is not None:
            # The id lets the client say what became of the suggestion; the editor runs the
            # command when the whole suggestion is accepted (telemetry.py).
            suggestion_id = ls.telemetry.offer(result.origin, result.text, 1000 * (time.perf_counter() - t0))
            if suggestion_id is not None:
                item.command = types.Command(title="ghostline: suggestion accepted", command=ACCEPTED_COMMAND,
                                             arguments=[suggestion_id, len(result.text)])
        return types.InlineCompletionList(items=[item])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: GhostlineServer, params: types.CompletionParams):
        doc = ls.open_document(params.text_document.uri)
        offset = _cursor(doc, params.position)
        line_start, line_text = line_at(doc, params.position.line)  # read before edits can arrive
        result = await ls.completions.complete(
            doc.uri, ls.display_path(doc.uri), doc.source, offset, ls.settings, ls.document_context(doc.uri)
        )
        if not result.text:
            return types.CompletionList(is_incomplete=True, items=[])
        # Replace the word being typed so the client's filtering keeps the item.
        column = start = offset - line_start
        while start > 0 and (line_text[start - 1].isalnum() or line_text[start - 1] == "_"):
            start -= 1
        word = line_text[start:column]
        start_pos = types.Position(line=params.position.line, character=client_column(doc, line_text, start))
        item = types.CompletionItem(
            label=(word + result.text).strip(),
            kind=types.CompletionItemKind.Text,
            detail="ghostline",
            filter_text=word + result.text,
            sort_text="0",
            text_edit=types.TextEdit(range=types.Range(start=start_pos, end=params.position),
                                     new_text=word + result.text),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.feature("ghostline/explainPrompt")
    async def explain_prompt(ls: GhostlineServer, params) -> dict:
        """Debugging aid: the exact prompt and retrieved context for a position."""
        expected = "expected {textDocument: {uri}, position: {line, character}}"
        try:
            uri, pos = params.textDocument.uri, params.position
            position = types.Position(line=int(pos.line), character=int(pos.character))
        except (AttributeError, TypeError, ValueError, OverflowError):  # Overflow: a line of Infinity
            raise JsonRpcInvalidParams(expected) from None
        if not isinstance(uri, str):  # the lookup needs a string; anything else is the client's error
            raise JsonRpcInvalidParams(expected)
        doc = ls.open_document(uri)
        offset = _cursor(doc, position)
        return await ls.completions.explain(ls.display_path(doc.uri), doc.source, offset, ls.settings,
                                            ls.document_context(doc.uri))

    @server.command(ACCEPTED_COMMAND)
    def suggestion_accepted(ls: GhostlineServer, *args) -> None:
        """``[id, characters]``: the editor inserted the whole suggestion (local telemetry)."""
        try:
            ls.telemetry.on_accepted(args)
        except ValueError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @server.feature(EVENT_METHOD)
    def suggestion_event(ls: GhostlineServer, params) -> None:
        """``{id, event, acceptedChars?}``: a suggestion was shown, partly taken or typed over."""
        ls.telemetry.on_event(params)

    @server.feature(FIND_SIMILAR)
    async def find_similar(ls: GhostlineServer, params) -> dict:
        """``{textDocument, range, limit?}`` -> ``{items: [{uri, range, score, preview}]}``."""
        return await ls.similarity.find_similar(params)

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: GhostlineServer, params: None) -> None:
        ls.shut_down = True
        ls.completions.shutdown()
        ls.similarity.shutdown()

    @server.feature(types.EXIT)
    def on_exit(ls: GhostlineServer, params: None) -> None:
        """End the process now, with the spec's exit code (1 without a prior ``shutdown``).

        Worker threads may still be indexing or generating, and whatever they would write
        next goes to a client that is gone: ending here, rather than after pygls closes the
        output, means nothing more is written and nothing waits for them (but the cache
        save that ``shutdown`` queued, for a few seconds)."""
        if ls.shut_down:
            ls.similarity.wait_saved(timeout=5.0)
        else:
            ls.similarity.abandon()
        logging.shutdown()
        os._exit(0 if ls.shut_down else 1)

    return server
