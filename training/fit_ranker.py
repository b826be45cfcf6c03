"""Fit the candidate scorer (``lsp_server/candidates.py``) on a line-completion dev set.

For every example the candidates are gathered exactly as the server gathers them: the
document with the rest of the line removed, and the other files of a copy of the
repository in which every evaluated line is cut (the disk never holds the answers).  The
server asks the model only where line memory has nothing, so by default the model's
completion is not a candidate; ``--model-dump`` (a ``ghostline eval lines --no-line-memory
--dump`` file) adds it, to see what ranking the two together would give.
A candidate is labelled right when it is an exact match (CodeXGLUE's whitespace-split
rule); a logistic regression over the candidates' features is fitted with numpy, and
top-1 exact match is reported with two-fold cross-validation by file, so that the figure
is not the training fit.

    python -m training.fit_ranker ../shared/eval/line_completion_requests.jsonl \\
        --repos ../shared/eval/repos --no-scoring [--model-dump dump_model.jsonl] [--out lsp_server/ranker_weights.json]

``--second-opinion`` chooses instead when the model's own line replaces line memory's
unsure one (the server's ``secondOpinionBelow`` and the model's ``second_opinion_sure``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsp_server.candidates import Candidate, RankerWeights
from lsp_server.languages import family_of, language_of
from lsp_server.line_memory import FileLines, LineMemory, LineMemoryConfig
from training.eval_lines import LineExample, exact_match, load_examples, masked_copy, split_document


@dataclass
class Case:
    example: LineExample
    typed: str
    candidates: list[Candidate]
    labels: list[bool]


def gather_cases(examples: list[LineExample], repos: Path, model_preds: dict[str, str],
                 config: LineMemoryConfig | None = None, engine=None, score_top: int = 8,
                 fim_scoring: tuple[int, int] | None = None) -> list[Case]:
    """The candidates of every example; with ``engine``, the first ``score_top`` of them
    (in the unscored order) get the model's line scores, as the server does."""
    from lsp_server.candidates import attach_line_scores, default_weights, rank
    from model.scoring import score_lines

    memory = LineMemory(config, weights=RankerWeights({}))
    prior = default_weights()
    cases: list[Case] = []
    by_repo: dict[str, list[LineExample]] = defaultdict(list)
    for ex in examples:
        by_repo[ex.repo].append(ex)
    for name, exs in by_repo.items():
        with tempfile.TemporaryDirectory(prefix="ghostline-fit-") as tmp:
            work = Path(tmp) / name
            masked_copy(repos / name, exs, work)
            files = {p.relative_to(work).as_posix(): FileLines(p.read_text(encoding="utf-8", errors="replace"))
                     for p in sorted(work.rglob("*")) if language_of(p) is not None and p.is_file()}
            for ex in exs:
                text = (repos / name / ex.path).read_text(encoding="utf-8")
                prefix, suffix = split_document(text, ex)
                typed = prefix.rsplit("\n", 1)[-1].lstrip()
                # The server's sources: the other files of the same language family.
                family = family_of(ex.path)
                others = [f for rel, f in files.items() if rel != ex.path and family_of(rel) == family]
                extra = []
                pred = model_preds.get(ex.id)
                if pred and pred.strip():
                    extra.append(Candidate(text=pred, kind="model"))
                found = memory.candidates(prefix, "\n" + suffix, others, extra=extra)
                if engine is not None and found:
                    found = rank(found, typed, prior)
                    head = found[:score_top]
                    line_start, line = prefix.rsplit("\n", 1) if "\n" in prefix else ("", prefix)
                    context = line_start + "\n" if "\n" in prefix else ""
                    if fim_scoring:
                        from model.prompt_format import completion_prompt
                        from model.scoring import score_middles

                        prompt = completion_prompt(engine.tokenizer, engine.special, ex.path, context, "\n" + suffix,
                                                   max_prefix_tokens=fim_scoring[0], max_suffix_tokens=fim_scoring[1])
                        scores = score_middles(engine, prompt.ids, [line + c.text for c in head])
                        found = head  # the server ranks only what the model scored
                    else:
                        scores = score_lines(engine, context, [line + c.text for c in head])
                    attach_line_scores(head, scores)
                cases.append(Case(ex, typed, found, [exact_match(c.text, ex.gt) for c in found]))
    return cases


def file_fold(path: str) -> int:
    """Which of the two cross-validation folds a file's examples fall in (they share their
    candidates, so a file is never split)."""
    return zlib.crc32(path.encode()) % 2


def read_dump(path: Path) -> dict[str, dict]:
    """An ``eval lines --dump`` file: its rows by example id."""
    rows = (json.loads(raw) for raw in path.read_text().splitlines() if raw.strip())
    return {row["id"]: row for row in rows}


