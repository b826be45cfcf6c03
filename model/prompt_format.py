"""The token layout shared by training and serving.

Fill-in-the-middle uses the suffix-prefix-middle (SPM) order:

    <file_sep> path "\\n" <fim_suffix> SUFFIX <fim_prefix> PREFIX <fim_middle> MIDDLE <eot>

(at serving time other files' snippets may come first, each as a document of its own:
see ``context_ids``).

With the suffix first, everything up to the end of the line before the cursor is identical
from one keystroke to the next while the user types on one line; the engine passes it as
CTranslate2's ``static_prompt`` and only the current line is prefilled again.  Each segment
is tokenized on its own, in training exactly as in serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from model.tokenizer import SpecialIds, encode


def header_ids(tok: Tokenizer, sp: SpecialIds, path: str) -> list[int]:
    return [sp.file_sep, *encode(tok, path.replace("\n", " ") + "\n")]


def plain_ids(tok: Tokenizer, sp: SpecialIds, path: str, text: str) -> list[int]:
    """A left-to-right training document."""
    return [*header_ids(tok, sp, path), *encode(tok, text), sp.eot]


def fim_ids(tok: Tokenizer, sp: SpecialIds, path: str, prefix: str, middle: str, suffix: str) -> list[int]:
    """A fill-in-the-middle training document."""
    return [
        *header_ids(tok, sp, path),
        sp.fim_suffix,
        *encode(tok, suffix),
        sp.fim_prefix,
        *encode(tok, prefix),
        sp.fim_middle,
        *encode(tok, middle),
        sp.eot,
    ]


def split_prefix(prefix: str) -> tuple[str, str]:
    """Split at the last line break: (text before it, line break + current line).

    The tokenizer never merges across a line break, so encoding the two halves separately
    gives the same ids as encoding the whole.
    """
    cut = prefix.rfind("\n")
    if cut < 0:
        return "", prefix
    if cut > 0 and prefix[cut - 1] == "\r":
        cut -= 1
    return prefix[:cut], prefix[cut:]


# Tokens hold fewer characters than this (checked on code: ~3 on average), so a window of
# budget * this many characters always yields at least the budget in tokens.
_MAX_CHARS_PER_TOKEN = 8


def tail_lines(text: str, chars: int) -> str:
    """The last ``chars`` characters of ``text``, widened to start at a line break.

    Tokenizing only this window instead of a whole file keeps prompt building cheap on
    long files; starting at a line break keeps its tokens equal to the whole text's.
    """
    if len(text) <= chars:
        return text
    cut = text.rfind("\n", 0, len(text) - chars)
    return text[cut:] if cut >= 0 else text


def head_lines(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, widened to end at a line break."""
    if len(text) <= chars:
        return text
    cut = text.find("\n", chars)
    return text[:cut] if cut >= 0 else text


@dataclass(frozen=True)
class Prompt:
    """A completion prompt as token ids: a cacheable static part and the per-keystroke rest."""

    static: list[int]
    dynamic: list[int]

    @property
    def ids(self) -> list[int]:
        return self.static + self.dynamic


def context_ids(tok: Tokenizer, sp: SpecialIds, snippets: Sequence[tuple[str, str]], budget: int) -> list[int]:
    """Snippets of other files, ``(path, text)`` best first, as documents of their own that
    go ahead of the file being edited: ``<file_sep> path "\\n" TEXT <eot>`` each.

    That is how the model saw neighbouring files in training: the corpus is tokenized in
    folder order and training windows run across document boundaries, so what a sibling
    file just showed is context it learnt to use (the same lines as comments inside the
    file, the layout before, were text it had never seen).  The best snippet goes last,
    nearest the cursor; a snippet is cut to fewer lines rather than dropped while it keeps
    two; at most ``budget`` tokens in all.
    """
    docs: list[list[int]] = []
    used = 0
    for path, text in snippets:
        lines = text.rstrip("\n").split("\n")
        for n in range(len(lines), 1, -1):
            ids = plain_ids(tok, sp, path, "\n".join(lines[:n]) + "\n")
            if used + len(ids) <= budget:
                docs.insert(0, ids)
                used += len(ids)
                break
    return [i for ids in docs for i in ids]


def completion_prompt(
    tok: Tokenizer,
    sp: SpecialIds,
    path: str,
    prefix: str,
    suffix: str,
    context: Sequence[int] = (),
    max_prefix_tokens: int = 320,
    max_suffix_tokens: int = 96,
) -> Prompt:
    """Build the FIM prompt for a cursor between ``prefix`` and ``suffix``.

    ``context`` (other files' snippets as ``context_ids`` lays them out) goes in front of
    the file so it stays inside the static part.  Truncation keeps the prefix's end and the
    suffix's start; it depends only on the text before the cursor's line, so the static
    part does not change while typing on one line.  A cursor line longer than the whole
    prefix budget (minified code) keeps only its end: the prompt never outgrows the budget.
    """
    before, line = split_prefix(prefix)
    before_ids = encode(tok, tail_lines(before, max_prefix_tokens * _MAX_CHARS_PER_TOKEN))
    line_ids = encode(tok, line[-max_prefix_tokens * _MAX_CHARS_PER_TOKEN:])[-max_prefix_tokens:]
    budget = max(0, max_prefix_tokens - len(line_ids))
    before_ids = before_ids[-budget:] if budget else []
    suffix_ids = encode(tok, head_lines(suffix, max_suffix_tokens * _MAX_CHARS_PER_TOKEN))[:max_suffix_tokens]
    static = [
        *context,
        *header_ids(tok, sp, path),
        sp.fim_suffix,
        *suffix_ids,
        sp.fim_prefix,
        *before_ids,
    ]
    return Prompt(static=static, dynamic=[*line_ids, sp.fim_middle])


def fitted_prompt(tok: Tokenizer, sp: SpecialIds, path: str, prefix: str, suffix: str | None,
                  budget: int) -> list[int]:
    """A prompt of at most ``budget`` tokens for text that arrives without an editor around
    it (the team server's API): fill-in-the-middle when there is a ``suffix`` (``""`` too:
    the cursor at the end of a file), else left-to-right.

    Keeps the end of the prefix and the start of the suffix; the suffix gets at most a
    fifth of the budget, as in the language server's prompts, and what it leaves unused
    goes to the prefix.
    """
    header = header_ids(tok, sp, path)
    if suffix is None:
        room = max(0, budget - len(header))
        tail = encode(tok, tail_lines(prefix, room * _MAX_CHARS_PER_TOKEN))
        return [*header, *(tail[-room:] if room else [])]
    room = max(2, budget - len(header) - 3)  # the three FIM markers
    suffix_tokens = min(len(encode(tok, head_lines(suffix, room // 5 * _MAX_CHARS_PER_TOKEN))), room // 5)
    return completion_prompt(tok, sp, path, prefix, suffix, max_prefix_tokens=room - suffix_tokens,
                             max_suffix_tokens=suffix_tokens).ids
