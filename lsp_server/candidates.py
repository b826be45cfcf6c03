"""Candidates for the rest of the cursor's line, and the choice among them.

Line memory (``line_memory.py``) knows *where* a line could be copied from; this module
keeps every such candidate instead of the first, describes each with cheap features (how
it was found, how often, how near the cursor) and picks one with a linear scorer whose
weights were fitted on the dev set (``training/fit_ranker.py``).  The score also gives
the suggestion its confidence: a logistic estimate that it is exactly right, which the
server compares with ``minConfidence`` before showing anything.

Kinds of candidate:

* ``continue``: a line of the document or workspace starts with what the cursor's line
  holds and goes on;
* ``tail``: no line starts that way, but a line contains the last few tokens typed and
  goes on after them (``foo = self.session.`` -> another line's ``self.session.get(url)``);
* ``follow``: the cursor's line is empty; lines that came right after the same previous
  line or right before the same next line elsewhere, or items of a sorted list that sort
  between the cursor's neighbours;
* ``common``: the cursor's line is empty; the lines written most often in the document
  and the workspace (``try:``, ``else:``, ``return None``), whatever surrounds them: an
  empty line is often one of them where no neighbour matches;
* ``model``: the model's own greedy completion.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

# Where a token of code starts: a run of word characters, or any other visible character.
TOKEN_START = re.compile(r"\w+|[^\w\s]")

KINDS = ("continue", "tail", "follow", "common", "model")


@dataclass
class Candidate:
    text: str  # the rest of the cursor's line
    kind: str  # one of KINDS
    doc_count: int = 0  # occurrences in the document
    ws_count: int = 0  # occurrences in other files
    distance: int = 0  # lines from the cursor to the nearest occurrence in the document (0: none)
    before: bool = False  # the nearest document occurrence is above the cursor
    tail_chars: int = 0  # for ``tail``: how much of the typed text matched
    model_agrees: bool = False  # the model's greedy completion is the same text
    model_prefix: float = 0.0  # share of the text that starts like the model's completion
    overlap: float = 0.0  # share of the text's identifiers seen near the cursor
    # The line above an occurrence against the line above the cursor: ``def `` under
    # ``@property`` goes on like other ``def`` lines under ``@property``.
    prev_sim: float = 0.0  # best token overlap (Jaccard, squared: one shared word counts little) over the occurrences
    prev_equal: bool = False  # some occurrence has the very same line above it
    above: set[str] = field(default_factory=set, repr=False)  # the lines above occurrences (a few)
    below: set[str] = field(default_factory=set, repr=False)  # the lines below occurrences (a few)
    next_equal: bool = False  # some occurrence has the cursor's next line right below it
    next_sim: float = 0.0  # as ``prev_sim``, the lines below occurrences against the cursor's next line
    # Where the cursor's neighbours are items of a sorted list (imports, the names of an
    # import list): the whole line is such an item and sorts between them ...
    in_order: bool = False
    # ... or is one of the neighbours again (a list names a thing once).
    repeats_neighbour: bool = False
    scored: bool = False  # the model scored this line (``model/scoring.py``)
    logprob_mean: float = 0.0  # mean log-probability per token of the whole line
    logprob_gap: float = 0.0  # line log-probability minus the best scored candidate's (<= 0)
    score: float = 0.0
    confidence: float = 0.0

    def features(self, typed: str) -> dict[str, float]:
        """What the scorer sees; names match ``RankerWeights.weights`` keys."""
        f = {f"kind_{k}": float(self.kind == k) for k in KINDS}
        f.update({
            "log_doc": math.log1p(self.doc_count),
            "log_ws": math.log1p(self.ws_count),
            "near": 1.0 / self.distance if self.distance else 0.0,
            "before": float(self.before),
            "log_len": math.log1p(len(self.text)),
            "log_typed": math.log1p(len(typed)),
            "tail_frac": self.tail_chars / max(1, len(typed)),
            "model_agrees": float(self.model_agrees),
            "model_prefix": self.model_prefix,
            "overlap": self.overlap,
            "prev_sim": self.prev_sim,
            "prev_equal": float(self.prev_equal),
            "next_equal": float(self.next_equal),
            "next_sim": self.next_sim,
            "in_order": float(self.in_order),
            "repeats_neighbour": float(self.repeats_neighbour),
            "scored": float(self.scored),
            "lp_mean": self.logprob_mean,
            "lp_gap": self.logprob_gap,
            "lp_best": float(self.scored and self.logprob_gap == 0.0),
            "bias": 1.0,
        })
        return f


@dataclass
class RankerWeights:
    """A linear scorer over ``Candidate.features`` (fitted listwise: only the order among
    one position's candidates means something), and a calibration that turns the best
    candidate's score and its margin over the runner-up into the probability that it is
    exactly right: ``logistic(a * score + b * margin + c)``."""

    weights: dict[str, float] = field(default_factory=dict)
    calibration: tuple[float, float, float] = (0.0, 1.0, -1.0)

    def score(self, candidate: Candidate, typed: str) -> float:
        return sum(self.weights.get(k, 0.0) * v for k, v in candidate.features(typed).items())

    def confidence(self, score: float, margin: float) -> float:
        a, b, c = self.calibration
        z = max(-30.0, min(30.0, a * score + b * margin + c))
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, path: Path) -> RankerWeights:
        data = json.loads(Path(path).read_text())
        return cls(weights={k: float(v) for k, v in data["weights"].items()},
                   calibration=tuple(float(v) for v in data["calibration"]))

    def save(self, path: Path, note: str = "") -> None:
        Path(path).write_text(json.dumps({"note": note, "weights": self.weights,
                                          "calibration": list(self.calibration)}, indent=2) + "\n")


DEFAULT_WEIGHTS_FILE = Path(__file__).resolve().parent / "ranker_weights.json"
# Fitted with the model's scores of the first candidates (``fit_ranker.py --fim-scoring``).
SCORED_WEIGHTS_FILE = Path(__file__).resolve().parent / "ranker_weights_scored.json"


def default_weights() -> RankerWeights:
    """The fitted weights shipped with the server."""
    return RankerWeights.load(DEFAULT_WEIGHTS_FILE)


def scored_weights() -> RankerWeights:
    """The fitted weights for candidates the model has scored."""
    return RankerWeights.load(SCORED_WEIGHTS_FILE)


def attach_line_scores(candidates: list[Candidate], scores: list) -> None:
    """Record the model's line scores (``model.scoring.LineScore``, same order)."""
    if not scores:
        return
    best = max(s.logprob for s in scores)
    for c, s in zip(candidates, scores, strict=True):
        c.scored, c.logprob_mean, c.logprob_gap = True, s.mean, s.logprob - best


_IDENT = re.compile(r"[A-Za-z_]\w*")


def identifiers(text: str) -> set[str]:
    return set(_IDENT.findall(text))


def line_tokens(line: str) -> set[str]:
    return set(TOKEN_START.findall(line))


def describe_context(candidates: list[Candidate], nearby: set[str], model_text: str | None,
                     previous: str = "", following: str = "", typed: str = "") -> None:
    """Features that compare each candidate with the cursor's surroundings: identifiers
    seen near the cursor, the lines above and below the cursor against those around the
    candidate's occurrences, its place in a sorted list, and how far it agrees with the
    model's own completion.  ``previous``/``following``: the non-blank lines around the
    cursor's, stripped; ``typed``: the cursor's line so far, stripped."""
    model_text = (model_text or "").rstrip()
    previous_tokens, following_tokens = line_tokens(previous), line_tokens(following)
    tokens_of: dict[str, set[str]] = {}  # candidates share the lines around them

    def similarity(lines: set[str], tokens: set[str]) -> float:
        """The best token overlap (Jaccard, squared: one shared word counts little)."""
        best = 0.0
        for line in lines:
            other = tokens_of.get(line)
            if other is None:
                other = tokens_of[line] = line_tokens(line)
            union = len(other | tokens)
            best = max(best, (len(other & tokens) / union) ** 2 if union else 0.0)
        return best

    neighbours = [line for line in (previous, following) if list_item_kind(line)]
    for c in candidates:
        c.prev_equal = previous in c.above
        c.prev_sim = similarity(c.above, previous_tokens)
        c.next_equal = bool(following) and following in c.below
        c.next_sim = similarity(c.below, following_tokens)
        if neighbours:
            line = (typed + c.text).strip()
            c.repeats_neighbour = line in neighbours
            c.in_order = in_sorted_place(line, previous, following)
        names = identifiers(c.text)
        c.overlap = len(names & nearby) / len(names) if names else 1.0
        if model_text and c.kind != "model":
            n = 0
            for a, b in zip(c.text, model_text, strict=False):
                if a != b:
                    break
                n += 1
            c.model_prefix = n / max(1, len(c.text))
            c.model_agrees = c.model_agrees or c.text.rstrip() == model_text


_LIST_ITEMS = (("import", re.compile(r"import [\w.]+")), ("from", re.compile(r"from [\w.]+ import .+")),
               ("name", re.compile(r"[\w.]+(?: as \w+)?,")))


def list_item_kind(line: str) -> str | None:
    """What kind of sorted-list item ``line`` (stripped) is, if any: ``import x``, ``from x
    import y`` or a bare name and a comma (an import list's; quoted names, as in
    ``__all__``, are not taken)."""
    for kind, pattern in _LIST_ITEMS:
        if pattern.fullmatch(line):
            return kind
    return None


def in_sorted_place(line: str, previous: str, following: str) -> bool:
    """``line`` is a list item of the same kind as at least one neighbour and sorts after
    every such neighbour above and before every such one below (case aside, as import
    sorters order them)."""
    kind = list_item_kind(line)
    if kind is None:
        return False
    low = previous if list_item_kind(previous) == kind else None
    high = following if list_item_kind(following) == kind else None
    if low is None and high is None:
        return False
    key = line.casefold()
    return (low is None or low.casefold() < key) and (high is None or key < high.casefold())


def rank(candidates: list[Candidate], typed: str, weights: RankerWeights) -> list[Candidate]:
    """Score, sort best first and attach confidences (each against the next best)."""
    for c in candidates:
        c.score = weights.score(c, typed)
    ordered = sorted(candidates, key=lambda c: -c.score)
    for i, c in enumerate(ordered):
        runner = ordered[i + 1].score if i + 1 < len(ordered) else c.score - 5.0
        c.confidence = weights.confidence(c.score, c.score - runner)
    return ordered


def token_tails(typed: str, min_chars: int = 4, max_tokens: int = 6) -> list[str]:
    """Suffixes of ``typed`` starting at its last ``max_tokens`` token boundaries, longest
    first, excluding ``typed`` itself (a whole-line match is a ``continue`` candidate).
    Only the last few tokens: each tail is a scan of the workspace, and what was typed long
    before the cursor says little about how this line ends."""
    starts = [m.start() for m in TOKEN_START.finditer(typed)][1:][-max_tokens:]
    return [typed[s:] for s in starts if len(typed) - s >= min_chars]
