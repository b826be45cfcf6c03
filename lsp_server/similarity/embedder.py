"""The dense signal: our own code encoder, run with numpy.

The encoder (trained by ``training/embed_train.py``) is a bag of learned feature vectors:
the chunk's fingerprint features (identifier sub-words, keywords, literals, shape
shingles) are looked up in a learned table, summed with learned per-feature weights, one
sum for the words and one for the shape, each normalised, joined and projected.  It was
trained contrastively so that renamed, re-documented copies and same-purpose functions
land close together, which is what a TF-IDF cosine cannot learn: that ``lookup`` and
``seen`` play the same part, or that two different shapes compute the same thing.

Why a bag and not a transformer: indexing a 600-file repository must take seconds on a
laptop CPU without torch; a bag costs one gather and one small matrix product per chunk.
The weights are one ``.npz`` of plain arrays (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsp_server.similarity.fingerprint import Bag, Fingerprint

DEFAULT_EMBEDDER = Path(__file__).resolve().parents[2] / "model" / "embedder" / "embedder.npz"


@dataclass(frozen=True)
class EmbedderWeights:
    vocab: np.ndarray  # uint32 [V], sorted feature ids (fingerprint hash space)
    scale: np.ndarray  # float32 [V], learned weight of each feature
    table: np.ndarray  # float32 [V, d]
    proj: np.ndarray  # float32 [2d, k]
    meta: dict

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, vocab=self.vocab.astype(np.uint32), scale=self.scale.astype(np.float32),
                            table=self.table.astype(np.float16), proj=self.proj.astype(np.float32),
                            meta=np.array(json.dumps(self.meta)))

    @staticmethod
    def load(path: Path) -> EmbedderWeights:
        with np.load(path, allow_pickle=False) as z:
            weights = EmbedderWeights(z["vocab"], z["scale"].astype(np.float32), z["table"].astype(np.float32),
                                      z["proj"].astype(np.float32), json.loads(str(z["meta"])))
        if not (len(weights.vocab) == len(weights.scale) == len(weights.table)
                and weights.proj.shape[0] == 2 * weights.table.shape[1]):
            raise ValueError(f"{path}: inconsistent embedder shapes")
        return weights


class CodeEmbedder:
    """Fingerprint -> unit vector.  Thread-safe: it holds only read-only arrays."""

    def __init__(self, weights: EmbedderWeights) -> None:
        self.weights = weights
        self.dim = weights.proj.shape[1]

    @staticmethod
    def load(path: Path | None = None) -> CodeEmbedder:
        return CodeEmbedder(EmbedderWeights.load(path or DEFAULT_EMBEDDER))

    def _bag(self, bag: Bag) -> np.ndarray:
        w = self.weights
        pos = np.searchsorted(w.vocab, bag.ids)
        pos[pos == len(w.vocab)] = 0
        hit = w.vocab[pos] == bag.ids
        rows = pos[hit]
        x = (bag.weights[hit] * w.scale[rows]) @ w.table[rows] if rows.size else np.zeros(w.table.shape[1], np.float32)
        return x / max(float(np.linalg.norm(x)), 1e-6)

    def embed(self, fp: Fingerprint) -> np.ndarray:
        y = np.concatenate([self._bag(fp.words), self._bag(fp.shape)]) @ self.weights.proj
        return (y / max(float(np.linalg.norm(y)), 1e-6)).astype(np.float32)

    def embed_many(self, fps: list[Fingerprint]) -> np.ndarray:
        out = np.zeros((len(fps), self.dim), np.float32)
        for i, fp in enumerate(fps):
            out[i] = self.embed(fp)
        return out
