"""A text's tokens as arrays of feature ids, so any span's ``words`` and ``shape`` come cheap.

The one definition of what a token adds to the two token bags is ``token_features``: a
name's sub-words, a keyword, operator or literal as itself (strings by their last 16
characters), a docstring's words; and its symbol in the shape stream (names become ``I``,
strings ``S``, longer numbers ``N``; comments and docstrings are not part of it).

Cold indexing tokenizes every file of a workspace, and per token Python work was a third of
it: ``TokenTable`` tokenizes a text in one ``re.findall`` pass and turns the tokens into
feature ids with lookups at C speed in tables shared by every text (``_Vocabulary`` for
tokens, ``_ShingleIds`` for 3-symbol shingles); only what was never seen before is looked at
in Python.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import chain, compress
from operator import is_

import numpy as np

from lsp_server.similarity.features import feature_id, hash_feature
from lsp_server.similarity.tokens import spaced_token_pattern, subwords, token_kind, token_pattern

SHINGLE = 3
_WORD = re.compile(r"[A-Za-z]+")
_NO_IDS = np.zeros(0, np.uint32)
_hash = feature_id


def _name_ids(name: str) -> tuple[int, ...]:
    """The ``words`` feature ids of a name or a docstring's word: its sub-words.  Remembered,
    since docstrings (too long to be remembered whole) repeat the same words."""
    ids = _name_memo.get(name)
    if ids is None:
        if len(_name_memo) >= _MEMO_SIZE:
            _name_memo.clear()
        ids = _name_memo[name] = tuple(_hash("w:" + w) for w in subwords(name))
    return ids


def _docstring_ids(words: list[str]) -> tuple[int, ...]:
    """``_name_ids`` of each word, the remembered ones looked up at C speed (a docstring's
    words are mostly common English)."""
    ids = list(map(_name_memo.get, words))
    for i in list(compress(range(len(ids)), map(_is_none, ids))):
        ids[i] = _name_ids(words[i])
    return tuple(chain.from_iterable(ids))


def token_features(kind: str, text: str) -> tuple[tuple[int, ...], str | None]:
    """One token's hashed ``words`` features and its symbol in the ``shape`` stream (None:
    not part of it).  ``kind`` is a ``Token`` kind.  The one definition of both bags."""
    if kind == "name":
        return _name_ids(text), "I"
    if kind == "kw":
        return (_hash("k:" + text),), text
    if kind == "doc":
        # A docstring says what the code does in words; its punctuation is not shape.
        return _docstring_ids(_WORD.findall(text)), None
    if kind == "str":
        return (_hash("s:" + text[-16:]),), "S"
    if kind == "number":
        return (_hash("#:" + text),), text if len(text) == 1 else "N"
    return (_hash("o:" + text),), text


class TokenTable:
    """The tokens of one text as arrays, so the ``words`` and ``shape`` bags of any span of it
    cost a few numpy slices: a file is tokenized once for all its chunks (a class and each of
    its methods), instead of once per chunk.

    Spans start and end at ``cuts`` (char offsets given up front).  The text is tokenized
    once with ``re.findall`` (C speed, no Python per token), each token with the spaces
    before it, so the matches' lengths say where each token starts and ends.  A cut no token
    crosses is a boundary of the scan: the tokens between two such cuts are exactly those of
    that text on its own.  A span with an end inside a token (a multi-line string or comment
    across a cut) gets None from ``span_ids``, and the caller tokenizes that text alone.

    The tokens' features are gathered from ``_Vocabulary`` rows, the shingles' from
    ``_ShingleIds``: no Python per token."""

    def __init__(self, text: str, language: str, cuts: Iterable[int] = ()) -> None:
        spaced = spaced_token_pattern(language).findall(text)
        tokens = list(map(str.lstrip, spaced))
        n = self._n = len(tokens)
        self._length = len(text)
        self._index: dict[int, int] = {}  # cut no token crosses -> number of tokens before it
        cuts = sorted({c for c in cuts if 0 < c < len(text)})
        if cuts and n:
            ends = np.cumsum(np.fromiter(map(len, spaced), np.int64, n))
            at = np.array(cuts, np.int64)
            before = np.searchsorted(ends, at, side="right")  # tokens ending at or before the cut
            after = np.minimum(before, n - 1)  # the first token ending past it, if any: where does it start?
            starts = ends[after] - np.fromiter(map(len, map(tokens.__getitem__, after.tolist())), np.int64, len(after))
            crossed = (before < n) & (starts < at)
            self._index = {c: k for c, k, x in zip(cuts, before.tolist(), crossed.tolist(), strict=True) if not x}
        elif cuts:
            self._index = dict.fromkeys(cuts, 0)
        with _vocabulary(language).rows(tokens, language) as (vocabulary, row):
            count = vocabulary.count[row]
            # words: every token's feature ids, flat, with per-token offsets
            self._word_off = np.zeros(n + 1, np.int64)
            np.cumsum(count, out=self._word_off[1:])
            at = np.repeat(vocabulary.first[row] - self._word_off[:-1], count) + np.arange(self._word_off[-1])
            self._words = vocabulary.words[at]
            symbol = vocabulary.symbol[row]
        # shape: the symbol stream of the tokens that have one, and its shingles' feature ids
        self._stream_off = np.zeros(n + 1, np.int64)
        np.cumsum(symbol >= 0, out=self._stream_off[1:])
        stream = symbol[symbol >= 0]
        self._shingles = _shingles.ids(stream)

    def _token_index(self, cut: int) -> int | None:
        return 0 if cut <= 0 else self._n if cut >= self._length else self._index.get(cut)

    def span_ids(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``words`` and ``shape`` feature ids (multisets) of ``text[start:end]``; None
        unless both ends are cuts no token crosses."""
        ti, tj = self._token_index(start), self._token_index(end)
        if ti is None or tj is None:
            return None
        p, q = self._stream_off[ti], self._stream_off[tj]
        return self._words[self._word_off[ti]:self._word_off[tj]], self._shingles[p:max(p, q - SHINGLE + 1)]


