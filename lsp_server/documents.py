"""Open documents with LSP's idea of a line, and fast position <-> offset conversion.

LSP lines end at ``\\n``, ``\\r\\n`` or ``\\r`` and nowhere else.  pygls splits a document with
``str.splitlines``, which also breaks at form feeds, vertical tabs, ``\\x1c``-``\\x1e``,
``\\x85``, ``\\u2028`` and ``\\u2029`` (a form feed between sections is common in older C and
Python code), so positions below such a character would name the wrong line.
``LspTextDocument`` splits as LSP does, and every pygls conversion and edit goes through it.

pygls converts a column by walking the line in Python, too slow on a minified line for the
event loop; ``offset_at`` and ``client_column`` convert in C unless the line has characters
that need the walk (outside the BMP for UTF-16, any non-ASCII for UTF-8).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument, Workspace

# Line breaks for str.splitlines that are not line breaks for LSP.
_NOT_LSP_BREAKS = re.compile("[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class LspTextDocument(TextDocument):
    """A pygls document whose lines end only where LSP says they do."""

    _lines_of: str | None = None
    _lines: tuple[str, ...] = ()

    @property
    def lines(self) -> Sequence[str]:
        source = self.source
        if source is not self._lines_of:  # split once per version, not once per conversion
            if _NOT_LSP_BREAKS.search(source) is None:
                self._lines = tuple(source.splitlines(True))  # the same split, done in C
            else:
                self._lines = tuple(_LSP_LINE.findall(source))
            self._lines_of = source
        return self._lines


class _LspWorkspace(Workspace):
    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self._position_codec)


def lsp_line_breaks(text: str) -> str:
    """``\r\n`` and ``\r`` as ``\n``: the lines LSP positions count, the line breaks the model
    saw in training, and what tree-sitter rows and ``split("\n")`` agree on."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def file_path(uri: str) -> Path | None:
    """The path of a ``file:`` URI; None for other schemes and for a path no file can have
    (a NUL, ``%00``, makes every filesystem call raise ValueError)."""
    parsed = urlparse(uri)
    path = unquote(parsed.path)
    return Path(path) if parsed.scheme == "file" and "\x00" not in path else None


def display_path(uri: str, root: str | None) -> str:
    """Workspace-relative path of a document (its name when outside ``root``), for people
    and for the prompt header."""
    parsed = urlparse(uri)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(parsed.path or uri)
    if root:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.name


def find_document(workspace: Workspace, uri: str) -> TextDocument | None:
    """The open document for ``uri``, under the key pygls files it by (the unquoted URI:
    editors send ``%20`` and the like)."""
    return workspace.text_documents.get(unquote(uri))


def use_lsp_documents(server: LanguageServer) -> None:
    """Make the server's workspace hold ``LspTextDocument``s; call from ``initialize``.

    pygls 2 builds its ``Workspace`` inside its own initialize handler and offers no
    document factory; the subclass only overrides that factory and holds no state of its
    own, so switching the instance's class before any document is opened is safe.
    """
    if type(server.workspace) is Workspace:
        server.workspace.__class__ = _LspWorkspace


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, LSP's default column unit."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _units(encoding: str | None):
    """Width in client units of one character, for the position encoding in use."""
    if encoding == types.PositionEncodingKind.Utf8:
        return lambda ch: len(ch.encode("utf-8", "surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return None
    return lambda ch: 2 if ord(ch) > 0xFFFF else 1


def _simple(line: str, encoding: str | None) -> bool:
    """Whether one client unit is one character on this line."""
    if encoding == types.PositionEncodingKind.Utf32 or line.isascii():
        return True
    return encoding != types.PositionEncodingKind.Utf8 and max(line) <= "\uffff"


def line_at(doc: TextDocument, line: int) -> tuple[int, str]:
    """(offset of the line's start, its text without the line break); past the end: the end."""
    lines = doc.lines
    if line >= len(lines):
        return len(doc.source), ""
    start = sum(map(len, lines[:line]))
    return start, lines[line].rstrip("\r\n")  # a line holds one line break, at its end


def offset_at(doc: TextDocument, position: types.Position) -> int:
    """Index into ``doc.source`` of ``position``; a column past the line's end is its end."""
    start, text = line_at(doc, position.line)
    encoding = doc.position_codec.encoding
    if _simple(text, encoding):
        return start + min(position.character, len(text))
    width, count = _units(encoding), 0
    for i, ch in enumerate(text):
        count += width(ch)
        if count > position.character:  # inside a character: before it
            return start + i
    return start + len(text)


def client_column(doc: TextDocument, line_text: str, column: int) -> int:
    """Client units of ``line_text[:column]``."""
    head = line_text[:column]
    encoding = doc.position_codec.encoding
    if _simple(head, encoding):
        return len(head)
    if encoding == types.PositionEncodingKind.Utf8:
        return len(head.encode("utf-8", "surrogatepass"))
    return utf16_len(head)


# The completion pipeline sees a document through a window around the cursor, so that a
# huge file or minified line costs no more than a normal one (tree-sitter, the tokenizer
# and the type-ahead cache only see the window).  It holds more than any prompt can use
# (at most 4096 tokens before the cursor, 2048 after) and the definitions around the cursor.
WINDOW_BEFORE = 64 * 1024  # characters before the cursor
WINDOW_AFTER = 16 * 1024  # characters after it
_WINDOW_STEP = 4 * 1024  # the window's start moves in steps this long
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def cursor_window(text: str, offset: int) -> tuple[str, str, str]:
    """``(prefix, suffix, line_break)``: the text around ``offset`` the pipeline works on.

    The prefix starts on a step boundary (then at the next line start, if one is near), so
    it stays the same while the user types and the type-ahead cache and CTranslate2's static
    prompt keep matching.  Line breaks become ``\\n``, as the model saw them in training (in
    a CR-only file there would be no lines at all); ``line_break`` is the document's own,
    for giving a completion back.
    """
    start = 0
    if offset > WINDOW_BEFORE:
        start = (offset - WINDOW_BEFORE) // _WINDOW_STEP * _WINDOW_STEP
        line_start = text.find("\n", start, start + _WINDOW_STEP)
        if line_start >= 0:
            start = line_start + 1
    end = min(len(text), offset + WINDOW_AFTER)
    if end < len(text):
        line_end = text.rfind("\n", max(offset, end - _WINDOW_STEP), end)
        if line_end >= 0:
            end = line_end
    prefix, suffix = text[start:offset], text[offset:end]
    found = _LINE_BREAK.search(prefix) or _LINE_BREAK.search(suffix)
    line_break = found.group() if found else "\n"
    return lsp_line_breaks(prefix), lsp_line_breaks(suffix), line_break
