"""Multi-line completions: tree-sitter decides when the cursor sits in an empty block body,
and indentation plus a syntax check decide where the generated block ends.

Detection inserts a placeholder statement at the cursor and asks the parser whether it
becomes the only statement of a block (a function body after ``def ...:``, an ``if``
body, a ``{ }`` statement block).  Elsewhere completions stay single-line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsp_server.languages import language_of, parser

_BLOCK_TYPES = {"block", "statement_block", "class_body"}


@dataclass(frozen=True)
class BlockRequest:
    header_indent: int  # indentation of the line that opened the block
    body_indent: str  # indentation of the body's first line (as the cursor line has it)
    # The cursor at column 0 (an editor that does not indent): the answer's first line must
    # bring the body's indentation (``GenerationOptions.indented``).
    at_line_start: bool = False


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def empty_block_at_cursor(prefix: str, suffix: str, lang: str | None) -> BlockRequest | None:
    """A BlockRequest when the cursor is on a blank line that starts an empty block body."""
    language = language_of(None, lang)
    if language is None or language.block is None:
        return None
    line = prefix.rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0]
    if line.strip() or rest_of_line.strip():
        return None
    above = [row for row in prefix.split("\n")[:-1] if row.strip()]
    placeholder, opener = language.block
    if not above or not above[-1].rstrip().endswith(opener):
        return None
    header_indent = _indent(above[-1])
    body = line if _indent(line) > header_indent else " " * (header_indent + 4)
    # Is the placeholder the only statement of a block?  Then the body is empty.
    text = prefix[: len(prefix) - len(line)] + body + placeholder + suffix
    start = len((prefix[: len(prefix) - len(line)] + body).encode("utf-8"))
    tree = parser(language.grammar).parse(text.encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(start, start + len(placeholder))
    while node is not None and node.type not in _BLOCK_TYPES:
        node = node.parent
    if node is None or len(node.named_children) != 1:
        return None
    return BlockRequest(header_indent=header_indent, body_indent=body, at_line_start=not line)


def starts_at_module_level(prefix: str, suffix: str, lang: str | None) -> bool:
    """True when the cursor is on an empty line at column 0 where Python allows no
    indentation: the code line above is a module-level statement that opens no block, and
    the cursor is in no bracket or string.  A line suggested there must not start with blanks
    (an ``IndentationError``); a small model, trained on middles that begin at line starts,
    often indents them anyway.

    Only at column 0 after column-0 code: at column 0 after indented code the user may be
    about to continue the block, and an indented suggestion is valid.
    """
    language = language_of(None, lang)
    if language is None or language.id != "python":
        return False
    if "\n" in prefix:
        head, line = prefix.rsplit("\n", 1)
    else:
        head, line = "", prefix
    if line or suffix.split("\n", 1)[0].strip():
        return False
    above = next((row for row in reversed(head.split("\n")) if row.strip() and not row.lstrip().startswith("#")), None)
    if above is not None and (above[0].isspace() or above.rstrip().endswith((":", "\\", ",", "(", "[", "{"))):
        return False
    if above is not None and above.startswith("@"):
        return True  # what a decorator decorates starts at its column
    placeholder = language.block[0]
    start = len(prefix.encode("utf-8"))
    tree = parser(language.grammar).parse((prefix + placeholder + suffix).encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(start, start + len(placeholder))
    while node is not None and node.parent is not None and node.parent.type != "module":
        node = node.parent
    return node is not None and node.type.endswith("statement") and node.start_byte == start


def block_stop_rule(request: BlockRequest, max_lines: int):
    """Stop rule for the engine: end the block at the first line indented no deeper than
    its header (the block is over), or after ``max_lines`` lines."""

    def stop(text: str) -> int | None:
        lines = text.split("\n")
        complete = lines[:-1]  # the last line may still be growing
        offset = 0
        for i, row in enumerate(complete):
            if i > 0 and row.strip() and _indent(row) <= request.header_indent:
                return offset - 1  # cut before the line break that starts it
            if i + 1 >= max_lines:
                return offset + len(row)
            offset += len(row) + 1
        return None

    return stop


def trim_to_valid(prefix: str, block: str, suffix: str, lang: str) -> str:
    """Drop trailing lines of ``block`` until the document parses with no more errors than
    it has with an empty body; a block that never fits becomes empty."""
    language = language_of(None, lang)
    grammar = parser(language.grammar)
    placeholder = language.block[0]

    def errors(middle: str) -> int:
        tree = grammar.parse((prefix + middle + suffix).encode("utf-8"))
        return _count_errors(tree.root_node)

    baseline = errors(placeholder)
    lines = block.split("\n")
    while lines:
        candidate = "\n".join(lines)
        if candidate.strip():
            for option in (candidate, _close_docstring(candidate, prefix.rsplit("\n", 1)[-1])):
                if option and errors(option) <= baseline:
                    return option
        lines.pop()
    return ""


# How much of the document around the cursor a single line is parsed in: enough for the
# statement it belongs to, cheap on a long file.
LINE_CHECK_CHARS = (8000, 4000)


class LineCheck:
    """Parse errors of the code around the cursor (tree-sitter) with a candidate for the
    rest of its line in place, against the line as it is."""

    def __init__(self, prefix: str, suffix: str, grammar: str) -> None:
        from model.prompt_format import head_lines, tail_lines

        self._before = tail_lines(prefix, LINE_CHECK_CHARS[0])
        self._after = head_lines(suffix, LINE_CHECK_CHARS[1])
        self._grammar = parser(grammar)
        self._baseline: int | None = None
        self._added: dict[str, int] = {}  # a text is cleaned, then checked: parse it once

    @classmethod
    def at(cls, prefix: str, suffix: str, lang: str | None) -> LineCheck | None:
        """The check for a cursor between ``prefix`` and ``suffix``; None in a language
        without a grammar here."""
        language = language_of(None, lang)
        return cls(prefix, suffix, language.grammar) if language is not None else None

    def _errors(self, middle: str) -> int:
        return _count_errors(self._grammar.parse((self._before + middle + self._after).encode("utf-8")).root_node)

    def added_errors(self, rest_of_line: str) -> int:
        """How many more parse errors the code has with ``rest_of_line`` than without it
        (negative: it closes what lines above opened, ``),`` ending a call's arguments)."""
        if self._baseline is None:
            self._baseline = self._errors("")
        if rest_of_line not in self._added:
            self._added[rest_of_line] = self._errors(rest_of_line) - self._baseline
        return self._added[rest_of_line]


