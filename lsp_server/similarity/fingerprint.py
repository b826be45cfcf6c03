"""The fingerprint of a chunk: bags of hashed features, one per similarity signal.

``words`` holds what the code talks about: identifier sub-words (``numToIndex`` ->
num/to/index), keywords, operators, literals and docstring words.  ``shape`` holds how it
is built: 3-token shingles of the token stream with every name and literal replaced by its
kind, so a renamed copy has exactly the same shape.  Each bag is compared by TF-IDF cosine
and the two cosines are mixed (``ShapeWeight``): on the LeetCode clone set the words carry
most of the signal when names are kept, the shape when they are anonymised
(docs/similarity.md has the figures).

Two more bags come from the syntax tree (``structure.py``): ``interface`` (parameters, their
types, the return type) and ``structure`` (the control-flow and expression skeleton).

Features are hashed (crc32, 20 bits) so an index never stores strings and a saved index
stays valid across processes (Python's own ``hash`` is salted per process).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, chain

import numpy as np

from lsp_server.similarity.chunking import ChunkedText
from lsp_server.similarity.structure import FLOW_GRAMMARS, TreeFeatures, structure_counts
from lsp_server.similarity.tokens import Token, spaced_token_pattern, subwords, token_kind, token_pattern

FEATURE_BITS = 20
FEATURE_MASK = (1 << FEATURE_BITS) - 1
SHINGLE = 3
SHAPE_WEIGHT = 0.5  # the shape cosine's weight against the words cosine
_WORD = re.compile(r"[A-Za-z]+")
_hash_memo: dict[str, int] = {}


@dataclass(frozen=True)
class Bag:
    """Sorted unique feature ids and their sub-linear term weights ``1 + log(tf)``."""

    ids: np.ndarray  # uint32
    weights: np.ndarray  # float32

    @staticmethod
    def from_counts(counts: Counter, prefix: str = "") -> Bag:
        """The bag of features counted by name (each name with ``prefix`` before it)."""
        return _bags([_feature_ids(counts, prefix)])[0]


EMPTY_BAG = Bag(np.zeros(0, np.uint32), np.zeros(0, np.float32))
BAGS = ("words", "shape", "interface", "structure")  # every bag a fingerprint has, in this order


@dataclass(frozen=True)
class Fingerprint:
    words: Bag
    shape: Bag
    n_tokens: int
    interface: Bag = EMPTY_BAG  # empty for text without a grammar
    structure: Bag = EMPTY_BAG

    def bag(self, name: str) -> Bag:
        return getattr(self, name)


def _hash(feature: str) -> int:
    h = _hash_memo.get(feature)
    if h is None:
        h = _hash_memo[feature] = zlib.crc32(feature.encode()) & FEATURE_MASK
    return h


def _name_ids(name: str) -> tuple[int, ...]:
    """The ``words`` feature ids of a name or a docstring's word: its sub-words.  Remembered,
    since docstrings (too long to be remembered whole) repeat the same words."""
    ids = _name_memo.get(name)
    if ids is None:
        if len(_name_memo) >= _MEMO_SIZE:
            _name_memo.clear()
        ids = _name_memo[name] = tuple(_hash("w:" + w) for w in subwords(name))
    return ids


def _token_features(kind: str, text: str) -> tuple[tuple[int, ...], str | None]:
    """One token's hashed ``words`` features and its symbol in the ``shape`` stream (None:
    not part of it).  ``kind`` is a ``Token`` kind.  The one definition of both bags."""
    if kind == "name":
        return _name_ids(text), "I"
    if kind == "kw":
        return (_hash("k:" + text),), text
    if kind == "doc":
        # A docstring says what the code does in words; its punctuation is not shape.
        return tuple(chain.from_iterable(map(_name_ids, _WORD.findall(text)))), None
    if kind == "str":
        return (_hash("s:" + text[-16:]),), "S"
    if kind == "number":
        return (_hash("#:" + text),), text if len(text) == 1 else "N"
    return (_hash("o:" + text),), text


def _bag(ids: np.ndarray) -> Bag:
    """The bag of a multiset of feature ids (what ``Bag.from_counts`` makes of the same counts)."""
    return _bags([ids])[0]


def _bags(multisets: list[np.ndarray]) -> list[Bag]:
    """``_bag`` of each multiset of feature ids, all in one sort: a file's chunks have
    hundreds of small arrays, and numpy's fixed cost per call was most of their bags' time.
    The bags' arrays are views into one array per call."""
    lengths = np.fromiter(map(len, multisets), np.int64, len(multisets))
    total = int(lengths.sum())
    if not total:
        return [EMPTY_BAG] * len(multisets)
    owner = np.repeat(np.arange(len(multisets), dtype=np.uint64), lengths)
    keys = np.concatenate(multisets).astype(np.uint64)
    keys |= owner << np.uint64(FEATURE_BITS)
    keys.sort()
    first = np.empty(total, bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = total
    unique = keys[starts]
    ids = (unique & np.uint64(FEATURE_MASK)).astype(np.uint32)
    weights = 1 + np.log((ends - starts).astype(np.float32))
    bounds = np.searchsorted(unique >> np.uint64(FEATURE_BITS), np.arange(len(multisets) + 1, dtype=np.uint64)).tolist()
    return [Bag(ids[lo:hi], weights[lo:hi]) if hi > lo else EMPTY_BAG
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


class TokenTable:
    """The tokens of one text as arrays, so the ``words`` and ``shape`` bags of any span of it
    cost a few numpy slices: a file is tokenized once for all its chunks (a class and each of
    its methods), instead of once per chunk.

    Spans start and end at ``cuts`` (char offsets given up front).  The text is tokenized
    whole and piece by piece between the cuts, both with ``re.findall`` (C speed, no Python
    per token); when the pieces' tokens are the whole text's, no token crosses a cut and a
    span's tokens are exactly those of its text on its own.  Otherwise (a multi-line string
    or comment across a cut) ``span`` returns None and the caller tokenizes that text alone."""

    def __init__(self, text: str, language: str, cuts: Iterable[int] = ()) -> None:
        pattern = spaced_token_pattern(language)
        tokens = pattern.findall(text)
        self._length, self._n = len(text), len(tokens)
        self._index: dict[int, int] = {}  # cut -> number of tokens before it
        cuts = sorted({c for c in cuts if 0 < c < len(text)})
        if cuts:
            pieces = [pattern.findall(text, lo, hi) for lo, hi in zip([0, *cuts], [*cuts, len(text)], strict=True)]
            if list(chain.from_iterable(pieces)) == tokens:
                self._index = dict(zip(cuts, accumulate(map(len, pieces[:-1])), strict=True))
        # One row per distinct token text: its words ids and its shape symbol.
        rows = dict.fromkeys(tokens)
        memo = _token_memo(language)
        named = token_pattern(language)
        symbols: dict[str, int] = {}
        n_words, row_words, row_symbol = [], [], []
        for i, token in enumerate(rows):
            rows[token] = i
            features = memo.get(token)
            if features is None:
                kind = named.match(token).lastgroup  # the token alone matches as it did in the text
                features = ((), None) if kind == "comment" else _token_features(*token_kind(kind, token))
                if len(token) <= _MEMO_TOKEN_CHARS:  # not docstrings and comments: they are one-offs
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[token] = features
            words, symbol = features
            n_words.append(len(words))
            row_words.extend(words)
            row_symbol.append(-1 if symbol is None else symbols.setdefault(symbol, len(symbols)))
        token_rows = np.fromiter(map(rows.__getitem__, tokens), np.int64, len(tokens))
        # words: every token's feature ids, flat, with per-token offsets
        n_words = np.array(n_words, np.int64)
        row_first = np.concatenate([[0], np.cumsum(n_words)[:-1]]).astype(np.int64)
        lens = n_words[token_rows]
        self._word_off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        first = np.repeat(row_first[token_rows] - self._word_off[:-1], lens) + np.arange(self._word_off[-1])
        self._words = np.array(row_words, np.uint32)[first]
        # shape: the symbol stream of the tokens that have one, and its shingles' feature ids
        token_symbol = np.array(row_symbol, np.int64)[token_rows]
        self._stream_off = np.concatenate([[0], np.cumsum(token_symbol >= 0)]).astype(np.int64)
        stream = token_symbol[token_symbol >= 0]
        self._shingles = np.zeros(0, np.uint32)
        if len(stream) >= SHINGLE:
            names, width = list(symbols), len(symbols)
            keys = (stream[:-2] * width + stream[1:-1]) * width + stream[2:]
            unique, inverse = np.unique(keys, return_inverse=True)
            ids = np.fromiter((_hash("g:" + " ".join((names[k // (width * width)], names[k // width % width],
                                                      names[k % width]))) for k in unique.tolist()),
                              np.uint32, len(unique))
            self._shingles = ids[inverse.reshape(-1)]

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

    def span(self, start: int, end: int) -> tuple[Bag, Bag, int] | None:
        """(words, shape, n_tokens) of ``text[start:end]``; None as for ``span_ids``."""
        ids = self.span_ids(start, end)
        if ids is None:
            return None
        words, shape = _bags(list(ids))
        return words, shape, len(ids[0])


_MEMO_TOKEN_CHARS = 64
_MEMO_SIZE = 200_000  # about 40 MB at most; a workspace has far fewer distinct short tokens
_memos: dict[str, dict[str, tuple[tuple[int, ...], str | None]]] = {}
_name_memo: dict[str, tuple[int, ...]] = {}


def _token_memo(language: str) -> dict[str, tuple[tuple[int, ...], str | None]]:
    """Token text -> its features, per token pattern (``#`` is a comment only in Python)."""
    return _memos.setdefault("python" if language == "python" else "c", {})


def fingerprint_tokens(tokens: list[Token]) -> Fingerprint:
    """The ``words`` and ``shape`` bags of a token list (training builds disguised copies as
    token lists)."""
    words: list[int] = []
    stream: list[str] = []
    for tok in tokens:
        ids, symbol = _token_features(tok.kind, tok.text)
        words.extend(ids)
        if symbol is not None:
            stream.append(symbol)
    shape = [_hash("g:" + " ".join(stream[i:i + SHINGLE])) for i in range(len(stream) - SHINGLE + 1)]
    return Fingerprint(_bag(np.array(words, np.uint32)), _bag(np.array(shape, np.uint32)), len(words))


def tree_bags(interface: Counter, structure: Counter) -> dict[str, Bag]:
    return {"interface": Bag.from_counts(interface, "i:"), "structure": Bag.from_counts(structure, "x:")}


def _feature_ids(counts: Counter, prefix: str) -> np.ndarray:
    """The multiset of hashed feature ids that ``counts`` (feature names, each with ``prefix``) stands for."""
    hashed = np.fromiter((_hash(prefix + feature) for feature in counts), np.uint32, len(counts))
    return np.repeat(hashed, np.fromiter(counts.values(), np.int64, len(counts)))


_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[str, str, bool], Fingerprint] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(code: str, language: str, in_file: bool) -> Fingerprint | None:
    """The fingerprint of this text if one was made lately (``in_file``: as a chunk of a file,
    its tree features read from the file's tree).

    Every edit of an open document re-chunks the whole file, and all its chunks but the one
    being typed in are the same text as a keystroke ago.  (Fingerprints are frozen, so
    sharing one is safe.)"""
    key = (code, language, in_file)
    with _cache_lock:
        fp = _cache.get(key)
        if fp is not None:
            _cache.move_to_end(key)
        return fp


def _remember(code: str, language: str, in_file: bool, fp: Fingerprint) -> Fingerprint:
    with _cache_lock:
        _cache[(code, language, in_file)] = fp
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return fp


def fingerprint(code: str, language: str = "python") -> Fingerprint:
    """Every bag of ``code`` on its own; ``language`` is a tree-sitter grammar name or "text"."""
    fp = _cached(code, language, False)
    if fp is not None:
        return fp
    words, shape, n_tokens = TokenTable(code, language).span(0, len(code))
    interface, structure = structure_counts(code, language)
    return _remember(code, language, False, Fingerprint(words, shape, n_tokens, **tree_bags(interface, structure)))


def fingerprint_chunks(chunked: ChunkedText) -> list[Fingerprint]:
    """The fingerprint of each of a file's chunks, made from one tokenization and the
    chunker's tree of the whole file (a class's methods are chunks too, so chunk by chunk
    most of a file was tokenized twice and parsed again).

    The same as ``fingerprint`` of the chunk's text but where the text alone parses
    differently: never for Python (every chunk of sqlalchemy checked), but a JavaScript
    method out of its class is a syntax error, and its tree features were error recovery's.

    Chunks fingerprinted lately come from the cache; when only a few are new (an edit), just
    those are tokenized, each on its own."""
    chunks, language = chunked.chunks, chunked.language
    out: list[Fingerprint | None] = [_cached(c.text, c.language, True) for c in chunks]
    missing = [i for i, fp in enumerate(out) if fp is None]
    if not missing:
        return out
    text = chunked.text
    lines = text.split("\n")
    char_start = list(accumulate((len(line) + 1 for line in lines), initial=0))
    byte_start = char_start if text.isascii() else \
        list(accumulate((len(line.encode("utf-8")) + 1 for line in lines), initial=0))
    whole = sum(len(chunks[i].text) for i in missing) > len(text) // 2
    cuts = [char_start[c.start_line] + k for c in chunks for k in (0, len(c.text))]
    table = TokenTable(text, language, cuts) if whole else None
    trees = chunked.tree is not None and language in FLOW_GRAMMARS
    tree = TreeFeatures(chunked.captures, language) if trees else None
    multisets: list[np.ndarray] = []  # words, shape, interface, structure of each missing chunk
    for i in missing:
        chunk = chunks[i]
        start = char_start[chunk.start_line]
        ids = table.span_ids(start, start + len(chunk.text)) if table is not None else None
        if ids is None:  # a few chunks, or a string or comment crossing this one's ends
            ids = TokenTable(chunk.text, chunk.language).span_ids(0, len(chunk.text))
        if tree is not None:
            lo = byte_start[chunk.start_line]
            hi = lo + (len(chunk.text) if byte_start is char_start else len(chunk.text.encode("utf-8")))
            interface, structure = tree.counts(lo, hi, chunk.text)
        else:
            interface, structure = Counter(), Counter()
        multisets += [*ids, _feature_ids(interface, "i:"), _feature_ids(structure, "x:")]
    bags = _bags(multisets)
    for k, i in enumerate(missing):
        words, shape, interface, structure = bags[4 * k:4 * k + 4]
        fp = Fingerprint(words, shape, len(multisets[4 * k]), interface, structure)
        out[i] = _remember(chunks[i].text, chunks[i].language, True, fp)
    return out
