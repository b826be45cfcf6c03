"""SimilarityIndex: every chunk of a workspace, searchable by several signals fused.

A query chunk is scored against every indexed chunk by each signal: TF-IDF cosines of the
four fingerprint bags (``words``, ``shape``, ``interface``, ``structure``; ``lexical.py``)
and the cosine of the dense encoder's unit vectors (``encoder.py``).  The ranking is a
weighted sum of those scores, with weights fitted on the training problems of the clone
sets (``training/fit_fusion.py``, stored in ``fusion_weights.json``): a learned linear
fusion beat reciprocal-rank fusion there, because the scores are all cosines on one scale
and a rank throws away how close the runner-up was (docs/similarity.md).

Dense search is exact (one matrix-vector product): at workspace scale (tens of thousands of
chunks x 128 floats) that is well under a millisecond, so an approximate library would add
a dependency and recall loss for nothing; docs/similarity.md has the measurements.

The index is keyed by file: ``set_file`` replaces all chunks of one file at once, which is
how saves, file events and edits of open documents arrive.  Slots are never reused while
postings may still point at them; ``compact`` renumbers when too many are dead.

Lexical features go in at once; a chunk's vector may come later (``set_vectors``): the
encoder runs in the background (``service.py``) and, until a chunk's vector is there, its
dense score is NaN, and the fusion reads its lexical score in its place.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from lsp_server.documents import utf16_len
from lsp_server.similarity.chunking import Chunk
from lsp_server.similarity.fingerprint import BAGS, SHAPE_WEIGHT, Fingerprint, fingerprint
from lsp_server.similarity.lexical import TfidfField

FUSION_WEIGHTS_FILE = Path(__file__).resolve().parent / "fusion_weights.json"
SIGNALS = (*BAGS, "dense")  # what the fusion weighs
RANKINGS = ("fused", "lexical", *SIGNALS)  # what a search can rank by (``eval clones`` reports each)


@cache
def shipped_fusion_weights() -> dict[str, float]:
    """The fitted weights; a signal without one counts for nothing."""
    data = json.loads(FUSION_WEIGHTS_FILE.read_text())
    return {name: float(data["weights"].get(name, 0.0)) for name in SIGNALS}


@dataclass(frozen=True)
class IndexConfig:
    # a copy per config: the cached dict is shared by every caller
    weights: dict[str, float] = field(default_factory=lambda: dict(shipped_fusion_weights()))
    preview_lines: int = 3


@dataclass(frozen=True)
class Entry:
    """What the index keeps of a chunk: where it is, what it looks like, its features."""

    file: str
    kind: str
    name: str
    start_line: int
    end_line: int
    end_character: int  # UTF-16 length of the last line, for LSP ranges
    preview: str
    fingerprint: Fingerprint


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float  # similarity in [0, 1] for people and thresholds, see ``clone_score``
    lexical: float  # words and shape TF-IDF cosines, mixed
    shape: float  # the shape cosine alone
    dense: float
    fused: float  # the weighted sum the ranking used


def clone_score(lexical: float, shape: float, dense: float) -> float:
    """One number for "how much of a copy is this": a copy keeps the words and the shape
    (high ``lexical``); a renamed copy changes the words but keeps its shape and, by how the
    encoder was trained, its embedding -- so the better of the two readings counts."""
    return max(0.0, min(1.0, max(lexical, (shape + dense) / 2)))


@dataclass
class FileRecord:
    stamp: object  # (mtime_ns, size) for disk files, ("open", version) for open documents
    slots: list[int]


def make_entry(file: str, chunk: Chunk, preview_lines: int = 3, fp: Fingerprint | None = None) -> Entry:
    preview = "\n".join(chunk.text.split("\n", preview_lines)[:preview_lines])
    last_line = chunk.text.rsplit("\n", 1)[-1]
    return Entry(file, chunk.kind, chunk.name, chunk.start_line, chunk.end_line, utf16_len(last_line),
                 preview, fp or fingerprint(chunk.text, chunk.language))


class SimilarityIndex:
    """Thread-safe: one lock around every read and write (searches take milliseconds)."""

    def __init__(self, dim: int = 0, config: IndexConfig | None = None) -> None:
        """``dim``: the length of the dense vectors (0: no dense signal)."""
        self.dim = dim
        self.config = config or IndexConfig()
        self.lock = threading.RLock()
        self.files: dict[str, FileRecord] = {}
        self.entries: list[Entry | None] = []
        self.vectors = np.zeros((0, dim), np.float32)
        self.alive = np.zeros(0, bool)
        self.embedded = np.zeros(0, bool)  # slot's vector is in ``vectors`` (else: pending)
        self.fields = {name: TfidfField() for name in BAGS}

    def __len__(self) -> int:
        return len(self.fields["words"])

    # -- updates -----------------------------------------------------------------------------

    def set_file(self, file: str, stamp: object, entries: list[Entry], vectors: np.ndarray | None = None) -> None:
        """Replace every chunk of ``file``; ``vectors`` are the entries' embeddings if known
        (else they are pending until ``set_vectors``)."""
        with self.lock:
            self._drop(file)
            slots = list(range(len(self.entries), len(self.entries) + len(entries)))
            self.entries.extend(entries)
            for name, tfidf in self.fields.items():
                tfidf.add_many(slots, [entry.fingerprint.bag(name) for entry in entries])
            self._grow(len(self.entries))
            if slots:
                self.alive[slots[0]:slots[-1] + 1] = True
                if vectors is not None and self.dim:
                    self.vectors[slots[0]:slots[-1] + 1] = vectors
                    self.embedded[slots[0]:slots[-1] + 1] = True
            self.files[file] = FileRecord(stamp, slots)
            if len(self.entries) > 2 * len(self) + 2000:
                self.compact()

    def set_vectors(self, file: str, stamp: object, vectors: np.ndarray) -> bool:
        """The embeddings of ``file``'s chunks, computed for the version ``stamp``; False (and
        nothing changes) if the file has changed or gone since."""
        with self.lock:
            record = self.files.get(file)
            if record is None or record.stamp != stamp or len(record.slots) != len(vectors) or not self.dim:
                return False
            if record.slots:
                self.vectors[record.slots] = vectors
                self.embedded[record.slots] = True
            return True

    def embedding_progress(self) -> tuple[int, int]:
        """(chunks embedded, chunks) over the live chunks."""
        with self.lock:
            n = len(self.entries)
            return int((self.embedded[:n] & self.alive[:n]).sum()), len(self)

    def settle(self) -> None:
        """Fold recent additions into the postings now (after a refresh), not in the next search."""
        with self.lock:
            for tfidf in self.fields.values():
                tfidf.settle()

    def remove_file(self, file: str) -> None:
        with self.lock:
            self._drop(file)
            self.files.pop(file, None)

    def _drop(self, file: str) -> None:
        record = self.files.get(file)
        if record is None:
            return
        for slot in record.slots:
            for tfidf in self.fields.values():
                tfidf.remove(slot)
            self.entries[slot] = None
        self.alive[record.slots] = False
        self.embedded[record.slots] = False
        record.slots = []

    def _grow(self, n: int) -> None:
        if n > len(self.alive):
            size = max(n, 2 * len(self.alive))
            grown = np.zeros((size, self.vectors.shape[1]), np.float32)
            grown[:len(self.vectors)] = self.vectors
            self.vectors = grown
            self.alive = np.concatenate([self.alive, np.zeros(size - len(self.alive), bool)])
            self.embedded = np.concatenate([self.embedded, np.zeros(size - len(self.embedded), bool)])

    def compact(self) -> None:
        """Renumber the live chunks densely and rebuild the postings."""
        with self.lock:
            old_files, old_entries, old_vectors = self.files, self.entries, self.vectors
            old_embedded = self.embedded
            self.files, self.entries = {}, []
            self.vectors = np.zeros((0, old_vectors.shape[1]), np.float32)
            self.alive = np.zeros(0, bool)
            self.embedded = np.zeros(0, bool)
            self.fields = {name: TfidfField() for name in BAGS}
            for file, record in old_files.items():
                live = [s for s in record.slots if old_entries[s] is not None]
                self.set_file(file, record.stamp, [old_entries[s] for s in live])
                done = [i for i, s in enumerate(live) if old_embedded[s]]
                new = self.files[file].slots
                self.vectors[[new[i] for i in done]] = old_vectors[[live[i] for i in done]]
                self.embedded[[new[i] for i in done]] = True
            for tfidf in self.fields.values():
                tfidf.rebuild()

    # -- search ------------------------------------------------------------------------------

    def scores(self, fp: Fingerprint, vector: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every signal's similarity of ``fp`` (embedded as ``vector``, if known) to every
        slot, and ``lexical`` (words and shape mixed, what the user-facing score reads).
        Dense scores of chunks whose vectors are still pending are NaN (no score, not a low one)."""
        with self.lock:
            n = len(self.entries)
            out = {name: tfidf.scores(fp.bag(name), n) for name, tfidf in self.fields.items()}
            out["lexical"] = (out["words"] + SHAPE_WEIGHT * out["shape"]) / (1 + SHAPE_WEIGHT)
            if vector is not None and self.dim:
                # einsum, not ``@``: a BLAS matrix-vector product wakes OpenBLAS's thread pool,
                # which spins against CTranslate2's threads and took 3x longer on 2 busy cores.
                out["dense"] = np.where(self.embedded[:n], np.einsum("ij,j->i", self.vectors[:n], vector), np.nan)
            return out

    def search(self, fp: Fingerprint, limit: int = 10, exclude_file: str | None = None,
               exclude_lines: tuple[int, int] | None = None, signals: str = "fused",
               vector: np.ndarray | None = None) -> list[Hit]:
        """The ``limit`` best chunks for ``fp`` (whose embedding is ``vector``, if known) by
        ``signals`` (one of ``RANKINGS``); chunks of ``exclude_file`` overlapping
        ``exclude_lines`` (the query itself, its class, its methods) are skipped."""
        if signals not in RANKINGS:
            raise ValueError(f"signals must be one of {', '.join(RANKINGS)}, not {signals!r}")
        with self.lock:
            scores = self.scores(fp, vector)
            n = len(scores["words"])
            alive = self.alive[:n].copy()
            if exclude_file is not None and exclude_file in self.files:
                for s in self.files[exclude_file].slots:
                    e = self.entries[s]
                    if exclude_lines is None or (e.start_line <= exclude_lines[1] and exclude_lines[0] <= e.end_line):
                        alive[s] = False
            lexical, shape = scores["lexical"], scores["shape"]
            # A chunk still waiting for its vector reads as its lexical score: neither a free
            # pass nor a penalty (a fresh exact copy must still come first).
            dense = np.where(np.isnan(scores["dense"]), lexical, scores["dense"]) if "dense" in scores else None
            if signals == "fused":
                ranking = np.zeros(n, np.float64)
                for name, weight in self.config.weights.items():
                    if weight and name in scores:
                        ranking += weight * (dense if name == "dense" else scores[name])
            elif signals == "dense":
                if dense is None:
                    return []
                alive &= ~np.isnan(scores["dense"])  # ranked by the encoder alone: only chunks it has seen
                ranking = dense.astype(np.float64)
            else:
                ranking = scores[signals].astype(np.float64)
            k = min(limit, int(alive.sum()))
            if k <= 0:
                return []
            masked = np.where(alive, ranking, -np.inf)
            top = np.argpartition(-masked, k - 1)[:k]
            order = top[np.lexsort((top, -masked[top]))]
            out = []
            for s in order:
                lex, shp = float(lexical[s]), float(shape[s])
                d = float(dense[s]) if dense is not None else lex
                out.append(Hit(self.entries[s], round(clone_score(lex, shp, d), 4), lex, shp, d, float(ranking[s])))
            return out
