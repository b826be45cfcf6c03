"""Feature ids: every bag's features are strings hashed to 20 bits.

crc32, not Python's ``hash``: that one is salted per process, and a saved index must stay
valid across processes.  Shared by the token bags (``fingerprint.py``) and the tree bags
(``structure.py``), so both hash a feature name the same way.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np

FEATURE_BITS = 20
FEATURE_MASK = (1 << FEATURE_BITS) - 1
_memo: dict[str, int] = {}


def hash_feature(feature: str) -> int:
    return zlib.crc32(feature.encode()) & FEATURE_MASK


def feature_id(feature: str) -> int:
    """``hash_feature``, remembered: most features recur in every file."""
    h = _memo.get(feature)
    if h is None:
        h = _memo[feature] = hash_feature(feature)
    return h


def feature_ids(counts: Counter, prefix: str = "") -> np.ndarray:
    """The multiset of feature ids that ``counts`` (feature names, each with ``prefix``) stands for."""
    hashed = np.fromiter((feature_id(prefix + feature) for feature in counts), np.uint32, len(counts))
    return np.repeat(hashed, np.fromiter(counts.values(), np.int64, len(counts)))
