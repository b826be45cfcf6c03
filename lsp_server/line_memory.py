"""Line memory: complete a line the way this code base already writes it.

Much of what a developer types already exists nearby: the same call a few lines up, the
same import as in the sibling module, the line that always follows ``def __init__(self):``
in this project.  A small model is bad at exactly that (it must copy through its context
window), while a lookup is exact and costs well under a millisecond.  So before the model
is asked, the server looks for lines that already exist:

* the cursor's line has text: lines of the document or the workspace that start with the
  same text (indentation aside) and go on; the nearest in the document wins, else the
  most frequent continuation in other files;
* the cursor's line is still empty: lines that follow the same previous line or precede
  the same next line elsewhere, and between two items of a sorted list (imports), the
  items of other files that sort between them; and the lines written most often;
* no line starts that way: lines that contain the last few tokens typed, and what
  follows them there.

Every candidate is kept with what is known about it (how often, how near) and the
choice among them is ``candidates.rank``'s, with a confidence attached.

Only what the editor shows is used: the document's own text (before and after the cursor)
and the same workspace sources as retrieval (open documents shadow files; the edited
file's saved copy is never read).
"""

from __future__ import annotations

import re
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, islice

from lsp_server.candidates import (
    Candidate,
    RankerWeights,
    default_weights,
    describe_context,
    identifiers,
    list_item_kind,
    rank,
    token_tails,
)


@dataclass(frozen=True)
class LineMemoryConfig:
    min_previous_chars: int = 4  # an empty line is completed from a previous line at least this long
    max_matches_per_file: int = 64  # a one-letter prefix matches half a file; the first few say enough
    max_document_lines: int = 4000  # lines of the document scanned around the cursor
    tails: bool = True  # look for the last tokens typed inside other lines
    nearby_lines: int = 40  # lines around the cursor whose identifiers count as "nearby"
    max_candidates: int = 32  # the most frequent and nearest are ranked; the rest never win
    # Of those, this many are the document's nearest, however rare: in a large workspace
    # the lines common everywhere would otherwise crowd out the one written just above.
    nearest_kept: int = 8
    # For an empty line, this many of the lines written most often (in the document, and
    # summed over the workspace's files) join the candidates; 0: none.
    common_lines: int = 6


