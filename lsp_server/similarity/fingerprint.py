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

Features are hashed (crc32, 20 bits; ``features.py``) so an index never stores strings and a
saved index stays valid across processes (Python's own ``hash`` is salted per process).
A file's chunks are fingerprinted together: their token bags are spans of one
``TokenTable`` (``token_table.py``), their tree bags come from one ``TreeFeatures``.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from lsp_server.similarity.chunking import ChunkedText
from lsp_server.similarity.features import FEATURE_BITS, FEATURE_MASK, feature_id, feature_ids
from lsp_server.similarity.structure import FLOW_GRAMMARS, TreeFeatures, structure_ids
from lsp_server.similarity.token_table import SHINGLE, TokenTable, token_features
from lsp_server.similarity.tokens import Token

SHAPE_WEIGHT = 0.5  # the shape cosine's weight against the words cosine


@dataclass(frozen=True)
class Bag:
    """Sorted unique feature ids and their sub-linear term weights ``1 + log(tf)``."""

    ids: np.ndarray  # uint32
    weights: np.ndarray  # float32

    @staticmethod
    def from_counts(counts: Counter, prefix: str = "") -> Bag:
        """The bag of features counted by name (each name with ``prefix`` before it)."""
        return _bags([feature_ids(counts, prefix)])[0]


_NO_IDS = np.zeros(0, np.uint32)
EMPTY_BAG = Bag(_NO_IDS, np.zeros(0, np.float32))
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


def fingerprint_tokens(tokens: list[Token]) -> Fingerprint:
    """The ``words`` and ``shape`` bags of a token list (training builds disguised copies as
    token lists)."""
    words: list[int] = []
    stream: list[str] = []
    for tok in tokens:
        ids, symbol = token_features(tok.kind, tok.text)
        words.extend(ids)
        if symbol is not None:
            stream.append(symbol)
    shape = [feature_id("g:" + " ".join(stream[i:i + SHINGLE])) for i in range(len(stream) - SHINGLE + 1)]
    return Fingerprint(_bag(np.array(words, np.uint32)), _bag(np.array(shape, np.uint32)), len(words))


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
    words, shape = TokenTable(code, language).span_ids(0, len(code))
    bags = _bags([words, shape, *structure_ids(code, language)])
    return _remember(code, language, False, Fingerprint(bags[0], bags[1], len(words), bags[2], bags[3]))


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
    plus_newline = (1).__add__
    char_start = list(accumulate(map(plus_newline, map(len, lines)), initial=0))
    byte_start = char_start if text.isascii() else \
        list(accumulate(map(plus_newline, map(len, map(str.encode, lines))), initial=0))
    whole = sum(len(chunks[i].text) for i in missing) > len(text) // 2
    cuts = [char_start[c.start_line] + k for c in chunks for k in (0, len(c.text))]
    table = TokenTable(text, language, cuts) if whole else None
    spans = []  # (start byte, end byte, text) of each missing chunk
    for i in missing:
        chunk = chunks[i]
        lo = byte_start[chunk.start_line]
        spans.append((lo, lo + (len(chunk.text) if byte_start is char_start else len(chunk.text.encode("utf-8"))),
                      chunk.text))
    if chunked.tree is not None and language in FLOW_GRAMMARS:
        tree_ids = TreeFeatures(chunked.captures, language).chunk_ids(spans)
    else:
        tree_ids = [(_NO_IDS, _NO_IDS)] * len(missing)
    multisets: list[np.ndarray] = []  # words, shape, interface, structure of each missing chunk
    for i, interface_structure in zip(missing, tree_ids, strict=True):
        chunk = chunks[i]
        start = char_start[chunk.start_line]
        ids = table.span_ids(start, start + len(chunk.text)) if table is not None else None
        if ids is None:  # a few chunks, or a string or comment crossing this one's ends
            ids = TokenTable(chunk.text, chunk.language).span_ids(0, len(chunk.text))
        multisets += [*ids, *interface_structure]
    bags = _bags(multisets)
    for k, i in enumerate(missing):
        words, shape, interface, structure = bags[4 * k:4 * k + 4]
        fp = Fingerprint(words, shape, len(multisets[4 * k]), interface, structure)
        out[i] = _remember(chunks[i].text, chunks[i].language, True, fp)
    return out
