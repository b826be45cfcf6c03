"""Fit the similarity index's fusion weights on the training problems of the clone sets.

The index ranks chunks by a weighted sum of its signals' cosines (``SimilarityIndex.search``).
This picks the weights that maximise MAP@R -- the metric itself, not a proxy -- averaged over
the named and the anonymised clone files, using only the problems of the ``train-fusion``
half of the ``train`` side (``eval_clones.split_of``, ``train_half_of``): the code encoder
learns from the other half, so on these problems its scores are as honest as on new code.
The held-out problems are scored once at the end, for the record.  Every
signal's full score matrix is computed once through the index, so a candidate weight vector
costs a few numpy operations, and a coordinate search over a grid is enough for five weights.

    python -m training.fit_fusion ../shared/eval/clones/leetcode_dev.jsonl \\
        ../shared/eval/clones/leetcode_dev.anon.jsonl [--out lsp_server/similarity/fusion_weights.json]

It refuses to weigh the dense signal on problems its encoder learnt from (its
``encoder.json`` records the clone split it trained on): there a learnt signal looks better
than it is, and the fit overweights it (weight 2.0 once, and the held-out fusion lost 0.02).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsp_server.cli import OneLineParser
from lsp_server.similarity.encoder import CodeEncoder
from lsp_server.similarity.index import FUSION_WEIGHTS_FILE, SIGNALS
from training.eval_clones import SPLITS, CloneSet, average_precision_at_r

GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)


@dataclass
class ScoredSet:
    """A clone set's per-signal score matrices (query x item, the query itself at -inf)."""

    name: str
    labels: np.ndarray
    scores: dict[str, np.ndarray]
    queries: list[tuple[int, int]]  # (item, R), as ``CloneSet.queries``

    @staticmethod
    def of(path: Path, split: str, encoder: CodeEncoder | None) -> ScoredSet:
        clones = CloneSet.build(path, encoder, split)
        n = len(clones.labels)
        scores = {name: np.zeros((n, n), np.float32) for name in SIGNALS if name != "dense" or encoder}
        for i, entry in enumerate(clones.entries):
            row = clones.index.scores(entry.fingerprint, clones.vector(i))
            for name, matrix in scores.items():
                matrix[i] = row[name][:n]
        for matrix in scores.values():
            np.fill_diagonal(matrix, -np.inf)
        return ScoredSet(f"{path.name} ({split})", np.array(clones.labels), scores, clones.queries())

    def map_at_r(self, weights: dict[str, float]) -> float:
        fused = sum(w * self.scores[name] for name, w in weights.items() if w and name in self.scores)
        aps = []
        for i, r in self.queries:
            top = np.argsort(-fused[i], kind="stable")[:r]
            aps.append(average_precision_at_r(list(self.labels[top]), self.labels[i], r))
        return float(np.mean(aps))


def fit(sets: list[ScoredSet], rounds: int = 3, without: tuple[str, ...] = ()) -> tuple[dict[str, float], float]:
    """Coordinate search: ``words`` fixed at 1 (the scale), every other weight over ``GRID``;
    the signals ``without`` keep weight 0."""
    names = [n for n in SIGNALS if all(n in s.scores for s in sets) and n not in without]
    weights = {name: 1.0 if name == "words" else 0.0 for name in SIGNALS}

    def objective(w: dict[str, float]) -> float:
        return float(np.mean([s.map_at_r(w) for s in sets]))

    best = objective(weights)
    for _ in range(rounds):
        improved = False
        for name in names:
            if name == "words":
                continue
            for value in GRID:
                trial = {**weights, name: value}
                score = objective(trial)
                if score > best + 1e-5:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return weights, best


def encoder_split(encoder: CodeEncoder) -> str:
    """The clone split the encoder's pairs came from (encoders from before the halves: all of train)."""
    meta = json.loads((encoder.path / "encoder.json").read_text())
    return str(meta.get("clone_split") or meta.get("config", {}).get("clone_split") or "train")


def splits_overlap(a: str, b: str) -> bool:
    """Whether two splits of ``eval_clones.SPLITS`` share problems."""
    if a == b or "all" in (a, b):
        return True
    sides = {"train": {"train-encoder", "train-fusion"}, "heldout": {"heldout"},
             "train-encoder": {"train-encoder"}, "train-fusion": {"train-fusion"}}
    return bool(sides[a] & sides[b])


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", type=Path, nargs="+", help="labelled clone sets (JSON lines with label and code)")
    ap.add_argument("--out", type=Path, default=FUSION_WEIGHTS_FILE)
    ap.add_argument("--without", nargs="*", default=[], choices=SIGNALS, help="signals kept at weight 0")
    ap.add_argument("--fit-split", default="train-fusion", choices=[s for s in SPLITS if s != "heldout"],
                    help="problems the weights are fitted on (default: the half the encoder did not learn from)")
    ap.add_argument("--encoder", type=Path, default=None, help="code encoder folder (default: model/encoder)")
    args = ap.parse_args(argv)
    encoder = CodeEncoder.load(args.encoder)
    learnt = encoder_split(encoder)
    if "dense" not in args.without and splits_overlap(learnt, args.fit_split):
        ap.error(f"the encoder learnt from the {learnt!r} problems, which overlap --fit-split {args.fit_split}: "
                 "its dense scores there are too good; fit on another split or pass --without dense")
    train = [ScoredSet.of(f, args.fit_split, encoder) for f in args.files]
    weights, score = fit(train, without=tuple(args.without))
    heldout = [ScoredSet.of(f, "heldout", encoder) for f in args.files]
    report = {
        "weights": weights,
        "fitted_on": [s.name for s in train],
        "left_out": args.without,
        "encoder_learnt_from": learnt,
        "train_map_at_r": {s.name: round(s.map_at_r(weights), 4) for s in train},
        "heldout_map_at_r": {s.name: round(s.map_at_r(weights), 4) for s in heldout},
        "heldout_each_signal": {s.name: {n: round(s.map_at_r({n: 1.0}), 4) for n in s.scores} for s in heldout},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