class FileLines:
    """One file's lines, indexed for the lookups (built once per file version).

    Everything lives in one string of the file's stripped, non-blank lines in sorted order
    and a few integer arrays over it: a string object per line and dictionaries of them
    cost five times the file's size (a 600k-line workspace: ~110 MB against ~25 MB).
    Equal lines keep their file order, so the first of them is the first occurrence."""

    __slots__ = ("joined", "starts", "next_pos", "prev_pos", "common")

    def __init__(self, text: str) -> None:
        lines = [line for line in (raw.strip() for raw in text.split("\n")) if line]
        order = sorted(range(len(lines)), key=lines.__getitem__)  # stable: equal lines in file order
        self.joined = "\n".join(lines[i] for i in order)  # one string: a substring search is one C loop
        # Python arrays, not numpy: the lookups read single items, where numpy is slow.
        self.starts = array("q", accumulate((len(lines[i]) + 1 for i in order), initial=0))
        position = array("l", [0]) * len(lines)  # file order -> sorted position
        for p, i in enumerate(order):
            position[i] = p
        # The non-blank line after each occurrence, and the one before it (-1: none).
        self.next_pos = array("l", [-1]) * len(lines)
        self.prev_pos = array("l", [-1]) * len(lines)
        for a, b in zip(position, position[1:], strict=False):
            self.next_pos[a] = b
            self.prev_pos[b] = a
        # The lines written most often (twice or more), with their counts.
        tally = Counter(lines).most_common(COMMON_PER_FILE)
        self.common = tuple((line, n) for line, n in tally if n > 1)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i: int) -> str:
        return self.joined[self.starts[i]:self.starts[i + 1] - 1]

    def _first(self, key: str) -> int:
        """The first sorted position whose line is not below ``key`` (``bisect_left``,
        inlined: it runs for every file on every keystroke)."""
        joined, starts = self.joined, self.starts
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if joined[starts[mid]:starts[mid + 1] - 1] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _range(self, line: str) -> tuple[int, int]:
        """Sorted positions of the occurrences of ``line``."""
        lo = self._first(line)
        hi = lo
        while hi < len(self) and self[hi] == line:
            hi += 1
        return lo, hi

    def continuations(self, start: str, limit: int) -> list[tuple[str, str, str]]:
        """What follows ``start`` on the lines that begin with it (and go on), each with
        the line above the first occurrence of its line that has one and the line below
        this occurrence ("" if none)."""
        first = self._first(start + "\x00")  # past the lines equal to ``start``: they do not go on
        end = min(len(self), first + limit)
        if first >= end:
            return []
        out: list[tuple[str, str, str]] = []
        line, above, joined, starts = None, "", self.joined, self.starts
        prev_pos, next_pos = self.prev_pos, self.next_pos
        for k, current in enumerate(joined[starts[first]:starts[end] - 1].split("\n")):
            if not current.startswith(start):
                break
            if current != line:  # the first of equal lines: its first occurrence
                j = prev_pos[first + k]
                line, above = current, (joined[starts[j]:starts[j + 1] - 1] if j >= 0
                                        else self._above(first + k))
            j = next_pos[first + k]
            out.append((current[len(start):], above, joined[starts[j]:starts[j + 1] - 1] if j >= 0 else ""))
        return out

    def followers(self, line: str) -> list[tuple[str, str]]:
        """The non-blank lines that come right after ``line``, each with the line after it
        ("" at the end of the file)."""
        lo, hi = self._range(line)
        return [(self[j], self._at(self.next_pos[j])) for j in self.next_pos[lo:hi] if j >= 0]

    def leaders(self, line: str) -> list[tuple[str, str]]:
        """The non-blank lines that come right before ``line``, each with the line above it."""
        lo, hi = self._range(line)
        return [(self[j], self._at(self.prev_pos[j])) for j in self.prev_pos[lo:hi] if j >= 0]

    def between(self, low: str | None, high: str | None, keep: Callable[[str], bool],
                limit: int) -> list[str]:
        """Up to ``limit`` distinct lines for which ``keep`` holds, sorting after ``low`` and
        before ``high`` (None: no bound), the nearest to a bound first: where lines are kept
        sorted (imports, the names of an import list), what belongs between two of them.
        At most ``4 * limit`` lines are looked at."""
        lo = 0 if low is None else self._first(low + "\x00")
        hi = len(self) if high is None else self._first(high)
        if low is not None:
            order = range(lo, min(hi, lo + 4 * limit))
        else:
            order = range(hi - 1, max(lo, hi - 4 * limit) - 1, -1)
        out: list[str] = []
        for i in order:
            line = self[i]
            if keep(line) and line not in out:
                out.append(line)
                if len(out) == limit:
                    break
        return out

    def _at(self, i: int) -> str:
        return self[i] if i >= 0 else ""

    def _above(self, lo: int) -> str:
        """The line above the first of the equal lines from sorted position ``lo`` that has
        one ("" if none: each is its file's first non-blank line)."""
        line, j = self[lo], lo
        while j < len(self) and self[j] == line:
            if self.prev_pos[j] >= 0:
                return self[self.prev_pos[j]]
            j += 1
        return ""

    def containing(self, fragment: str, limit: int) -> list[str]:
        """What follows ``fragment`` on lines that contain it after their start (and go on)."""
        out: list[str] = []
        text, pos = self.joined, 0
        while len(out) < limit:
            j = text.find(fragment, pos)
            if j < 0:
                break
            line_end = text.find("\n", j)
            line_end = len(text) if line_end < 0 else line_end
            if j > 0 and text[j - 1] != "\n" and line_end > j + len(fragment):  # at a line start: a continuation
                out.append(text[j + len(fragment):line_end])
            pos = line_end + 1
        return out


_WORD = re.compile(r"\w")

