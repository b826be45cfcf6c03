"""The language server's remote backend: completions from an OpenAI-compatible server.

With ``backend: "remote"`` the completion pipeline asks ``remoteUrl`` (``ghostline serve
--http``, or vLLM, TGI, llama.cpp's server) instead of the local model, with the document
around the cursor as ``prompt`` and ``suffix``.  When the server cannot be used (down,
unreachable, refusing the token) the local model answers instead, and the user hears
about it once, until the server answers again.  After a failure the server is left alone
for ``RETRY_SECONDS``, so an unreachable host does not add a timeout to every keystroke.

One POST with a timeout from a worker thread: the standard library's ``urllib`` does it,
so the language server needs no HTTP client package.  The token goes in the
``Authorization`` header and nowhere else: not in a log line, a message or an error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from model import __version__

log = logging.getLogger("lsp_server.completion")

TIMEOUT_SECONDS = 5.0  # a completion later than this is no use to someone typing
RETRY_SECONDS = 15.0
_MAX_ANSWER_BYTES = 1 << 20


class RemoteError(RuntimeError):
    """The server could not be used; the message says why (without the token)."""


@dataclass(frozen=True)
class RemoteAnswer:
    text: str
    tokens: int  # as the server counts them (usage.completion_tokens), 0 if it does not say
    finish_reason: str


def completions_url(base: str) -> str:
    """``http://h:8000``, ``http://h:8000/v1`` or the full ``.../v1/completions``."""
    base = base.strip().rstrip("/")
    if base.endswith("/completions"):
        return base
    return base + ("/completions" if base.endswith("/v1") else "/v1/completions")


def shown_url(url: str) -> str:
    """``url`` without user:password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def request_completion(url: str, token: str, body: dict, timeout: float = TIMEOUT_SECONDS) -> RemoteAnswer:
    """POST ``body`` to the completions endpoint; the first choice, or a ``RemoteError``."""
    endpoint = completions_url(url)
    if urlsplit(endpoint).scheme not in ("http", "https"):
        raise RemoteError(f"remoteUrl must start with http:// or https://, not {shown_url(url)!r}")
    headers = {"Content-Type": "application/json", "User-Agent": f"ghostline/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read(_MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        raise RemoteError(f"it answered HTTP {exc.code}{_error_message(exc)}") from None
    except urllib.error.URLError as exc:
        raise RemoteError(f"unreachable: {getattr(exc.reason, 'strerror', None) or exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise RemoteError(f"unreachable: {exc.strerror if isinstance(exc, OSError) and exc.strerror else 'timed out'}"
                          ) from None
    except ValueError:
        raise RemoteError("its answer is not JSON") from None
    try:
        choice = data["choices"][0]
        text, reason = choice["text"], choice.get("finish_reason") or "stop"
        usage = data.get("usage") or {}
        tokens = int(usage.get("completion_tokens") or 0)
        if not isinstance(text, str):
            raise TypeError
    except (KeyError, IndexError, TypeError, ValueError):
        raise RemoteError("its answer is not an OpenAI completion") from None
    return RemoteAnswer(text, tokens, str(reason))


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The server's own reason from an OpenAI-style error body, if it gave one."""
    try:
        message = json.loads(exc.read(65536))["error"]["message"]
    except Exception:  # noqa: BLE001 - any other body: the status says enough
        return ""
    return f" ({str(message)[:200]})"


class RemoteBackend:
    """Asks the remote server, remembers when it failed, and tells the user once per outage."""

    def __init__(self, on_unusable: Callable[[str], None]) -> None:
        self._on_unusable = on_unusable
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._target: tuple[str, int] | None = None  # (url, hash(token)): new settings, a fresh start

    def complete(self, url: str, token: str, body: dict) -> RemoteAnswer | None:
        """The server's answer, or None when it cannot be used now (the caller asks the local model)."""
        with self._lock:
            target = (url, hash(token))
            if target != self._target:
                self._target, self._down_since, self._retry_at = target, None, 0.0
            if time.monotonic() < self._retry_at:
                return None
        try:
            answer = request_completion(url, token, body)
        except RemoteError as exc:
            with self._lock:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                first = self._down_since is None
                if first:
                    self._down_since = time.monotonic()
            if first:
                log.warning("completion server %s cannot be used: %s; using the local model", shown_url(url), exc)
                self._on_unusable(f"ghostline: the completion server {shown_url(url)} cannot be used ({exc}); "
                                  f"completing with the local model until it answers again.")
            return None
        with self._lock:
            if self._down_since is not None:
                log.info("completion server %s answers again after %.0f s", shown_url(url),
                         time.monotonic() - self._down_since)
                self._down_since = None
        return answer
