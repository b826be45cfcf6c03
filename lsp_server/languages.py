"""The languages ghostline knows: one table from file suffix to language, and the parsers.

Completions use a language's editor id (block detection), similar code its tree-sitter
grammar (chunking, tokens), retrieval its family (which files lend context).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import PurePath

import tree_sitter


@dataclass(frozen=True)
class Language:
    id: str  # the editor's language id (LSP ``languageId``)
    grammar: str  # tree-sitter grammar; "text": none, files are cut into line windows
    family: str | None  # files of one family lend each other context; None: same suffix only
    block: tuple[str, str] | None = None  # (placeholder statement, opener ending the header line)


PYTHON = Language("python", "python", "python", ("pass", ":"))
JAVASCRIPT = Language("javascript", "javascript", "javascript", block=("x;", "{"))
JAVASCRIPT_REACT = Language("javascriptreact", "javascript", "javascript", block=("x;", "{"))
TYPESCRIPT = Language("typescript", "typescript", "javascript", block=("x;", "{"))
TYPESCRIPT_REACT = Language("typescriptreact", "tsx", "javascript", block=("x;", "{"))
TEXT = Language("text", "text", None)  # code in languages we have no grammar for

BY_SUFFIX: dict[str, Language] = {
    ".py": PYTHON, ".pyi": PYTHON,
    ".js": JAVASCRIPT, ".mjs": JAVASCRIPT, ".cjs": JAVASCRIPT, ".jsx": JAVASCRIPT_REACT,
    ".ts": TYPESCRIPT, ".mts": TYPESCRIPT, ".cts": TYPESCRIPT, ".tsx": TYPESCRIPT_REACT,
    **dict.fromkeys((".go", ".rs", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php",
                     ".swift", ".scala", ".lua", ".sh", ".sql", ".r", ".jl", ".dart", ".vue"), TEXT),
}
_BY_ID = {lang.id: lang for lang in BY_SUFFIX.values() if lang is not TEXT}


def language_of(path: str | PurePath | None, language_id: str | None = None) -> Language | None:
    """The language of a document: its editor language id when we know it, else its suffix."""
    if language_id in _BY_ID:
        return _BY_ID[language_id]
    return BY_SUFFIX.get(PurePath(path).suffix.lower()) if path else None


def family_of(path: str | PurePath) -> str:
    """Which files may lend ``path`` context: the same family, or else the same suffix."""
    suffix = PurePath(path).suffix
    lang = BY_SUFFIX.get(suffix.lower())
    return lang.family if lang is not None and lang.family is not None else suffix


@cache
def parser(grammar: str) -> tree_sitter.Parser:
    """The parser for a grammar ("python", "javascript", "typescript", "tsx").  One per
    grammar serves every thread: ``Parser.parse`` holds the GIL."""
    if grammar == "python":
        import tree_sitter_python as module

        language = module.language()
    elif grammar in ("typescript", "tsx"):
        import tree_sitter_typescript as module

        language = module.language_tsx() if grammar == "tsx" else module.language_typescript()
    elif grammar == "javascript":
        import tree_sitter_javascript as module

        language = module.language()
    else:
        raise KeyError(grammar)
    return tree_sitter.Parser(tree_sitter.Language(language))
