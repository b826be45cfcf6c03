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
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from lsp_server.similarity.structure import structure_counts
from lsp_server.similarity.tokens import Token, subwords, tokenize

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
    def from_counts(counts: Counter) -> Bag:
        if not counts:
            return EMPTY_BAG
        pairs: dict[int, float] = {}
        for feature, n in counts.items():
            h = _hash_memo.get(feature)
            if h is None:
                h = _hash_memo[feature] = zlib.crc32(feature.encode()) & FEATURE_MASK
            pairs[h] = pairs.get(h, 0) + n
        ids = np.fromiter(pairs.keys(), np.uint32, len(pairs))
        tf = np.fromiter(pairs.values(), np.float32, len(pairs))
        order = np.argsort(ids)
        return Bag(ids[order], (1 + np.log(tf[order])).astype(np.float32))


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


def feature_counts(tokens: list[Token]) -> tuple[Counter, Counter]:
    """The two feature bags of a token list as string counters (``words``, ``shape``)."""
    words: Counter = Counter()
    stream: list[str] = []
    for tok in tokens:
        kind, text = tok.kind, tok.text
        if kind == "name":
            for w in subwords(text):
                words["w:" + w] += 1
            stream.append("I")
        elif kind == "kw":
            words["k:" + text] += 1
            stream.append(text)
        elif kind == "doc":
            # A docstring says what the code does in words; its punctuation is not shape.
            for w in _WORD.findall(text):
                for s in subwords(w):
                    words["w:" + s] += 1
        elif kind == "str":
            words["s:" + text[-16:]] += 1
            stream.append("S")
        elif kind == "number":
            words["#:" + text] += 1
            stream.append(text if len(text) == 1 else "N")
        else:
            words["o:" + text] += 1
            stream.append(text)
    shape: Counter = Counter(" ".join(stream[i:i + SHINGLE]) for i in range(len(stream) - SHINGLE + 1))
    return words, shape


@lru_cache(maxsize=2048)
def fingerprint(code: str, language: str = "python") -> Fingerprint:
    """Every bag of ``code``; ``language`` is a tree-sitter grammar name or "text".

    Cached: every edit of an open document re-chunks the whole file, and all its chunks but
    the one being typed in are the same text as a keystroke ago.  (Fingerprints are frozen,
    so sharing one is safe.)"""
    words = fingerprint_tokens(tokenize(code, language))
    interface, structure = structure_counts(code, language)
    return replace(words, interface=Bag.from_counts(Counter({"i:" + k: v for k, v in interface.items()})),
                   structure=Bag.from_counts(Counter({"x:" + k: v for k, v in structure.items()})))


def fingerprint_tokens(tokens: list[Token]) -> Fingerprint:
    words, shape = feature_counts(tokens)
    return Fingerprint(Bag.from_counts(words), Bag.from_counts(Counter({"g:" + k: v for k, v in shape.items()})),
                       sum(words.values()))
