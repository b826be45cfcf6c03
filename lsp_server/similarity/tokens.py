"""Code tokens for similarity: one regex pass, comments dropped, identifiers split.

Similarity must see through the things two people (or one person, a year apart) write
differently: names (``numToIndex`` vs ``num_to_index``), quoting, spacing, comments.  So
identifiers are split into lower-cased sub-words, literals collapse to their kind, and
comments go.  The same tokens feed the lexical fingerprint and the dense encoder, which is
why this module is shared and has no dependency beyond ``re``.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

# Python keywords plus the JavaScript/TypeScript ones; a keyword is structure, not a name.
KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset((
    "function", "var", "let", "const", "new", "this", "typeof", "instanceof", "switch", "case",
    "default", "do", "extends", "super", "static", "interface", "type", "enum", "implements",
    "export", "null", "undefined", "true", "false", "void", "throw", "catch", "public", "private",
    "protected", "readonly", "declare", "namespace", "abstract", "of"))

# One alternation, longest first: comments, strings, numbers, identifiers, operators.
_TOKEN_TEMPLATE = r"""
    (?P<comment>{comment})
  | (?P<string>[rRbBuUfF]{{0,2}}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`))
  | (?P<number>0[xXoObB][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?[jJlLnN]?|\.\d+)
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>\*\*=?|//=?|>>=?|<<=?|[-+*/%&|^=<>!]=|==|=>|->|\.\.\.|&&|\|\||[^\sA-Za-z0-9_])
"""
_PYTHON = re.compile(_TOKEN_TEMPLATE.format(comment=r"\#[^\n]*"), re.VERBOSE | re.DOTALL)
_C_LIKE = re.compile(_TOKEN_TEMPLATE.format(comment=r"//[^\n]*|/\*.*?\*/"), re.VERBOSE | re.DOTALL)
# The same alternation without names, after the spaces before it, for ``findall``: skipping
# spaces in the pattern, not one failed match per space, halves the time of a pass.  Every
# character but a space starts a token (``op`` takes any other one), so the matches tile
# the text: their lengths add up to where each token ends.
_SPACED = {name: re.compile(r"\s*(?:" + re.sub(r"\(\?P<\w+>", "(?:", p.pattern) + ")", re.VERBOSE | re.DOTALL)
           for name, p in (("python", _PYTHON), ("c", _C_LIKE))}
_SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_TRIPLE = ("'''", '"""')


@dataclass(frozen=True)
class Token:
    kind: str  # "kw" | "name" | "str" | "num" | "op"
    text: str


def subwords(name: str) -> list[str]:
    """``numToIndex`` / ``num_to_index`` -> ``['num', 'to', 'index']``."""
    return [w.lower() for w in _SUBWORD.findall(name)] or [name.lower()]


def token_pattern(language: str) -> re.Pattern:
    """The token pattern for ``language``: its groups are ``comment``, ``string``, ``number``,
    ``name`` and ``op``."""
    return _PYTHON if language == "python" else _C_LIKE


def spaced_token_pattern(language: str) -> re.Pattern:
    """``token_pattern`` whose ``findall`` lists each token (comments too), in order, with the
    spaces before it: ``str.lstrip`` of a match is the token's text."""
    return _SPACED["python" if language == "python" else "c"]


def token_kind(group: str, text: str) -> tuple[str, str]:
    """(``Token`` kind, text) of a match of ``token_pattern``'s ``group`` (not a comment)."""
    if group == "string":
        return ("doc" if text.lstrip("rRbBuUfF")[:3] in _TRIPLE else "str"), text
    if group == "name":
        return ("kw" if text in KEYWORDS else "name"), text
    return group, text


def tokenize(code: str, language: str = "python") -> list[Token]:
    """Tokens of ``code`` without comments (``#`` in Python, ``//`` and ``/* */`` elsewhere)."""
    return [Token(*token_kind(m.lastgroup, m.group())) for m in token_pattern(language).finditer(code)
            if m.lastgroup != "comment"]
