"""The dense signal: our own transformer code encoder, run by CTranslate2 (no torch).

A small BERT trained contrastively by ``training/encoder_train.py`` (renamed, reordered,
re-documented rewrites of corpus functions and two-author solutions of the same problems
land close together), converted to CTranslate2 int8 and shipped in ``model/encoder/``
with the completion model's tokenizer.  A chunk's vector is the mean of the last hidden
states over its first ``max_tokens`` tokens, L2-normalised -- the same pooling training used.

CTranslate2 runs the encoder in int8 on a couple of threads; chunks are embedded in
batches sorted by length (less padding), which is what makes a whole repository take
seconds to a couple of minutes in the background (``service.py``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.tokenizer import load_tokenizer

DEFAULT_ENCODER = Path(__file__).resolve().parents[2] / "model" / "encoder"
_FILES = ("model.bin", "config.json", "tokenizer.json", "encoder.json")


@dataclass(frozen=True)
class EncoderConfig:
    threads: int = 2  # CTranslate2 intra-op threads: the editor and the completions need the rest
    # A forward pass takes chunks of similar length (sorted), at most ``batch_size`` of them
    # and at most ``batch_tokens`` tokens with the padding.  CTranslate2's CPU allocator
    # keeps the buffers of the largest pass it has run: on sqlalchemy, passes of 64
    # 160-token chunks held ~185 MB after the embedding pass, 16 (2,560 tokens) ~55 MB,
    # and were no slower.
    batch_size: int = 64
    batch_tokens: int = 2560
    compute_type: str = "int8"


def encoder_identity(path: Path) -> str:
    """Changes whenever the weights or the tokenizer do (caches of vectors depend on both)."""
    h = hashlib.sha1()
    for name in ("model.bin", "tokenizer.json", "encoder.json"):
        h.update((path / name).read_bytes())
    return h.hexdigest()[:16]


class CodeEncoder:
    """Chunk texts -> unit float32 vectors.  Thread-safe: CTranslate2 serialises its calls
    internally, the tokenizer is read-only."""

    def __init__(self, path: Path, config: EncoderConfig | None = None) -> None:
        import ctranslate2  # the server imports it anyway for completions; here only when used

        self.path = Path(path)
        missing = [f for f in _FILES if not (self.path / f).is_file()]
        if missing:
            raise FileNotFoundError(f"no code encoder in {self.path} (missing {', '.join(missing)})")
        self.config = config or EncoderConfig()
        meta = json.loads((self.path / "encoder.json").read_text())
        self.max_tokens = int(meta["max_tokens"])
        self.dim = int(meta["dim"])
        self.identity = encoder_identity(self.path)
        self.tokenizer = load_tokenizer(self.path)
        self.model = ctranslate2.Encoder(str(self.path), device="cpu", compute_type=self.config.compute_type,
                                         intra_threads=self.config.threads)
        self._pad = [self.tokenizer.token_to_id("<|endoftext|>") or 0]
        self._lock = threading.Lock()

    @staticmethod
    def load(path: Path | None = None, config: EncoderConfig | None = None) -> CodeEncoder:
        return CodeEncoder(path or DEFAULT_ENCODER, config)

    def ids(self, text: str) -> list[int]:
        return self.ids_many([text])[0]

    def ids_many(self, texts: list[str]) -> list[list[int]]:
        """Token ids, at most ``max_tokens`` each.  Only the head of a long chunk is tokenized
        (8 characters a token is more than code averages over a chunk), in one parallel batch."""
        heads = [t[:8 * self.max_tokens] for t in texts]
        encoded = self.tokenizer.encode_batch(heads, add_special_tokens=False)
        return [e.ids[:self.max_tokens] or self._pad for e in encoded]

    def embed(self, text: str) -> np.ndarray:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        rows = self.ids_many(texts)
        lengths = np.array([len(r) for r in rows])
        order = sorted(range(len(rows)), key=lengths.__getitem__)
        for batch in self._passes(order, lengths):
            with self._lock:
                hidden = np.asarray(self.model.forward_batch([rows[i] for i in batch]).last_hidden_state)
            n = lengths[batch]
            mask = (np.arange(hidden.shape[1])[None, :] < n[:, None]).astype(np.float32)
            pooled = (hidden * mask[:, :, None]).sum(1) / n[:, None]
            out[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-6)
        return out

    def _passes(self, order: list[int], lengths: np.ndarray) -> Iterator[list[int]]:
        """``order`` (ascending length) cut into forward passes within the size limits."""
        start = 0
        while start < len(order):
            end = start + 1
            while (end < len(order) and end - start < self.config.batch_size
                   and (end + 1 - start) * lengths[order[end]] <= self.config.batch_tokens):
                end += 1
            yield order[start:end]
            start = end
