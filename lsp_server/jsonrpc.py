"""What the server reads and answers when the client's bytes are not a clean LSP stream.

pygls frames messages by ``Content-Length`` header lines and structures each body with
cattrs.  Left alone, two things go wrong on bad input:

* **Framing.**  pygls takes a header line only when the whole line is
  ``Content-Length: N\\r\\n``.  After one frame it cannot read (no usable length, or a body
  shorter than announced) the next header arrives glued to the rest of the broken body on
  one line, is not recognised, nor is any header after it: the server stays up but deaf.
  A length of a terabyte makes it allocate the body up front and die of ``MemoryError``.
  ``ResyncingReader`` lets a line that *ends* in a length header count as that header, so
  reading resumes at the next message, and drops lengths over ``MAX_MESSAGE_BYTES``.
* **Answers.**  A request whose parameters do not fit its method (a string for a line
  number), whose envelope is broken (``"jsonrpc": "1.0"``, an array as id) or that is not
  JSON-RPC at all is logged and dropped by pygls, and the client waits forever for an answer.
  ``GhostlineProtocol`` answers such requests with ``InvalidParams``/``InvalidRequest``
  (id null where the id itself is unusable, as JSON-RPC says) and drops such notifications
  with a log line instead of an error popup.  Requests after ``shutdown`` get the
  ``InvalidRequest`` the spec asks for, where pygls drops them unanswered.
"""

from __future__ import annotations

import logging
import re
from typing import Any, BinaryIO

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest, JsonRpcServerNotInitialized
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCRequest
from pygls.protocol.language_server import lsp_method

from lsp_server.documents import find_document

log = logging.getLogger(__name__)

# VS Code does not sync documents over 50 MB to extensions; their JSON stays below this.
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
_LENGTH_HEADER = re.compile(rb"content-length:[ \t]*(\d+)[ \t]*\r?\n\Z", re.IGNORECASE)
_DROPPED_HEADER = b"Ghostline-Dropped: Content-Length\r\n"  # a header pygls reads past


def param(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a custom method's params: pygls hands them over as namedtuples, some
    clients' as dicts; anything else has no fields."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default) if hasattr(type(obj), "_fields") else default


class ResyncingReader:
    """The server's stdin as pygls reads it: ``readline`` for headers, ``read`` for bodies."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readline(self) -> bytes:
        line = self._stream.readline()
        match = _LENGTH_HEADER.search(line)
        if match is None:
            return line  # another header, the blank line, or the rest of a broken message
        digits = match.group(1)
        if len(digits) > 12 or int(digits) > MAX_MESSAGE_BYTES:
            log.warning("dropped a message announced as %s bytes (limit %d)", digits[:20].decode(), MAX_MESSAGE_BYTES)
            return _DROPPED_HEADER
        if match.start() > 0:
            log.warning("skipped %d bytes that were not part of any message", match.start())
        return b"Content-Length: %d\r\n" % int(digits)

    def read(self, size: int) -> bytes:
        return self._stream.read(size)


class _Unreadable(dict):
    """A message pygls could not structure: the raw object, with why (answered, or dropped)."""

    def __init__(self, data: dict, error: JsonRpcException) -> None:
        super().__init__(data)
        self.error = error


class GhostlineProtocol(LanguageServerProtocol):
    """pygls' protocol, except that every request gets an answer, even one it cannot read,
    and the session's order holds: nothing before ``initialize``, which comes once."""

    _initialize_seen = False

    def structure_message(self, data: dict) -> Any:
        # Called for every JSON object in a body, innermost first: only messages carry "jsonrpc".
        if "jsonrpc" in data and (problem := _envelope_problem(data)):
            return _Unreadable(data, JsonRpcInvalidRequest(problem))
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            return _Unreadable(data, _described(data, exc))

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Unreadable):
            self._reject(message, message.error)
        elif isinstance(message, dict):  # structure_message leaves objects without "jsonrpc" as they are
            self._reject(message, JsonRpcInvalidRequest('not JSON-RPC 2.0: "jsonrpc" is missing'))
        elif not hasattr(message, "jsonrpc"):
            log.warning("ignored a message that is not a JSON object: %.80r", message)
        elif self._shutdown and isinstance(message, RPCRequest):
            self._send_error(message.id, JsonRpcInvalidRequest(f"the server is shutting down: {message.method}"))
        elif not self._in_order(message):
            return
        else:
            super().handle_message(message)

    def _in_order(self, message: Any) -> bool:
        """Requests before ``initialize`` get -32002 and notifications are dropped (``exit``
        aside), as the spec says; a second ``initialize`` is refused, since it would reset
        the open documents."""
        method = getattr(message, "method", None)
        is_request = isinstance(message, RPCRequest) or (method is not None and getattr(message, "id", None)
                                                         is not None)
        if method == types.INITIALIZE and is_request:
            if self._initialize_seen:
                self._send_error(message.id, JsonRpcInvalidRequest("the server is already initialized"))
                return False
            self._initialize_seen = True
            return True
        if self._initialize_seen or method is None or method == types.EXIT:
            return True
        if is_request:
            self._send_error(message.id, JsonRpcServerNotInitialized(f"{method} before initialize"))
        else:
            log.warning("ignored %s before initialize", method)
        return False

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        """pygls files every handler's future under its message id for ``$/cancelRequest``
        but removes it only when answering a request; forget each one when it is done, so
        notifications (a ``didChange`` per keystroke) do not pile up."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda done, key=msg_id: self._forget(key, done))

    def _forget(self, msg_id, future) -> None:
        if self._request_futures.get(msg_id) is future:
            self._request_futures.pop(msg_id, None)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        """An edit to a document that is not open is dropped with a log line (pygls would
        raise KeyError, which editors show as an error popup)."""
        if self._is_open(params.text_document.uri, "didChange"):
            yield from super().lsp_text_document__did_change(params)

    def _is_open(self, uri: str, method: str) -> bool:
        if find_document(self.workspace, uri) is not None:
            return True
        log.warning("ignored %s for a document that is not open: %.200s", method, uri)
        return False

    def _reject(self, data: dict, error: JsonRpcException) -> None:
        if "method" not in data or "id" not in data:  # a notification or an answer: nobody waits
            log.warning("ignored a message %.80r that cannot be read: %s", data.get("method"), error.message)
            return
        msg_id = data["id"] if _usable_id(data["id"]) else None
        log.warning("request %r %.80r cannot be read: %s", msg_id, data["method"], error.message)
        self._send_error(msg_id, error)

    def _send_error(self, msg_id: int | str | None, error: JsonRpcException) -> None:
        # A plain object: lsprotocol's converter would leave out an id of null, which must be there.
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": error.code, "message": error.message}})


def _usable_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _envelope_problem(data: dict) -> str | None:
    if data["jsonrpc"] != "2.0":
        return f'"jsonrpc" must be "2.0", not {data["jsonrpc"]!r:.20}'
    if "id" in data and not _usable_id(data["id"]):
        return "an id must be a string or an integer"
    if "method" in data and not isinstance(data["method"], str):
        return '"method" must be a string'
    return None


def _described(data: dict, exc: JsonRpcException) -> JsonRpcException:
    """InvalidParams naming what does not fit (``$.position.line``), without a traceback."""
    cause = exc.__cause__
    details = transform_error(cause) if isinstance(cause, ClassValidationError) else [f"{cause!r:.200}"]
    return JsonRpcInvalidParams(f"invalid params for {data.get('method')!r:.80}: " + "; ".join(details[:3]))
