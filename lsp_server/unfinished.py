"""Lines a workspace holds half-written, so that adaptation does not learn them and
completions do not copy them (retrieval and line memory read other files with them blanked).

A user's repository is never all finished code: the file being edited is saved with the
line being typed cut where the cursor stood (``r = requests.get(httpbin("stream/4"``,
``    def test_redirect(self``, ``        assert ``).  Learnt as they are, such lines teach the
model that the code it is about to complete ends right there.  On the dev set's copy of
requests (642 cut lines) the model adapted without them all was right on 38.2 % of those
lines against 37.2 % with them; the signs below find 539 of the 642 (and none of the intact
repository's lines), but the dev set cannot tell that from finding none: one adaptation's
random fill-in-the-middle cuts move it by as much (36.8-37.2 % over four draws;
docs/benchmarks.md, twenty-fifth and twenty-sixth sessions).

The signs read here are those of code no one would leave finished:
- blanks at the end of a line, or a line of nothing but indentation (formatters and
  editors strip them from finished code; an editor's auto-indent leaves them where the
  cursor is);
- in Python, a statement whose brackets are not closed before the code comes back to its
  indentation (a call's arguments on the lines below close them; ``def f(self`` followed
  by the function's body does not);
- in Python, a line that ends in an attribute's dot, or a statement that ends in an
  operator or a keyword that needs more (``x =``, ``import``, ``for x in``) with no line
  below going on with it;
- in Python, a compound statement's header without its colon (``if not parsed``), a name
  standing alone as a statement (``        r``), ``from x`` without its import.

What cannot be read this way stays: a cut that leaves a whole statement (``x = reque``,
``assert len``), or an empty line where the code was.
"""

from __future__ import annotations

import re

# Ends a statement cannot have: a binary or assignment operator, a keyword that waits for
# more.  ``import *`` is whole.
_OPEN_END = re.compile(
    r"(?:(?<!import )\*|\*\*|[-+/%@&|^~<>=]|[-+*/%@&|^<>!=:]=|//|<<|>>|->"
    r"|\b(?:def|class|import|from|as|in|not|and|or|is|if|elif|while|for|with|except|lambda|assert"
    r"|del|global|nonlocal|async|await))\s*$")
# An end no line can have, whatever holds it: an attribute's dot (not an ellipsis's, not a
# float's: ``TIMEOUT = 20.``).
_DANGLING = re.compile(r"(?<!\.)\.\s*$")
_FLOAT_END = re.compile(r"(?<![\w.])\d[\d_]*\.\s*$")
_NO_VALUE = re.compile(r"(?<![-+*/%@&|^<>!=:])=\s*$")  # an argument's ``=`` with nothing after it
# A compound statement's header, which needs its colon on the line it ends on.
_HEADER = re.compile(r"(?:async\s+)?(?:def|class|if|elif|while|for|with|try|except|else|finally)\b")
_FROM_ALONE = re.compile(r"from\s+[\w.]+$")  # ``from x`` never stays without its ``import``
# A name standing alone as a statement does nothing, unless it is one of these.
_NAME_ALONE = re.compile(r"[A-Za-z_]\w*")
_WHOLE_ALONE = frozenset({"pass", "break", "continue", "return", "raise", "yield", "else", "try", "finally"})
_OPENERS, _CLOSERS = "([{", ")]}"
_TRIPLE = ('"""', "'''")
_QUOTE_OR_COMMENT = re.compile(r"[\"'#]")


def _code_of(line: str, in_string: str | None) -> tuple[str, str | None]:
    """The line's code with strings and comments taken out (each string leaves ``""``),
    and the triple quote still open after it (``in_string``: the one open before it)."""
    if in_string is None and not _QUOTE_OR_COMMENT.search(line):
        return line, None  # most lines: nothing to take out (reading a file char by char costs ~3x)
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if in_string:
            end = line.find(in_string, i)
            if end < 0:
                return "".join(out), in_string
            i, in_string = end + 3, None
            out.append('""')
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
            out.append('""')
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), in_string


