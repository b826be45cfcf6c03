"""How likely the model finds each of several ways to finish a line.

Candidates for the rest of a line come from many places (existing lines, the model's own
greedy pass); the model can judge them even where it could not have written them.  Each
candidate is scored as a whole line: the context up to the cursor's line start, then the
line (what is typed plus the candidate plus the line break).  Scoring the whole line
sidesteps the token boundary at the cursor, where ``typed + candidate`` tokenizes
differently from ``typed`` and ``candidate`` apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.tokenizer import encode


@dataclass
class LineScore:
    logprob: float  # sum over the line's tokens (nats)
    tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / max(1, self.tokens)


def score_lines(engine, context: str, lines: list[str], max_context_tokens: int = 128) -> list[LineScore]:
    """Log-probability of each full ``line`` (its text plus ``\\n``) after ``context``.

    ``context`` is plain code (no FIM markers) ending at a line start; only its last
    ``max_context_tokens`` tokens are used, which keeps a batch of candidates cheap.
    """
    if not lines:
        return []
    tok = engine.tokenizer
    ctx = encode(tok, context)[-max_context_tokens:] if context else []
    ctx = [engine.special.file_sep] + ctx
    batch, spans = [], []
    for line in lines:
        ids = encode(tok, line + "\n")
        batch.append(ctx + ids)
        spans.append(len(ids))
    return [LineScore(float(sum(lps[-n:])), n) for lps, n in zip(engine.token_log_probs(batch), spans, strict=True)]


def score_middles(engine, prompt_ids: list[int], middles: list[str], max_len: int | None = None) -> list[LineScore]:
    """Log-probability of each ``middle`` as the fill of a fill-in-the-middle prompt that
    ends with its middle marker: the middle's tokens and the end-of-text that closes it.

    The prompt is the one the model completes from (the suffix, the prefix up to the
    cursor's line start, retrieved context), so a candidate is judged on everything the
    model would see; ``middle`` is the whole line, typed text included.  Nothing (``[]``)
    when a sequence would be longer than ``max_len`` tokens (a minified line): the model
    cannot judge what it cannot see whole.
    """
    if not middles:
        return []
    batch, spans = [], []
    for middle in middles:
        ids = [*encode(engine.tokenizer, middle), engine.special.eot]
        if max_len is not None and len(prompt_ids) + len(ids) > max_len:
            return []
        batch.append([*prompt_ids, *ids])
        spans.append(len(ids))
    return [LineScore(float(sum(lps[-n:])), n) for lps, n in zip(engine.token_log_probs(batch), spans, strict=True)]
