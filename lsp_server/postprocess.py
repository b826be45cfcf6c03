"""Post-processing: turn raw model text into something worth showing as ghost text.

Rules, in order: cut repetition loops, drop what the document already has after the
cursor (the rest of the line, or the next lines for blocks), balance closing brackets
against the suffix, and never return whitespace.
"""

from __future__ import annotations

import builtins
import re
from collections import Counter
from collections.abc import Callable, Iterable

from lsp_server.similarity.tokens import KEYWORDS
from lsp_server.unfinished import ends_in_code

_PAIRS = {")": "(", "]": "[", "}": "{"}
_OPEN = set(_PAIRS.values())
# Linter and type-checker pragmas annotate the code on their own line; a model that learnt
# from annotated code writes them where nothing asks for one (a type-ignore comment alone
# on a line, a noqa one after an open bracket).
_PRAGMA = re.compile(r"#\s*(type:\s*ignore|noqa\b|pragma:|pylint:|fmt:|isort:|mypy:|pyright:)", re.IGNORECASE)


def cut_repetition(text: str, min_unit: int = 2, min_repeats: int = 4) -> str:
    """Cut a run where a unit repeats back to back ``min_repeats`` times or more.

    Small models fall into loops ("2.2.2.2.2", "a string or not a string or not a string");
    the first occurrence is kept, the echoes are dropped.  Runs of one character (rulers
    like "# =====", indentation) are left alone.
    """
    regex = r"(.{%d,}?)\1{%d,}" % (min_unit, min_repeats - 1)  # noqa: UP031 - an f-string doubles the braces
    pattern = re.compile(regex, flags=re.S)
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        if len(set(m.group(1))) > 1:
            return text[: m.start() + len(m.group(1))]
        pos = m.start() + 1
    return text


def _unclosed_before(prefix_line: str) -> list[str]:
    stack: list[str] = []
    for ch in prefix_line:
        if ch in _OPEN:
            stack.append(ch)
        elif ch in _PAIRS and stack and stack[-1] == _PAIRS[ch]:
            stack.pop()
    return stack


def balance_brackets(text: str, prefix_line: str, line_suffix: str) -> str:
    """Drop closing brackets the completion adds beyond what it (and the line) opened.

    A closer in the completion that closes nothing opened on the line, or one that the
    text after the cursor already supplies, would leave the line unbalanced when accepted.
    """
    stack = _unclosed_before(prefix_line)
    opened_before = len(stack)  # brackets left open by the text before the cursor
    supplied = [ch for ch in line_suffix if ch in _PAIRS]
    out = []
    for ch in text:
        if ch in _OPEN:
            stack.append(ch)
        elif ch in _PAIRS:
            if not stack or stack[-1] != _PAIRS[ch]:
                break  # closes something never opened: the rest is noise
            if len(stack) <= opened_before:
                if supplied and supplied[0] == ch:
                    break  # the text after the cursor already closes it
                opened_before -= 1
            stack.pop()
        out.append(ch)
    return "".join(out)


def has_pragma(text: str) -> bool:
    """``text`` holds a linter or type-checker pragma comment."""
    return _PRAGMA.search(text) is not None


# A name at the cursor's end, and the name characters a completion starts with.
_NAME_BEFORE = re.compile(r"(?<!\w)[^\W\d]\w*$")
_NAME_CHARS = re.compile(r"\w+")
# Names a file uses without defining them: the keywords and the builtins.
_ALWAYS_KNOWN = KEYWORDS | frozenset(dir(builtins))