def ends_in_code(line: str) -> bool:
    """Whether the end of ``line`` (a line's text up to a cursor) is code, not inside a
    string or a comment opened on it (a docstring opened on an earlier line is not seen)."""
    # A mark after the cursor survives in the code only where the cursor is in code: a
    # string still open takes it in, a comment cuts it off.
    code, in_string = _code_of(line + "\x00", None)
    return in_string is None and code.endswith("\x00")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def unfinished_lines(text: str, language: str) -> dict[int, str]:
    """``{line index: why}`` for the lines of ``text`` that look half-written; the
    bracket and operator signs are read in Python only (the trailing blanks everywhere)."""
    lines = text.split("\n")
    found: dict[int, str] = {}
    for i, line in enumerate(lines):
        if line != line.rstrip(" \t"):
            found[i] = "blanks at its end" if line.strip() else "indentation only"
    if language != "python":
        return found
    codes: list[str | None] = []  # each line's code outside strings; None: a blank line
    in_strings: set[int] = set()  # the lines that start inside a multi-line string
    opens_string: set[int] = set()  # the lines that end inside one they open
    in_string = None
    for i, line in enumerate(lines):
        was_in_string = in_string is not None
        code, in_string = _code_of(line, in_string)
        codes.append(code.rstrip() if line.strip() else None)
        if was_in_string:
            in_strings.add(i)
        elif in_string is not None:
            opens_string.add(i)
    following: list[int | None] = [None] * len(lines)  # the next line of code's index
    nxt = None
    for i in range(len(lines) - 1, -1, -1):
        following[i] = nxt
        if codes[i] is not None and i not in in_strings:
            nxt = i
    depth, opened_at = 0, 0  # brackets open from lines above, and the indentation of the line that opened them
    joined = False  # the line above ended in a backslash
    for i, line in enumerate(lines):
        code = codes[i]
        if not code or i in found:
            continue
        if i in in_strings:  # its indentation may be the string's; its brackets still count
            depth = max(0, depth + _net(code))
            continue
        if depth and _indent(line) <= opened_at and line.lstrip()[:1] not in _CLOSERS:
            depth = 0  # a new statement: the brackets above were never closed
        net = _net(code)
        statement = not depth and not joined  # the line starts a statement
        joined = code.endswith("\\")
        j = following[i]
        continued = j is not None and (_indent(lines[j]) > _indent(line) or lines[j].lstrip()[:1] in _CLOSERS)
        why = None if i in opens_string else _sign(
            code, statement, net, continued and not _never_closed(lines, codes, in_strings, i, net))
        if why:
            found[i] = why
            if why == "open bracket":
                continue  # its brackets are not carried: the lines below are not inside them
        if not depth and net > 0:
            opened_at = _indent(line)
        depth = max(0, depth + net)
    return found


def _net(code: str) -> int:
    return sum(map(code.count, _OPENERS)) - sum(map(code.count, _CLOSERS))


def _sign(code: str, statement: bool, net: int, continued: bool) -> str | None:
    """Why a line of code (strings taken out) cannot be finished, if it cannot: ``statement``
    when no bracket or backslash from above holds it, ``continued`` when the lines below go
    on with it."""
    if (_DANGLING.search(code) and not _FLOAT_END.search(code)) or (not continued and _NO_VALUE.search(code)):
        return "ends mid-expression"
    if not statement:
        return None
    if net > 0 and not continued:
        return "open bracket"
    head = code.lstrip()
    if net == 0 and not code.endswith("\\"):
        if _HEADER.match(head) and ":" not in _outside_brackets(head):
            return "header without its colon"
        if _NAME_ALONE.fullmatch(head) and head not in _WHOLE_ALONE:
            return "a name alone"
        if _FROM_ALONE.match(head):
            return "ends mid-expression"
    if not continued and not code.endswith(":") and _OPEN_END.search(code):
        return "ends mid-expression"
    return None


def _never_closed(lines: list[str], codes: list[str | None], in_strings: set[int], i: int, net: int) -> bool:
    """Whether the brackets line ``i`` leaves open stay open until the code comes back to
    its indentation (``def f(self`` followed by the function's body), where arguments on
    the lines below would close them."""
    if net <= 0:
        return False
    indent = _indent(lines[i])
    for j in range(i + 1, len(lines)):
        code = codes[j]
        if code is None:
            continue
        own_indent = j not in in_strings and code.strip('"')  # a string's indentation is its own
        if own_indent and _indent(lines[j]) <= indent and lines[j].lstrip()[:1] not in _CLOSERS:
            return True
        net += _net(code)
        if net <= 0:
            return False
    return True


def _outside_brackets(code: str) -> str:
    out, depth = [], 0
    for ch in code:
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(0, depth - 1)
        elif not depth:
            out.append(ch)
    return "".join(out)


def without_unfinished_lines(text: str, language: str) -> tuple[str, int]:
    """``text`` without the lines that look half-written (``unfinished_lines``), and how
    many it left out."""
    drop = unfinished_lines(text, language)
    if not drop:
        return text, 0
    return "\n".join(line for i, line in enumerate(text.split("\n")) if i not in drop), len(drop)


def blank_unfinished_lines(text: str, language: str) -> str:
    """``text`` with the lines that look half-written emptied: line numbers stay those of
    the file, for the snippets and line-memory distances that cite them."""
    drop = unfinished_lines(text, language)
    if not drop:
        return text
    return "\n".join("" if i in drop else line for i, line in enumerate(text.split("\n")))
