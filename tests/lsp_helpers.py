"""What the suites that drive the real server share: a client that records what the server
sends, and one helper per request they make."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types

from lsp_server import client as lsp_client
from lsp_server.client import GhostlineClient


class RecordingClient(GhostlineClient):
    """The package's client, also keeping the server's log lines, diagnostics and status."""

    def __init__(self) -> None:
        super().__init__()
        self.status = None  # the last ghostline/status (pygls hands it over as a namedtuple)
        self.logs: list[str] = []  # the server's window/logMessage lines, newest last
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}  # the latest per document

    def on_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.diagnostics[params.uri] = params.diagnostics

    def on_log(self, params: types.LogMessageParams) -> None:
        self.logs.append(params.message)
        del self.logs[:-500]

    def on_status(self, params) -> None:
        self.status = params

    async def wait_for_diagnostics(self, predicate, timeout: float = 60.0) -> None:
        """Wait until ``predicate(self.diagnostics)`` holds (hints arrive when the index is ready)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.diagnostics):
            if time.monotonic() > deadline:
                raise TimeoutError(f"diagnostics never matched; last: {self.diagnostics}")
            await asyncio.sleep(0.02)


def running_server(root: Path, options: dict | None = None, **kwargs):
    """``lsp_server.client.running_server`` with a :class:`RecordingClient`."""
    return lsp_client.running_server(root, options, client_class=RecordingClient, **kwargs)


async def until(predicate, timeout: float = 20.0) -> None:
    """Wait for a notification-driven condition (messages arrive on their own time)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def status(client: RecordingClient, key: str):
    """A field of the last ``ghostline/status``, or None before the first."""
    if client.status is None:
        return None
    return client.status[key] if isinstance(client.status, dict) else getattr(client.status, key)


def insert(client: GhostlineClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    """An incremental didChange that types ``text`` at ``line``/``character``."""
    client.change(uri, version, (line, character), (line, character), text)


async def complete(client: GhostlineClient, uri: str, line: int, character: int) -> types.CompletionList:
    """``textDocument/completion`` (the fallback for editors without inline completions)."""
    return await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)))


async def explain(client: GhostlineClient, uri: str, line: int, character: int):
    """``ghostline/explainPrompt``: the prompt the server would build there, as a namedtuple."""
    return await client.protocol.send_request_async("ghostline/explainPrompt", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})


async def find_similar(client: GhostlineClient, uri: str, start: int, end: int, limit: int = 10) -> list[dict]:
    """``ghostline/findSimilar`` on lines ``start``-``end``; items as plain dicts."""
    result = await client.protocol.send_request_async("ghostline/findSimilar", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": start, "character": 0},
                                                "end": {"line": end, "character": 0}}, "limit": limit})
    return plain(result)["items"]


def start_line(item: dict) -> int:
    """The first line of a findSimilar item."""
    return item["range"]["start"]["line"]


def plain(value):
    """pygls hands back custom-request results as namedtuples; the tests compare dicts."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
