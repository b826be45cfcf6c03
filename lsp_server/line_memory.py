"""Line memory: complete a line the way this code base already writes it.

Much of what a developer types already exists nearby: the same call a few lines up, the
same import as in the sibling module, the line that always follows ``def __init__(self):``
in this project.  A small model is bad at exactly that (it must copy through its context
window), while a lookup is exact and costs well under a millisecond.  So before the model
is asked, the server looks for lines that already exist:

* the cursor's line has text: lines of the document or the workspace that start with the
  same text (indentation aside) and go on; the nearest in the document wins, else the
  most frequent continuation in other files;
* the cursor's line is still empty: lines that follow the same previous line elsewhere;
  the most frequent wins.

Only what the editor shows is used: the document's own text (before and after the cursor)
and the same workspace sources as retrieval (open documents shadow files; the edited
file's saved copy is never read).  On the dev set this lifts exact match from 3.7 to
about 19 (docs/benchmarks.md).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LineMemoryConfig:
    min_previous_chars: int = 4  # an empty line is completed from a previous line at least this long
    max_matches_per_file: int = 64  # a one-letter prefix matches half a file; the first few say enough
    max_document_lines: int = 4000  # lines of the document scanned around the cursor


class FileLines:
    """One file's lines, indexed for both lookups (built once per file version)."""

    __slots__ = ("sorted", "following")

    def __init__(self, text: str) -> None:
        lines = [line.strip() for line in text.split("\n")]
        self.sorted = sorted(line for line in lines if line)
        self.following = _following(lines)

    def continuations(self, start: str, limit: int) -> list[str]:
        """What follows ``start`` on the lines that begin with it (and go on)."""
        out = []
        i = bisect.bisect_left(self.sorted, start)
        while i < len(self.sorted) and len(out) < limit and self.sorted[i].startswith(start):
            if len(self.sorted[i]) > len(start):
                out.append(self.sorted[i][len(start):])
            i += 1
        return out


class LineMemory:
    def __init__(self, config: LineMemoryConfig | None = None) -> None:
        self.config = config or LineMemoryConfig()

    def suggest(self, prefix: str, suffix: str, files: Iterable[FileLines] = ()) -> str | None:
        """The rest of the cursor's line, copied from an existing line; None if there is none.

        ``prefix``/``suffix``: the document before and after the cursor; ``files``: the
        workspace's other files (consumed lazily: the caller's time cap stops it).
        """
        before = prefix.split("\n")
        typed = before.pop().lstrip()
        after = suffix.split("\n")[1:]  # the rest of the cursor's line is not a source
        cap = self.config.max_document_lines
        before, after = before[-cap:], after[:cap]
        if typed:
            return self._continue_line(typed, before, after, files)
        return self._next_line(before, after, files)

    def _continue_line(self, typed: str, before: list[str], after: list[str],
                       files: Iterable[FileLines]) -> str | None:
        # The document first, nearest line first: the closest repetition is the likeliest.
        for distance in range(1, max(len(before), len(after)) + 1):
            for lines, i in ((before, len(before) - distance), (after, distance - 1)):
                if 0 <= i < len(lines):
                    line = lines[i].strip()
                    if line.startswith(typed) and len(line) > len(typed):
                        return line[len(typed):]
        counts: Counter[str] = Counter()
        for f in files:
            counts.update(f.continuations(typed, self.config.max_matches_per_file))
        return _most_common(counts)

    def _next_line(self, before: list[str], after: list[str], files: Iterable[FileLines]) -> str | None:
        previous = next((line.strip() for line in reversed(before) if line.strip()), "")
        if len(previous) < self.config.min_previous_chars:
            return None
        # The document in two parts, so that no pair spans the cursor: the previous line's
        # follower here is the line being typed, not an example of what follows it.
        last = max(i for i, line in enumerate(before) if line.strip())
        counts: Counter[str] = Counter()
        for part in (before[:last], after):
            counts.update(_following([line.strip() for line in part]).get(previous, ()))
        for f in files:
            counts.update(f.following.get(previous, ()))
        return _most_common(counts)


def _following(lines: list[str]) -> dict[str, list[str]]:
    """Each stripped line -> the non-empty lines that come right after it (blank lines skipped)."""
    following: dict[str, list[str]] = {}
    previous = None
    for line in lines:
        if not line:
            continue
        if previous is not None:
            following.setdefault(previous, []).append(line)
        previous = line
    return following


def _most_common(counts: Counter[str]) -> str | None:
    """The most frequent; among equals the first seen (the document, then nearer files)."""
    return counts.most_common(1)[0][0] if counts else None
