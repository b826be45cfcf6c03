"""Lines a workspace holds half-written, so that adaptation does not learn them.

A user's repository is never all finished code: the file being edited is saved with the
line being typed cut where the cursor stood (``r = requests.get(httpbin("stream/4"``,
``    def test_redirect(self``, ``        assert ``).  Learnt as they are, such lines teach the
model that the code it is about to complete ends right there.  On the dev set's copy of
requests (642 cut lines) the model adapted without them all was right on 38.2 % of those
lines against 37.2 % with them; the signs below find 430 of the 642, and the dev set does
not tell that share from nothing (37.1-37.2 % either way: one adaptation's random
fill-in-the-middle cuts move it as much; docs/benchmarks.md, twenty-fifth session).

The signs read here are those of code no one would leave finished:
- blanks at the end of a line, or a line of nothing but indentation (formatters and
  editors strip them from finished code; an editor's auto-indent leaves them where the
  cursor is);
- in Python, a line whose own brackets stay open while the next line is not indented
  deeper (a call's arguments on the lines below are) and does not close them;
- in Python, a line that ends in an operator, a dot or a keyword that needs more
  (``x =``, ``requests.``, ``import``, ``for x in``), with the same proviso.

What cannot be read this way stays: a name cut in the middle (``x = reque``), or
``def f(self`` followed by the function's body, indented as arguments would be (following
the brackets to where the code comes back to the line's indentation found 54 more of the
dev set's cut lines, but the adapted model did no better: 36.6 / 66.6).
"""

from __future__ import annotations

import re

# Ends a statement cannot have: a binary or assignment operator, an attribute's dot (an
# ellipsis is whole), a keyword that waits for more.  ``import *`` is whole.
_OPEN_END = re.compile(
    r"(?:(?<!\.)\.|(?<!import )\*|\*\*|[-+/%@&|^~<>=]|[-+*/%@&|^<>!=:]=|//|<<|>>|->"
    r"|\b(?:def|class|import|from|as|in|not|and|or|is|if|elif|while|for|with|except|lambda|assert"
    r"|del|global|nonlocal|async|await))\s*$")
_OPENERS, _CLOSERS = "([{", ")]}"
_TRIPLE = ('"""', "'''")


def _code_of(line: str, in_string: str | None) -> tuple[str, str | None]:
    """The line's code with strings and comments taken out (each string leaves one ``S``),
    and the triple quote still open after it (``in_string``: the one open before it)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if in_string:
            end = line.find(in_string, i)
            if end < 0:
                return "".join(out), in_string
            i, in_string = end + 3, None
            out.append("S")
            continue
        ch = line[i]
        if ch == "#":
            break
        if line.startswith(_TRIPLE, i):
            in_string = line[i:i + 3]
            i += 3
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and line[j] != ch:
                j += 2 if line[j] == "\\" else 1
            out.append("S")
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), in_string


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def unfinished_lines(text: str, language: str) -> dict[int, str]:
    """``{line index: why}`` for the lines of ``text`` that look half-written; the
    bracket and operator signs are read in Python only (the trailing blanks everywhere)."""
    lines = text.split("\n")
    found: dict[int, str] = {}
    python = language == "python"
    following: list[int | None] = [None] * len(lines)  # the next non-blank line's index
    nxt = None
    for i in range(len(lines) - 1, -1, -1):
        following[i] = nxt
        if lines[i].strip():
            nxt = i
    in_string = None
    depth, opened_at = 0, 0  # brackets open from lines above, and the indentation of the line that opened them
    for i, line in enumerate(lines):
        was_in_string = in_string is not None
        if python:
            code, in_string = _code_of(line, in_string)
        if line != line.rstrip(" \t"):
            found[i] = "blanks at its end" if line.strip() else "indentation only"
            continue
        if not python or was_in_string or not line.strip():
            continue
        code = code.rstrip()
        if depth and _indent(line) <= opened_at and line.lstrip()[:1] not in _CLOSERS:
            depth = 0  # a new statement: the brackets above were never closed
        net = sum(map(code.count, _OPENERS)) - sum(map(code.count, _CLOSERS))
        inside = depth > 0  # a line inside a call's arguments may end in ``and`` or ``+``
        j = following[i]
        continued = j is not None and (_indent(lines[j]) > _indent(line) or lines[j].lstrip()[:1] in _CLOSERS)
        if not inside and not continued and in_string is None and code.strip():
            if net > 0:
                found[i] = "open bracket"
                continue  # its brackets are not carried: the lines below are not inside them
            if not code.endswith(":") and _OPEN_END.search(code):
                found[i] = "ends mid-expression"
                continue
        if not depth and net > 0:
            opened_at = _indent(line)
        depth = max(0, depth + net)
    return found


def without_unfinished_lines(text: str, language: str) -> tuple[str, int]:
    """``text`` without the lines that look half-written (``unfinished_lines``), and how
    many it left out."""
    drop = unfinished_lines(text, language)
    if not drop:
        return text, 0
    return "\n".join(line for i, line in enumerate(text.split("\n")) if i not in drop), len(drop)