def _matrix(cases: list[Case], names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, labels, group = [], [], []
    for i, case in enumerate(cases):
        for c, y in zip(case.candidates, case.labels, strict=True):
            f = c.features(case.typed)
            rows.append([f[n] for n in names])
            labels.append(float(y))
            group.append(i)
    return np.asarray(rows, dtype=np.float64), np.asarray(labels), np.asarray(group)


# More often, nearer, closer to the surroundings or to the model is never worse: these
# weights have a floor, so that one repository's quirks cannot teach the opposite.  The
# positive floors keep "the nearest repetition, else the most frequent" as the order
# among candidates that the fitted features cannot tell apart.
FLOORS = {"log_doc": 0.5, "log_ws": 0.5, "near": 0.5, "overlap": 0.0, "model_agrees": 0.0,
          "model_prefix": 0.0, "lp_gap": 0.0, "lp_best": 0.0, "prev_sim": 0.0, "prev_equal": 0.0,
          "next_equal": 0.0, "next_sim": 0.0, "in_order": 0.0}


def fit_listwise(x: np.ndarray, y: np.ndarray, group: np.ndarray, floors: np.ndarray | None = None,
                 l2: float = 1e-3, steps: int = 2000, lr: float = 0.5) -> np.ndarray:
    """Softmax over each example's candidates, maximising the probability of the right
    ones (examples without a right candidate teach nothing about the order)."""
    keep = np.isin(group, np.unique(group[y > 0]))
    x, y, group = x[keep], y[keep], group[keep]
    _, group = np.unique(group, return_inverse=True)
    n_groups = group.max() + 1
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        z = xs @ w
        z = z - np.maximum.reduceat(z, np.r_[0, np.flatnonzero(np.diff(group)) + 1])[group]
        e = np.exp(z)
        p = e / np.bincount(group, e, n_groups)[group]
        target = y / np.bincount(group, y, n_groups)[group]
        grad = xs.T @ (p - target) / n_groups + l2 * w
        w -= lr * grad
        if floors is not None:
            w = np.maximum(w, floors * scale)
    return w / scale


def fit_confidence(scores: list[tuple[float, float, bool]]) -> tuple[float, float, float]:
    """Logistic calibration of P(the shown candidate is right) from its score and its
    margin over the runner-up: returns (a, b, c) of ``a*score + b*margin + c``."""
    x = np.asarray([[s, m, 1.0] for s, m, _ in scores])
    y = np.asarray([float(r) for _, _, r in scores])
    w = np.zeros(3)
    scale = np.maximum(x.std(axis=0), 1e-9)
    scale[2] = 1.0
    xs = x / scale
    for _ in range(3000):
        p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w, -30, 30)))
        w -= 0.5 * (xs.T @ (p - y) / len(y))
    w = w / scale
    return float(w[0]), float(w[1]), float(w[2])


def top1(cases: list[Case], weights: RankerWeights) -> tuple[float, list[tuple[float, bool]]]:
    """Exact match of the best candidate over all cases, and (confidence, right) pairs of
    the shown suggestions for the precision/coverage curve."""
    from lsp_server.candidates import rank

    hits, shown = 0, []
    for case in cases:
        if not case.candidates:
            continue
        best = rank(list(case.candidates), case.typed, weights)[0]
        right = exact_match(best.text, case.example.gt)
        hits += right
        shown.append((best.confidence, right))
    return 100.0 * hits / len(cases), shown


def feature_names(cases: list[Case]) -> list[str]:
    for case in cases:
        if case.candidates:
            return list(case.candidates[0].features(case.typed))
    raise ValueError("no candidates at all")


def fit(cases: list[Case], drop: tuple[str, ...] = ()) -> RankerWeights:
    names = [n for n in feature_names(cases) if n not in drop]
    x, y, group = _matrix(cases, names)
    w = fit_listwise(x, y, group, floors=np.asarray([FLOORS.get(n, -np.inf) for n in names]))
    weights = RankerWeights({n: round(float(v), 4) for n, v in zip(names, w, strict=True)})
    calibrate(cases, weights)
    return weights


def calibrate(cases: list[Case], weights: RankerWeights) -> None:
    """Fit ``weights.calibration`` on how often each case's best candidate under ``weights``
    is right, from its score and its margin over the runner-up."""
    margins = []
    for case in cases:
        if case.candidates:
            for c in case.candidates:
                c.score = weights.score(c, case.typed)
            ordered = sorted(case.candidates, key=lambda c: -c.score)
            runner = ordered[1].score if len(ordered) > 1 else ordered[0].score - 5.0
            margins.append((ordered[0].score, ordered[0].score - runner, exact_match(ordered[0].text, case.example.gt)))
    weights.calibration = tuple(round(v, 4) for v in fit_confidence(margins))