def extends_a_whole_name(prefix: str, suffix: str, text: str) -> bool:
    """``text`` glues more of a name onto a name the cursor ends that the document already
    uses whole, making one the document never uses (``pickle`` + ``t_response``).

    The cursor after a half-typed word wants the word finished (token healing), but after
    a name the file uses it is more often at the name's end: a small model there tends to
    go on with the name into one that exists nowhere.  A longer name that does exist
    (``re`` + ``sult``, ``r`` + ``epr``) is still a fine guess."""
    glued = _NAME_CHARS.match(text)
    line_start = prefix.rfind("\n") + 1
    typed = _NAME_BEFORE.search(prefix, line_start) if glued else None
    if typed is None:
        return False
    longer = typed.group() + glued.group()
    if longer in _ALWAYS_KNOWN:
        return False
    before = prefix[:typed.start()]

    def used(name: str) -> bool:
        whole = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)")
        return whole.search(before) is not None or whole.search(suffix) is not None

    return used(typed.group()) and not used(longer)


# Fewer typed characters than this say too little about which name is meant.
MIN_TYPED_FOR_NAME = 2
_DEFINED_HERE = re.compile(r"(?<!\w)(?:def|class)\s+$")


def known_name_for(prefix: str, suffix: str, text: str, workspace_names: Callable[[str], Iterable[str]]) -> str | None:
    """The name to finish the cursor's half-typed word with, where ``text`` (the model's
    line) finishes it into a name used nowhere (``MaxRet`` + ``ailsError``, ``requests.Sess``
    + ``r``): of the names that go on from the typed part, the one the document uses most,
    else the shortest the workspace uses (``workspace_names(typed)``: those starting with
    it).  None where the model's name is known (a keyword and a builtin too), where the
    typed part is a name the document uses (the word may be whole), where nothing the code base
    uses goes on from it, where the word names what its line defines (``def``, ``class``: a
    new name), or where it is in a string or a comment (words, not names).

    A small model knows a code base's names only from what the prompt shows; the names the
    workspace already uses are what a person finishing a word there most often means."""
    line_start = prefix.rfind("\n") + 1
    typed = _NAME_BEFORE.search(prefix, line_start)
    if typed is None or len(typed.group()) < MIN_TYPED_FOR_NAME or _DEFINED_HERE.search(prefix, 0, typed.start()) \
            or not ends_in_code(prefix[line_start:]):
        return None
    glued = _NAME_CHARS.match(text)
    start = typed.group()
    written = start + (glued.group() if glued else "")
    if written in _ALWAYS_KNOWN or start in _ALWAYS_KNOWN:
        return None
    before = prefix[:typed.start()]
    named = re.compile(rf"(?<!\w){re.escape(start)}\w*")
    in_document = Counter(named.findall(before)) + Counter(named.findall(suffix))
    # A name the document uses, typed whole, may be what is meant: no guess of a longer one.
    if written in in_document or start in in_document:
        return None
    elsewhere = set(workspace_names(start))
    if written in elsewhere:
        return None
    elsewhere.discard(start)
    if in_document:
        return max(in_document, key=lambda name: (in_document[name], -len(name)))
    return min(elsewhere, key=lambda name: (len(name), name)) if elsewhere else None


def clean_single_line(text: str, line_suffix: str, prefix_line: str = "", balance: bool = True) -> str:
    """Trim a single-line completion against the text around the cursor on its line
    (``balance``: and drop closing brackets that close nothing opened on it)."""
    text = cut_repetition(text.split("\n", 1)[0]).rstrip()
    if not text.strip():
        return ""
    tail = line_suffix.strip()
    if tail:
        if text.endswith(tail):
            text = text[: -len(tail)].rstrip()
        elif tail.startswith(text.strip()):
            return ""  # the model only proposes what is already there
    if balance:
        text = balance_brackets(text, prefix_line, line_suffix).rstrip()
    return text if text.strip() else ""


def clean_block(text: str, suffix: str) -> str:
    """Trim a multi-line completion: no loops, no lines the document already has next."""
    text = cut_repetition(text, min_unit=8).rstrip()
    next_lines = [row.strip() for row in suffix.split("\n") if row.strip()][:3]
    lines = text.split("\n")
    for i in range(len(lines)):
        if next_lines and lines[i].strip() == next_lines[0] and i > 0:
            lines = lines[:i]
            break
    text = "\n".join(lines).rstrip()
    return text if text.strip() else ""
