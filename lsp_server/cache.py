"""Type-ahead cache: typing the characters a suggestion showed costs no model call.

An LRU over (document, prefix, suffix).  A request whose prefix extends a cached prefix by
exactly the start of that entry's completion is answered with the rest of it.  Each entry
keeps its suggestion's origin, so that typing through a suggestion is still that suggestion
(telemetry counts it once, with the source and latency it was first shown with).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Entry:
    uri: str
    prefix: str
    suffix: str
    text: str
    origin: Any = None


class TypeAheadCache:
    """Filled by the generation thread, read on the event loop: a lock keeps a lookup's walk
    over the entries from meeting a put or a clear halfway."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, uri: str, prefix: str, suffix: str, text: str, origin: Any = None) -> None:
        key = (uri, hash(prefix), hash(suffix))
        with self._lock:
            self._entries[key] = _Entry(uri, prefix, suffix, text, origin)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every suggestion (another model answers from now on)."""
        with self._lock:
            self._entries.clear()

    def get(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The cached completion for this cursor, or None on a miss."""
        hit = self.lookup(uri, prefix, suffix)
        return None if hit is None else hit[0]

    def lookup(self, uri: str, prefix: str, suffix: str) -> tuple[str, Any] | None:
        """The cached completion for this cursor and its entry's origin, or None on a miss."""
        with self._lock:
            return self._lookup(uri, prefix, suffix)

    def _lookup(self, uri: str, prefix: str, suffix: str) -> tuple[str, Any] | None:
        exact = self._entries.get((uri, hash(prefix), hash(suffix)))
        if exact is not None and exact.prefix == prefix and exact.suffix == suffix:
            self._entries.move_to_end((uri, hash(prefix), hash(suffix)))
            return exact.text, exact.origin
        # Newest first: the suggestion the user is most likely typing through.
        for key in reversed(self._entries):
            e = self._entries[key]
            if e.uri != uri or e.suffix != suffix or len(prefix) <= len(e.prefix):
                continue
            typed_len = len(prefix) - len(e.prefix)
            if typed_len < len(e.text) and prefix.startswith(e.prefix) and e.text.startswith(prefix[len(e.prefix):]):
                return e.text[typed_len:], e.origin
        return None