# The model's judgement on top of the cheap ranking: a bonus for the line it finds likeliest
# and a weight on its mean token log-probability.  Two numbers chosen on the dev set rather
# than every weight refitted: on the few candidates it scores, a listwise refit of all the
# weights did worse than the cheap ranking it started from (cross-validated 21.8 vs 23.5).
SCORE_GRID = [(best, mean) for best in (0.0, 0.5, 1.0, 1.5, 2.0) for mean in (0.0, 0.5, 1.0)]


def fit_scored(cases: list[Case], prior: RankerWeights) -> RankerWeights:
    """``prior`` with the grid's best ``lp_best`` and ``lp_mean`` weights (first wins a
    tie, so the smallest that helps), and a confidence calibration fitted for them."""
    def with_scores(best: float, mean: float) -> RankerWeights:
        return RankerWeights({**prior.weights, "lp_best": best, "lp_mean": mean}, prior.calibration)

    weights = with_scores(*max(SCORE_GRID, key=lambda p: top1(cases, with_scores(*p))[0]))
    calibrate(cases, weights)
    return weights


def cross_validated_scored(cases: list[Case], prior: RankerWeights) -> float:
    """``fit_scored``'s top-1 EM with two folds split by file."""
    folds = [[c for c in cases if file_fold(c.example.path) == k] for k in (0, 1)]
    hits = sum(top1(folds[k], fit_scored(folds[1 - k], prior))[0] * len(folds[k]) / 100 for k in (0, 1))
    return 100.0 * hits / len(cases)


def cross_validated(cases: list[Case], drop: tuple[str, ...] = ()) -> float:
    """Top-1 EM with two folds split by file (a file's examples share their candidates)."""
    folds = [[c for c in cases if file_fold(c.example.path) == k] for k in (0, 1)]
    hits = 0.0
    for k in (0, 1):
        weights = fit(folds[1 - k], drop)
        em, _ = top1(folds[k], weights)
        hits += em * len(folds[k]) / 100
    return 100.0 * hits / len(cases)


def _print_curve(shown: list[tuple[float, bool]], n: int) -> None:
    print("precision/coverage (min confidence: shown %, precision among shown, EM over all):")
    for t in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6):
        kept = [r for conf, r in shown if conf >= t]
        if kept:
            print(f"  {t:.2f}: shown {100 * len(kept) / n:.1f}%  precision {100 * sum(kept) / len(kept):.1f}"
                  f"  EM {100 * sum(kept) / n:.1f}")


# Where line memory's best is below ``unsure`` and the model is at least ``sure``, the model's
# line is shown instead (``secondOpinionBelow`` and the model's ``second_opinion_sure`` in the server).
SECOND_OPINION_GRID = [(unsure, sure) for unsure in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
                       for sure in (0.3, 0.4, 0.5, 0.6, 0.7)]


def second_opinion_gain(pairs: list[tuple[dict, dict]], unsure: float, sure: float) -> tuple[int, float]:
    """Exact matches and edit similarity won (lost, if negative) by showing the model's line
    where the rule says so; ``pairs``: each example's rows of the two dumps."""
    em, es = 0, 0.0
    for memory, model in pairs:
        if memory["source"] == "line memory" and memory["confidence"] < unsure \
                and model["pred"] and (model["confidence"] or 0.0) >= sure:
            em += int(model["em"]) - int(memory["em"])
            es += model["es"] - memory["es"]
    return em, es


