"""Acceptance telemetry, kept on this machine: what became of each suggestion shown.

The server gives every inline completion item an id and remembers, for the last few hundred
ids, where the suggestion came from (line memory, the model, the adapted model or a remote server), its
language, length, latency and confidence.  The id travels in the item's ``command``, which
an editor runs when the whole suggestion is accepted (``workspace/executeCommand``
``ghostline.suggestionAccepted [id, characters]``); everything else the client reports with
the ``ghostline/suggestionEvent`` notification ``{id, event, acceptedChars?}``: ``shown``,
``partial`` (a word or a line of it taken), ``typedOver``, or ``accepted``.

Each event is one JSON line appended to ``<cache folder>/telemetry/events.jsonl`` (see
``FIELDS``); the suggestion's text only with ``telemetryIncludeText``.  Nothing is sent
anywhere: ``ghostline stats`` (``stats.py``) reads the file.  With ``telemetry`` off items carry
no id and nothing is written.  The file is rotated to ``events.1.jsonl`` past
``MAX_LOG_BYTES``, so it never grows without bound.  Appending one short line is cheap
(microseconds), so it happens in the notification's handler, never in a completion request.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lsp_server.jsonrpc import param
from lsp_server.settings import ServerSettings
from model.adapted import default_cache_dir

log = logging.getLogger(__name__)

ACCEPTED_COMMAND = "ghostline.suggestionAccepted"  # the item's command: the whole suggestion was taken
EVENT_METHOD = "ghostline/suggestionEvent"
EVENTS = ("shown", "accepted", "partial", "typedOver")
SOURCES = ("line memory", "model", "adapted model", "remote model")
# The keys of one log line; "text" only when telemetryIncludeText is on.
FIELDS = ("time", "event", "id", "source", "language", "shownChars", "acceptedChars", "latencyMs", "confidence",
          "model", "text")
LOG_NAME = "events.jsonl"
MAX_LOG_BYTES = 8 * 1024 * 1024  # about 30,000 events; one older file is kept beside it
MAX_ID_CHARS = 64
MAX_ACCEPTED_CHARS = 1_000_000


def log_path(cache_folder: Path | None = None) -> Path:
    """Where the events are written: ``<cache folder>/telemetry/events.jsonl``."""
    return Path(cache_folder or default_cache_dir()) / "telemetry" / LOG_NAME


def rotated(path: Path) -> Path:
    """The previous file, once ``path`` outgrew ``MAX_LOG_BYTES``: ``events.1.jsonl``."""
    return path.with_name(f"{path.stem}.1{path.suffix}")


@dataclass(frozen=True)
class Origin:
    """Where a suggestion came from.  The completion pipeline makes one per suggestion and
    keeps it with the text in the type-ahead cache, so the rest of a suggestion being typed
    through is the same suggestion (one id)."""

    id: str
    source: str  # one of SOURCES
    language: str  # the editor's language id, else ours from the suffix; "unknown" if neither
    confidence: float
    model: str | None  # the model's name in the status bar; None for line memory

    @classmethod
    def new(cls, source: str, language: str, confidence: float, model: str | None) -> Origin:
        return cls(uuid.uuid4().hex[:16], source, language, confidence, model)


@dataclass
class _Suggestion:
    """What the server knows of one suggestion it answered with."""

    origin: Origin
    shown_chars: int
    latency_ms: float  # of the answer that first carried it (typing through it is a cache hit)
    text: str | None  # kept only while telemetryIncludeText is on
    shown: bool = False  # "shown" was logged (a client may report it more than once)
    accepted_chars: int = 0  # logged so far, in partial and whole accepts


class EventLog:
    """Appends JSON lines to a file, rotating it when it grows past ``max_bytes``."""

    def __init__(self, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.max_bytes = max_bytes
        self._failed: set[Path] = set()  # folders that could not be written: warned once each

    def append(self, path: Path, record: dict) -> bool:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                if path.stat().st_size + len(line) > self.max_bytes:
                    os.replace(path, rotated(path))
            except FileNotFoundError:
                pass
            # One write of one line in append mode: lines from two servers never interleave.
            with open(path, "a", encoding="utf-8") as f:
                f.write(line)
            return True
        except OSError as exc:
            if path.parent not in self._failed:
                self._failed.add(path.parent)
                log.warning("telemetry: cannot write %s (%s); events are not recorded", path, exc)
            return False


class Telemetry:
    """The ids of recent suggestions and what they were; events become log lines.

    ``settings()`` is read at each call, so switching ``telemetry`` off takes effect at once.
    """

    def __init__(self, settings: Callable[[], ServerSettings], capacity: int = 512,
                 events: EventLog | None = None) -> None:
        self._settings = settings
        self.capacity = capacity
        self._suggestions: OrderedDict[str, _Suggestion] = OrderedDict()
        self.events = events or EventLog()

    def offer(self, origin: Origin, text: str, latency_ms: float) -> str | None:
        """The id to give an item carrying ``text`` from ``origin``; None with telemetry off."""
        settings = self._settings()
        if not settings.telemetry:
            return None
        known = self._suggestions.get(origin.id)
        if known is None:
            self._suggestions[origin.id] = _Suggestion(
                origin, len(text), latency_ms, text if settings.telemetry_include_text else None)
            while len(self._suggestions) > self.capacity:
                self._suggestions.popitem(last=False)
        else:
            self._suggestions.move_to_end(origin.id)
        return origin.id

    def record(self, suggestion_id: str, event: str, accepted_chars: int = 0) -> bool:
        """Log one event of a known suggestion; False when nothing was written (telemetry off,
        an id this server no longer knows, or a repeated "shown")."""
        settings = self._settings()
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        suggestion = self._suggestions.get(suggestion_id)
        if not settings.telemetry or suggestion is None:
            return False
        if event == "shown":
            if suggestion.shown:
                return False
            suggestion.shown = True
        if event in ("accepted", "partial"):
            # Never more than the suggestion holds: after a partial accept an editor may run
            # the command of the item it first showed, whose length counts the part taken.
            accepted_chars = min(accepted_chars, max(0, suggestion.shown_chars - suggestion.accepted_chars))
            suggestion.accepted_chars += accepted_chars
        else:
            accepted_chars = 0
        o = suggestion.origin
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            "id": suggestion_id,
            "source": o.source,
            "language": o.language,
            "shownChars": suggestion.shown_chars,
            "acceptedChars": accepted_chars,
            "latencyMs": round(suggestion.latency_ms, 1),
            "confidence": round(o.confidence, 3),
            "model": o.model,
        }
        if settings.telemetry_include_text and suggestion.text is not None:
            record["text"] = suggestion.text
        return self.events.append(log_path(settings.cache_folder()), record)

    def on_event(self, params: Any) -> bool:
        """``ghostline/suggestionEvent``: a malformed one is logged and dropped (a notification
        has no answer to carry an error)."""
        try:
            suggestion_id, event, chars = _parse_event(params)
            return self.record(suggestion_id, event, chars)
        except ValueError as exc:
            log.warning("ignored a %s notification: %s", EVENT_METHOD, exc)
            return False

    def on_accepted(self, args: tuple) -> bool:
        """``ghostline.suggestionAccepted [id, characters]``; bad arguments raise ValueError."""
        if len(args) != 2:
            raise ValueError(f"{ACCEPTED_COMMAND} takes [id, characters], got {len(args)} arguments")
        return self.record(_check_id(args[0]), "accepted", _check_chars(args[1]))


def _check_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise ValueError(f"a suggestion id is a string of 1 to {MAX_ID_CHARS} characters, got {value!r:.80}")
    return value


def _check_chars(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ACCEPTED_CHARS:
        raise ValueError(f"acceptedChars must be an integer from 0 to {MAX_ACCEPTED_CHARS}, got {value!r:.80}")
    return value


def _parse_event(params: Any) -> tuple[str, str, int]:
    event = param(params, "event")
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r:.80}")
    chars = param(params, "acceptedChars")
    return _check_id(param(params, "id")), event, 0 if chars is None else _check_chars(chars)
