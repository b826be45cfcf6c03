"""A small LSP client that drives the real server over stdio, as an editor would.

Used by ``ghostline complete``, the benchmarks and the tests (which extend it in
``tests/lsp_helpers.py``): it starts ``python -m lsp_server``, opens a document and asks for
inline completions, so what it prints is exactly what an editor would show.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_server.documents import utf16_len
from model import __version__


class GhostlineClient(LanguageClient):
    def __init__(self) -> None:
        super().__init__("ghostline-client", __version__)
        self.messages: list[str] = []
        self.stderr_tail = ""

        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def _show(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

        # The server's log lines, status updates and hints arrive all the time; a client that
        # did not take them would print a warning for each one.
        @self.feature(types.WINDOW_LOG_MESSAGE)
        def _log(params: types.LogMessageParams) -> None:
            self.on_log(params)

        @self.feature("ghostline/status")
        def _status(params) -> None:
            self.on_status(params)

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.on_diagnostics(params)

    def on_log(self, params: types.LogMessageParams) -> None:
        """A ``window/logMessage`` from the server (kept by subclasses that want it)."""

    def on_status(self, params) -> None:
        """A ``ghostline/status`` from the server (kept by subclasses that want it)."""

    def on_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        """Similar-code hints for a document (kept by subclasses that want them)."""

    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        self.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))

    def change(self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        """An incremental didChange: replace ``start``-``end`` (line, UTF-16 column) by ``text``."""
        rng = types.Range(start=types.Position(*start), end=types.Position(*end))
        self.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    async def inline(self, uri: str, line: int, character: int) -> str:
        result = await self.text_document_inline_completion_async(
            inline_params(uri, line, character, types.InlineCompletionTriggerKind.Invoked))
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        if not items:
            return ""
        text = items[0].insert_text
        return text if isinstance(text, str) else text.value


def inline_params(uri: str, line: int, character: int,
                  trigger: types.InlineCompletionTriggerKind = types.InlineCompletionTriggerKind.Automatic,
                  ) -> types.InlineCompletionParams:
    """An inline completion request at ``line``/``character`` (UTF-16); Automatic is what an
    editor sends while the user types, Invoked what it sends when asked explicitly."""
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=trigger))


@asynccontextmanager
async def running_server(root: Path, options: dict | None = None, python: str = sys.executable,
                         server_args: tuple[str, ...] = ("-m", "lsp_server"),
                         env: dict[str, str] | None = None,
                         cwd: Path | None = None,
                         client_class: type[GhostlineClient] = GhostlineClient) -> AsyncIterator[GhostlineClient]:
    """Start the server, initialize it for workspace ``root``, and shut it down after.

    ``server_args``, ``env`` and ``cwd`` let tests start the server as an editor would (in
    the workspace) or under a wrapper (an audit hook); ``client_class`` lets them record more
    of what the server sends."""
    client = client_class()
    await client.start_io(python, *server_args, env=env, cwd=cwd)
    # pygls pipes the server's stderr; unread, a chatty server would block once the pipe fills.
    drain = asyncio.create_task(_drain(client))
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=root.resolve().as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.resolve().as_uri(), name=root.name)],
            initialization_options=options or {},
        ))
        client.initialized(types.InitializedParams())
        yield client
        await asyncio.wait_for(client.shutdown_async(None), 30)
        client.exit(None)
    finally:
        # After an error the server was never told to exit: end it, or stop() waits forever.
        server = client._server
        if server is not None and server.returncode is None:
            try:
                await asyncio.wait_for(server.wait(), 5)
            except TimeoutError:
                server.kill()
        await client.stop()
        drain.cancel()


async def _drain(client: GhostlineClient) -> None:
    """Keep the last 64 KB of the server's stderr (for error reports) and discard the rest."""
    stream = client._server.stderr if client._server is not None else None
    if stream is None:
        return
    while chunk := await stream.read(65536):
        client.stderr_tail = (client.stderr_tail + chunk.decode("utf-8", "replace"))[-65536:]


async def _complete(path: Path, line: int, column: int, options: dict) -> tuple[str, float, list[str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    uri = path.resolve().as_uri()
    async with running_server(path.resolve().parent, options) as client:
        client.open(uri, text)
        t0 = time.perf_counter()
        completion = await client.inline(uri, line, utf16_len(lines[line][:column]))  # the CLI counts characters
        return completion, time.perf_counter() - t0, client.messages


def complete_file(path: Path, line: int, column: int, model: Path | None = None, max_tokens: int = 48) -> str:
    """Complete at 0-based (line, column) of ``path`` through the language server; a report."""
    options: dict = {"maxTokens": max_tokens, "debounceMs": 0}
    if model is not None:
        options["modelPath"] = str(model)
    completion, seconds, messages = asyncio.run(_complete(path, line, column, options))
    before = path.read_text(encoding="utf-8", errors="replace").split("\n")[line][:column]
    report = [f"{path}:{line + 1}:{column + 1}", f"  {before}\u2502{completion}"]
    report.append(f"  ({len(completion)} characters from the language server in {1000 * seconds:.0f} ms)")
    report += [f"  server: {m}" for m in messages]
    return "\n".join(report)