# The most frequent lines each file keeps for ``common_candidates``.
COMMON_PER_FILE = 16


class LineMemory:
    def __init__(self, config: LineMemoryConfig | None = None, weights: RankerWeights | None = None) -> None:
        self.config = config or LineMemoryConfig()
        self.weights = weights or default_weights()

    def suggest(self, prefix: str, suffix: str, files: Iterable[FileLines] = ()) -> str | None:
        """The best candidate's text, or None if no existing line fits."""
        ranked = self.candidates(prefix, suffix, files)
        return ranked[0].text if ranked else None

    def candidates(self, prefix: str, suffix: str, files: Iterable[FileLines] = (),
                   extra: Iterable[Candidate] = ()) -> list[Candidate]:
        """Every way an existing line could complete the cursor's line, best first.

        ``prefix``/``suffix``: the document before and after the cursor; ``files``: the
        workspace's other files (consumed lazily: the caller's time cap stops it);
        ``extra``: candidates from elsewhere (the model) to rank with them.
        """
        before = prefix.split("\n")
        cursor_line = before.pop()
        typed = cursor_line.lstrip()
        after = suffix.split("\n")[1:]  # the rest of the cursor's line is not a source
        cap = self.config.max_document_lines
        before, after = before[-cap:], after[:cap]
        files = list(files)
        per_file = self.config.max_matches_per_file
        previous, following = line_above(before, len(before)), line_below(after)
        if typed:
            found = continue_candidates(typed, before, after, files, per_file)
            if not found and self.config.tails:
                found = tail_candidates(typed, before, after, files, per_file)
        else:
            # Both kinds read the document's lines stripped: strip them once.
            stripped = [line.strip() for line in before], [line.strip() for line in after]
            found = follow_candidates(*stripped, files, self.config.min_previous_chars, previous, following)
            if self.config.common_lines:
                indent = len(cursor_line) - len(cursor_line.lstrip())
                below = next((raw for raw in after if raw.strip()), None)
                deeper = None if below is None else len(below) - len(below.lstrip()) > indent
                found += common_candidates(*stripped, files, self.config.common_lines, deeper)
        by_text: dict[str, Candidate] = {}
        for c in found:  # a line found for its neighbours keeps that kind
            by_text.setdefault(c.text, c)
        model_text = None
        for c in extra:
            if c.kind == "model":
                model_text = c.text
            by_text.setdefault(c.text.rstrip(), c)
        pool = list(by_text.values())
        if len(pool) > self.config.max_candidates:
            pool = _kept(pool, self.config.max_candidates, self.config.nearest_kept)
        n = self.config.nearby_lines
        nearby = identifiers("\n".join(before[-n:] + [typed] + after[: n // 4]))
        describe_context(pool, nearby, model_text, previous=previous, following=following, typed=typed)
        return rank(pool, typed, self.weights)


# The lines above (and below) a candidate's occurrences kept for comparison with the
# cursor's (the first few say enough, and each costs a tokenization).
MAX_ABOVE = 8
# Items of a sorted list taken from each file for an empty line between two of them.
MAX_BETWEEN = 8


class _Pool:
    """Candidates by text, merging what each occurrence says."""

    def __init__(self) -> None:
        self.by_text: dict[str, Candidate] = {}

    def add(self, text: str, kind: str, *, distance: int = 0, before: bool = False,
            workspace: bool = False, tail_chars: int = 0, above: str = "", below: str = "") -> None:
        """One occurrence of ``text``; ``above``/``below``: the non-blank lines around it
        ("" for none or unknown).  Called for every occurrence in the workspace on every
        keystroke: kept to a few dictionary and set operations."""
        c = self.by_text.get(text)
        if c is None:
            if not text.strip():
                return
            c = self.by_text[text] = Candidate(text=text, kind=kind, tail_chars=tail_chars)
        if above and len(c.above) < MAX_ABOVE:
            c.above.add(above)
        if below and len(c.below) < MAX_ABOVE:
            c.below.add(below)
        if workspace:
            c.ws_count += 1
        else:
            c.doc_count += 1
            if distance and (not c.distance or distance < c.distance):
                c.distance, c.before = distance, before

    def items(self) -> list[Candidate]:
        return list(self.by_text.values())


def continue_candidates(typed: str, before: list[str], after: list[str],
                        files: Iterable, per_file: int) -> list[Candidate]:
    """``continue`` candidates: lines that start with ``typed`` (stripped) and go on."""
    pool = _Pool()
    for lines, is_before in ((before, True), (after, False)):
        n = len(lines)
        for i, raw in enumerate(lines):
            line = raw.strip()
            if len(line) > len(typed) and line.startswith(typed):
                distance = n - i if is_before else i + 1
                pool.add(line[len(typed):], "continue", distance=distance, before=is_before,
                         above=line_above(lines, i), below=line_below(lines, i + 1))
    for f in files:
        for text, above, below in f.continuations(typed, per_file):
            pool.add(text, "continue", workspace=True, above=above, below=below)
    return pool.items()


def line_above(lines: list[str], i: int) -> str:
    """The nearest non-blank line above ``lines[i]``, stripped ("" at the top)."""
    for j in range(i - 1, -1, -1):
        if lines[j].strip():
            return lines[j].strip()
    return ""


def tail_candidates(typed: str, before: list[str], after: list[str], files: list,
                    per_file: int, max_candidates: int = 8, time_cap_s: float = 0.02) -> list[Candidate]:
    """``tail`` candidates: the longest token-boundary suffix of ``typed`` that occurs
    inside another line, and what follows it there to the line's end.  The workspace scan
    stops at ``time_cap_s`` (what was found by then counts)."""
    deadline = time.monotonic() + time_cap_s
    for tail in token_tails(typed):
        pool = _Pool()
        for lines, is_before in ((before, True), (after, False)):
            n = len(lines)
            for i, raw in enumerate(lines):
                j = raw.find(tail)
                if j >= 0:
                    rest = raw[j + len(tail):].rstrip()
                    distance = n - i if is_before else i + 1
                    pool.add(rest, "tail", distance=distance, before=is_before, tail_chars=len(tail),
                             above=line_above(lines, i))
        for f in files:
            if time.monotonic() > deadline:
                break
            for rest in f.containing(tail, per_file):
                pool.add(rest, "tail", workspace=True, tail_chars=len(tail))
        found = pool.items()
        if found:
            return _kept(found, max_candidates, max_candidates // 4)
    return []


def follow_candidates(before: list[str], after: list[str], files: Iterable,
                      min_previous_chars: int, previous: str, following: str) -> list[Candidate]:
    """``follow`` candidates for an empty line: what came after the same previous line
    elsewhere, what came before the same next line, and, where the neighbours are items
    of a sorted list (imports, the names of an import list), the items that sort between
    them.  ``before``/``after``: the document's lines above and below the cursor's,
    stripped; ``previous``/``following``: the cursor's non-blank neighbours (``line_above``,
    ``line_below``), which the caller also compares candidates with."""
    after_previous = len(previous) >= min_previous_chars
    before_following = len(following) >= min_previous_chars
    previous_kind, following_kind = list_item_kind(previous), list_item_kind(following)
    sorted_kind = previous_kind or following_kind
    if not (after_previous or before_following or sorted_kind):
        return []
    # The sorted list's bounds: the neighbours that are items of its kind.
    low = previous if previous_kind == sorted_kind else None
    high = following if following_kind == sorted_kind else None

    def same_kind(line: str) -> bool:
        return list_item_kind(line) == sorted_kind

    pool = _Pool()
    # The document in two parts so that no triple spans the cursor: the previous line's
    # follower here is the line being typed, not an example of what follows it.
    last = _last_nonblank(before)
    n = len(before)
    parts = (before[:last], True), (after, False)
    for part, is_before in parts:
        for i, above, line, below in _triples(part):
            if (after_previous and above == previous) or (before_following and below == following):
                pool.add(line, "follow", distance=n - i if is_before else i + 1, before=is_before,
                         above=above, below=below)
    for f in files:
        if after_previous:
            for line, below in f.followers(previous):
                pool.add(line, "follow", workspace=True, above=previous, below=below)
        if before_following:
            for line, above in f.leaders(following):
                pool.add(line, "follow", workspace=True, above=above, below=following)
        if sorted_kind:
            for line in f.between(low, high, same_kind, MAX_BETWEEN):
                pool.add(line, "follow", workspace=True)
    return pool.items()


def common_candidates(before: list[str], after: list[str], files: Iterable[FileLines], limit: int,
                      deeper: bool | None) -> list[Candidate]:
    """``common`` candidates for an empty line: the ``limit`` lines the document writes
    most often (at least twice), each with the lines around its occurrences, and as many of
    those the workspace's files write most often (summed over their tallies).  Such a line
    says nothing about its place, so only those that fit the indentation are kept: a line
    that opens a block or a bracket (``try:``, ``else:``, ``warnings.warn(``) where the next
    line is indented under the cursor's, any other where it is not; and only whole
    statements (no comment, no lone quotes or brackets, no item of a list or of a call's
    arguments, such as ``self,``).  ``before``/``after``: the document's lines around the
    cursor's, stripped; ``deeper``: whether the next non-blank line is indented more than
    the cursor (None: there is none)."""
    last = _last_nonblank(before)
    n = len(before)
    parts = [(before[:last + 1], True), (after, False)]

    def fits(line: str) -> bool:
        if line.startswith("#") or line.endswith(",") or not _WORD.search(line):
            return False
        return deeper is None or line.endswith((":", "(", "[", "{")) == deeper

    doc = Counter(line for part, _ in parts for line in part if line)
    workspace: Counter[str] = Counter()
    for f in files:
        for line, count in f.common:
            workspace[line] += count
    chosen = set(islice((line for line, count in doc.most_common() if count > 1 and fits(line)), limit))
    pool = _Pool()
    for part, is_before in parts:
        for i, above, line, below in _triples(part):
            if line in chosen:
                pool.add(line, "common", distance=n - i if is_before else i + 1, before=is_before,
                         above=above, below=below)
    for line in islice((line for line, _ in workspace.most_common() if fits(line)), limit):
        pool.add(line, "common", workspace=True)
    for c in pool.items():  # the tallies, and a line chosen in one place is counted in both
        c.doc_count, c.ws_count = doc[c.text], workspace[c.text]
    return pool.items()


def _last_nonblank(lines: list[str]) -> int:
    """The index of the last non-blank line of ``lines`` (0 if none)."""
    return next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 0)


def line_below(lines: list[str], i: int = 0) -> str:
    """The first non-blank line of ``lines`` from ``lines[i]`` on, stripped ("" if none)."""
    for j in range(i, len(lines)):
        if lines[j].strip():
            return lines[j].strip()
    return ""


def _triples(lines: list[str]) -> Iterator[tuple[int, str, str, str]]:
    """``(index, line above, line, line below)`` for each non-blank line of stripped
    ``lines``, blank lines skipped ("" for none above or below)."""
    kept = [(i, line) for i, line in enumerate(lines) if line]
    for k, (i, line) in enumerate(kept):
        yield (i, kept[k - 1][1] if k else "", line, kept[k + 1][1] if k + 1 < len(kept) else "")


def _kept(pool: list[Candidate], limit: int, nearest: int) -> list[Candidate]:
    """``limit`` candidates: the ``nearest`` closest to the cursor in the document, then
    the best supported of the rest."""
    near = sorted((c for c in pool if c.distance), key=lambda c: c.distance)[:nearest]
    chosen = {id(c) for c in near}
    rest = sorted((c for c in pool if id(c) not in chosen), key=_by_support)
    return near + rest[: limit - len(near)]


def _by_support(c: Candidate) -> tuple[int, int]:
    """Most occurrences first, then the nearest in the document."""
    return -(c.doc_count + c.ws_count), c.distance or 1 << 30
