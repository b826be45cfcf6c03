"""Clone-detection evaluation: MAP@R of the similarity index on a labelled set of programs.

MAP@R as CodeXGLUE's POJ-104 defines it: for every item, R is the number of *other* items
with its label; the index is asked for the top R (the item itself excluded) and scores the
average precision over those R.  Every item goes into one ``SimilarityIndex`` exactly as a
workspace chunk would, and the queries go through the same ``search`` the language server
answers ``ghostline/findSimilar`` with, so the figure measures what users get.  The same
run scores each signal alone, to show what each contributes to the fusion.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsp_server.similarity.chunking import Chunk
from lsp_server.similarity.encoder import CodeEncoder
from lsp_server.similarity.index import RANKINGS, Entry, IndexConfig, SimilarityIndex, make_entry

SIGNALS = RANKINGS  # fused, lexical (words + shape), and each signal alone
SPLITS = ("all", "train", "heldout", "train-encoder", "train-fusion")


def split_of(label: str) -> str:
    """Which side of the clone sets a problem is on: ``train`` (3 in 5 problems; encoders and
    fusion weights may learn from them) or ``heldout`` (the rest; only for the numbers).

    A hash of the label, not a random draw, so the named and the anonymised files (the same
    programs) and every tool that trains or evaluates agree without sharing a file."""
    return "train" if zlib.crc32(str(label).encode()) % 5 < 3 else "heldout"


def train_half_of(label: str) -> str:
    """Which half of the ``train`` problems a problem is in: ``encoder`` (the code encoder
    learns from it) or ``fusion`` (``fit_fusion`` fits the weights on it).

    A learnt signal looks better than it is on the problems it learnt from, so weights
    fitted there overweight it; the two halves keep the encoder's problems out of the fit.
    Another hash than ``split_of``'s (salted), so the halves do not follow its residues."""
    return "encoder" if zlib.crc32(b"fusion-half:" + str(label).encode()) % 2 == 0 else "fusion"


def in_split(label: str, split: str) -> bool:
    """Whether a problem is in ``split`` (one of ``SPLITS``)."""
    if split == "all":
        return True
    side = split_of(label)
    if split in ("train", "heldout"):
        return side == split
    return side == "train" and f"train-{train_half_of(label)}" == split


@dataclass(frozen=True)
class ClonesReport:
    path: Path
    items: int
    labels: int
    map_at_r: dict[str, float]  # signal -> MAP@R
    seconds: float

    def lines(self) -> list[str]:
        head = f"{self.path.name}: {self.items:,} items, {self.labels:,} labels, {self.seconds:.1f}s"
        return [head] + [f"  MAP@R {name:<9} {value:.4f}" for name, value in self.map_at_r.items()]


def load_items(path: Path, split: str = "all") -> list[dict]:
    """The rows of ``path`` (``label`` and ``code`` each), those of one ``split`` if named."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "label" not in row or "code" not in row:
                raise ValueError(f"{path}:{n}: each row needs 'label' and 'code'")
            if in_split(str(row["label"]), split):
                rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no items" + ("" if split == "all" else f" in the {split} split"))
    return rows


def average_precision_at_r(ranked_labels: list[str], label: str, r: int) -> float:
    hits = np.array([x == label for x in ranked_labels[:r]] + [False] * (r - len(ranked_labels[:r])))
    precision = np.cumsum(hits) / np.arange(1, r + 1)
    return float((precision * hits).sum() / r)


@dataclass
class CloneSet:
    """One labelled set in one ``SimilarityIndex``, every item a chunk of its own file,
    embedded up front (``vectors``: one row per item, or None without an encoder)."""

    labels: list[str]
    entries: list[Entry]
    vectors: np.ndarray | None
    index: SimilarityIndex

    @staticmethod
    def build(path: Path, encoder: CodeEncoder | None, split: str = "all",
              config: IndexConfig | None = None) -> CloneSet:
        rows = load_items(path, split)
        index = SimilarityIndex(encoder.dim if encoder else 0, config)
        vectors = encoder.embed_many([row["code"] for row in rows]) if encoder else None
        entries = []
        for i, row in enumerate(rows):
            code = row["code"]
            chunk = Chunk("function", str(row.get("index", i)), 0, code.count("\n"), code, "python")
            entries.append(make_entry(f"item:{i}", chunk))
            index.set_file(f"item:{i}", None, [entries[-1]], vectors[i:i + 1] if vectors is not None else None)
        return CloneSet([str(r["label"]) for r in rows], entries, vectors, index)

    def vector(self, i: int) -> np.ndarray | None:
        return self.vectors[i] if self.vectors is not None else None

    def queries(self) -> list[tuple[int, int]]:
        """(item, R) for every item with at least one other item of its label."""
        counts = Counter(self.labels)
        return [(i, counts[label] - 1) for i, label in enumerate(self.labels) if counts[label] > 1]

    def map_at_r(self, signal: str) -> float:
        aps = []
        for i, r in self.queries():
            hits = self.index.search(self.entries[i].fingerprint, limit=r, exclude_file=f"item:{i}", signals=signal,
                                     vector=self.vector(i))
            ranked = [self.labels[int(h.entry.file.split(":")[1])] for h in hits]
            aps.append(average_precision_at_r(ranked, self.labels[i], r))
        return float(np.mean(aps))


def evaluate_clones(path: Path, encoder: CodeEncoder | None = None,
                    signals: tuple[str, ...] = SIGNALS, split: str = "all",
                    config: IndexConfig | None = None) -> ClonesReport:
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown:
        raise ValueError(f"unknown signal {unknown[0]!r}; choose from {', '.join(SIGNALS)}")
    t0 = time.perf_counter()
    encoder = encoder or CodeEncoder.load()
    clones = CloneSet.build(path, encoder, split, config)
    scores = {signal: clones.map_at_r(signal) for signal in signals}
    return ClonesReport(path, len(clones.labels), len(set(clones.labels)), scores, time.perf_counter() - t0)