def fit_second_opinion(memory_dump: Path, model_dump: Path, paths: dict[str, str]) -> None:
    """Choose the second-opinion thresholds from two ``eval lines --dump`` files of the same
    examples: the server with ``secondOpinionBelow=0`` and the model alone
    (``--no-line-memory``); two-fold cross-validation by file says whether the choice holds."""
    memory, model = read_dump(memory_dump), read_dump(model_dump)
    pairs = [(memory[k], model[k]) for k in memory if k in model]

    def best(subset: list[tuple[dict, dict]]) -> tuple[float, float]:
        return max(SECOND_OPINION_GRID, key=lambda p: second_opinion_gain(subset, *p))

    n = len(pairs)
    unsure, sure = best(pairs)
    em, es = second_opinion_gain(pairs, unsure, sure)
    print(f"{n} examples; best: line memory below {unsure}, the model from {sure}: "
          f"EM +{100 * em / n:.2f}, ES +{es / n:.2f}")
    held_em, held_es = 0, 0.0
    for k in (0, 1):
        fold = [p for p in pairs if file_fold(paths[p[0]["id"]]) == k]
        other = [p for p in pairs if file_fold(paths[p[0]["id"]]) != k]
        chosen = best(other)
        fem, fes = second_opinion_gain(fold, *chosen)
        held_em, held_es = held_em + fem, held_es + fes
        print(f"  fold {k}: chosen on the other fold {chosen}, gain here EM +{fem}, ES +{fes:.0f}")
    print(f"cross-validated: EM +{100 * held_em / n:.2f}, ES +{held_es / n:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.fit_ranker", description=__doc__.split("\n")[0])
    parser.add_argument("examples", type=Path)
    parser.add_argument("--repos", type=Path, required=True)
    parser.add_argument("--model-dump", type=Path,
                        help="eval lines --no-line-memory --dump output: the model's completion as a candidate too")
    parser.add_argument("--out", type=Path, help="write the fitted weights here")
    parser.add_argument("--model", type=Path, help="score candidates with this CTranslate2 model (default: shipped)")
    parser.add_argument("--no-scoring", action="store_true", help="features without the model's line scores")
    parser.add_argument("--fim-scoring", type=int, nargs=2, metavar=("PREFIX", "SUFFIX"),
                        help="score each candidate as the middle of the completion prompt (these token budgets) "
                             "instead of as a line after the code above it")
    parser.add_argument("--score-top", type=int, default=8, help="score the first N candidates (unscored order)")
    parser.add_argument("--second-opinion", type=Path, nargs=2, metavar=("SERVER_DUMP", "MODEL_DUMP"),
                        help="choose when the model's line replaces line memory's, from two eval lines --dump "
                             "files: --setting secondOpinionBelow=0, and --no-line-memory")
    args = parser.parse_args(argv)
    examples = load_examples(args.examples)
    if args.second_opinion:
        fit_second_opinion(*args.second_opinion, paths={ex.id: ex.path for ex in examples})
        return
    preds = {k: row["pred"] for k, row in read_dump(args.model_dump).items()} if args.model_dump else {}
    engine = None
    if not args.no_scoring:
        from lsp_server.settings import DEFAULT_MODEL_DIR
        from model.engine import CompletionEngine

        engine = CompletionEngine(args.model or DEFAULT_MODEL_DIR, device="cpu")
    cases = gather_cases(examples, args.repos, preds, engine=engine, score_top=args.score_top,
                         fim_scoring=tuple(args.fim_scoring) if args.fim_scoring else None)
    covered = sum(any(c.labels) for c in cases)
    print(f"{len(cases)} examples; a right candidate exists for {covered} "
          f"(oracle EM {100 * covered / len(cases):.1f})")
    if args.fim_scoring:
        from lsp_server.candidates import default_weights

        prior = default_weights()
        weights = fit_scored(cases, prior)
        em, shown = top1(cases, weights)
        cv = cross_validated_scored(cases, prior)
        cheap = top1(cases, prior)[0]
        print(f"the cheap ranking alone: top-1 EM {cheap:.1f}")
        print(f"with the model's scores (lp_best {weights.weights['lp_best']}, lp_mean {weights.weights['lp_mean']}): "
              f"top-1 EM {em:.1f}, cross-validated {cv:.1f}")
        _print_curve(shown, len(cases))
        if args.out:
            budgets = " ".join(map(str, args.fim_scoring))
            weights.save(args.out, note=f"fitted by training/fit_ranker.py --fim-scoring {budgets}"
                                        f" --score-top {args.score_top} on {args.examples.name}: top-1 EM {em:.1f} "
                                        f"(cheap ranking {cheap:.1f}; cross-validated {cv:.1f})")
            print(f"weights -> {args.out}")
        return
    print(f"cross-validated top-1 EM, all features: {cross_validated(cases):.1f}")
    ablations = {"no model candidate": ("kind_model", "model_agrees"), "no counts": ("log_doc", "log_ws"),
                 "no line scores": ("scored", "lp_mean", "lp_gap", "lp_best"),
                 "no distance": ("near", "before"), "no kind": ("kind_continue", "kind_tail", "kind_follow"),
                 "no line above": ("prev_sim", "prev_equal"),
                 "no line below, no sorted lists": ("next_equal", "next_sim", "in_order", "repeats_neighbour")}
    for label, drop in ablations.items():
        print(f"  {label}: {cross_validated(cases, drop):.1f}")
    weights = fit(cases)
    em, shown = top1(cases, weights)
    print(f"fitted on all: top-1 EM {em:.1f}")
    _print_curve(shown, len(cases))
    if args.out:
        weights.save(args.out, note=f"fitted by training/fit_ranker.py on {args.examples.name}: "
                                    f"top-1 EM {em:.1f} (cross-validated {cross_validated(cases):.1f})")
        print(f"weights -> {args.out}")


if __name__ == "__main__":
    main()