_MEMO_TOKEN_CHARS = 64
_MEMO_SIZE = 200_000  # about 40 MB at most; a workspace has far fewer distinct short tokens
_name_memo: dict[str, tuple[int, ...]] = {}
# Shape symbols (keywords, operators, "I", "S", "N", one-character numbers) are numbered
# for the life of the process: a few hundred at most (a Python or JavaScript workspace has
# about 140).
_symbols: dict[str, int] = {}
_symbol_names: list[str] = []
_symbols_lock = threading.Lock()
_is_none = partial(is_, None)


class _Vocabulary:
    """Every short token seen (per token pattern: ``#`` is a comment only in Python) as a
    row: its ``words`` ids (a slice of one flat array) and its shape symbol id (-1: none).

    The same short tokens recur in every file, so a text's tokens become rows with one
    ``dict.get`` each at C speed, and their features are numpy gathers; only tokens not seen
    before are looked at in Python.  Docstrings, comments and other long tokens are one-offs:
    they get scratch rows past the end, dropped when the text's arrays are made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._rows: dict[str, int] = {}
        self._size = self._n_words = 0
        self.count = np.zeros(4096, np.int32)  # row -> number of its words ids
        self.first = np.zeros(4096, np.int32)  # row -> where they start in ``words``
        self.symbol = np.zeros(4096, np.int32)
        self.words = np.zeros(8192, np.uint32)

    @contextmanager
    def rows(self, tokens: list[str], language: str) -> Iterator[tuple[_Vocabulary, np.ndarray]]:
        """(self, the row of each token), the rows valid until the block ends."""
        with self._lock:
            if self._size >= _MEMO_SIZE:
                self._clear()
            found = list(map(self._rows.get, tokens))
            new: list[str] = []  # tokens seen for the first time, in the order of their rows
            long: list[int] = []
            for i in list(compress(range(len(found)), map(_is_none, found))):
                token = tokens[i]
                row = self._rows.get(token)  # seen earlier in this text
                if row is None:
                    if len(token) > _MEMO_TOKEN_CHARS:
                        long.append(i)
                        continue
                    row = self._rows[token] = self._size + len(new)
                    new.append(token)
                found[i] = row
            self._add(new, language)
            size, n_words = self._size, self._n_words
            self._add([tokens[i] for i in long], language)  # scratch rows
            for row, i in enumerate(long, size):
                found[i] = row
            try:
                yield self, np.fromiter(found, np.int64, len(found))
            finally:
                self._size, self._n_words = size, n_words

    def _add(self, tokens: list[str], language: str) -> None:
        """Rows for ``tokens`` after the last one."""
        if not tokens:
            return
        named = token_pattern(language)
        words, symbols = [], []
        for token in tokens:
            kind = named.match(token).lastgroup  # the token alone matches as it did in the text
            ids, symbol = ((), None) if kind == "comment" else token_features(*token_kind(kind, token))
            words.append(ids)
            symbols.append(-1 if symbol is None else _symbol_id(symbol))
        count = np.fromiter(map(len, words), np.int64, len(words))
        start, end = self._size, self._size + len(tokens)
        n_words = self._n_words + int(count.sum())
        if end > len(self.count):
            self.count, self.first, self.symbol = (np.resize(a, max(end, 2 * len(a)))
                                                   for a in (self.count, self.first, self.symbol))
        if n_words > len(self.words):
            self.words = np.resize(self.words, max(n_words, 2 * len(self.words)))
        self.count[start:end] = count
        self.first[start:end] = self._n_words + np.cumsum(count) - count
        self.symbol[start:end] = symbols
        self.words[self._n_words:n_words] = np.fromiter(chain.from_iterable(words), np.uint32, n_words - self._n_words)
        self._size, self._n_words = end, n_words


_vocabularies = {"python": _Vocabulary(), "c": _Vocabulary()}


def _vocabulary(language: str) -> _Vocabulary:
    return _vocabularies["python" if language == "python" else "c"]


def _symbol_id(symbol: str) -> int:
    number = _symbols.get(symbol)
    if number is None:
        with _symbols_lock:  # two threads must not give two symbols one number
            number = _symbols.get(symbol)
            if number is None:
                number = _symbols[symbol] = len(_symbol_names)
                _symbol_names.append(symbol)
    return number


_MAX_PAIRS = 8192


class _ShingleIds:
    """The feature ids of 3-symbol shingles, from two numpy tables: symbols ``a b`` -> their
    pair's number, (pair, ``c``) -> the id plus one (0: not hashed yet).  A file's shingles
    are two gathers (a dict lookup per shingle was a tenth of cold indexing), and only
    shingles never seen before are hashed in Python."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._width = 256  # symbol numbers below it; doubled if a workspace has more
        self._pair = np.full((self._width, self._width), -1, np.int32)
        self._pairs: list[tuple[int, int]] = []  # pair number -> its symbols
        self._ids = np.zeros((1024, self._width), np.uint32)

    def ids(self, stream: np.ndarray) -> np.ndarray:
        """The shingle ids of a stream of symbol numbers."""
        if len(stream) < SHINGLE:
            return _NO_IDS
        stream = stream.astype(np.int64)  # pair keys are a * width + b
        a, b, c = stream[:-2], stream[1:-1], stream[2:]
        with self._lock:
            if len(self._pairs) >= _MAX_PAIRS:  # about 8 MB; a workspace has a few thousand
                self._clear()
            if int(stream.max()) >= self._width:
                self._widen(int(stream.max()) + 1)
            pair = self._pair[a, b]
            new = pair < 0
            if new.any():
                for key in np.unique(a[new] * self._width + b[new]).tolist():
                    self._add_pair(*divmod(key, self._width))
                pair = self._pair[a, b]
            ids = self._ids[pair, c]
            new = ids == 0
            if new.any():
                for key in np.unique(pair[new].astype(np.int64) * self._width + c[new]).tolist():
                    p, last = divmod(key, self._width)
                    names = (*map(_symbol_names.__getitem__, self._pairs[p]), _symbol_names[last])
                    self._ids[p, last] = hash_feature("g:" + " ".join(names)) + 1
                ids = self._ids[pair, c]
        return ids - np.uint32(1)

    def _add_pair(self, a: int, b: int) -> None:
        self._pair[a, b] = len(self._pairs)
        self._pairs.append((a, b))
        if len(self._pairs) > len(self._ids):
            self._ids = np.concatenate([self._ids, np.zeros_like(self._ids)])

    def _widen(self, needed: int) -> None:
        width = self._width
        while width < needed:
            width *= 2
        pair = np.full((width, width), -1, np.int32)
        pair[:self._width, :self._width] = self._pair
        ids = np.zeros((len(self._ids), width), np.uint32)
        ids[:, :self._width] = self._ids
        self._width, self._pair, self._ids = width, pair, ids


_shingles = _ShingleIds()