_TRIPLE_QUOTE = re.compile(r'"""|\'\'\'')


def in_triple_quoted_string(prefix: str) -> bool:
    """The cursor after ``prefix`` is inside a triple-quoted string (a docstring's text).

    Counted from the start of ``prefix`` (the pipeline's window reaches 64 KB back), not
    read from a parse of the few lines around the cursor: those may start inside a
    docstring, and then its closing quotes read as an opening."""
    open_quote = None
    for m in _TRIPLE_QUOTE.finditer(prefix):
        if open_quote is None:
            open_quote = m.group()
        elif m.group() == open_quote:
            open_quote = None
    return open_quote is not None


def _close_docstring(block: str, cursor_line: str) -> str | None:
    """The block with an unterminated triple-quoted string closed on a line of its own.

    Small models often stop mid-docstring; closing it keeps the useful start of a block.
    The first line of a block continues the cursor's line, whose indentation counts.
    """
    for quote in ('"""', "'''"):
        if block.count(quote) % 2:
            lines = block.split("\n")
            i = next(n for n, row in enumerate(lines) if quote in row)
            opener = (cursor_line if i == 0 else "") + lines[i]
            indent = opener[: len(opener) - len(opener.lstrip())]
            return block.rstrip() + "\n" + indent + quote
    return None


def _count_errors(node) -> int:
    """ERROR and MISSING nodes under ``node``: an explicit stack, since the user decides how
    deep the tree is (thousands of nested brackets would overflow Python's recursion)."""
    count, stack = 0, [node]
    while stack:
        n = stack.pop()
        if not n.has_error:
            continue
        count += n.is_error or n.is_missing
        stack.extend(n.children)
    return count
