"""How likely a model finds the true lines of a line-completion set, filled in the middle.

``ghostline eval lines`` counts exact matches of what the server shows: a fine measure of
what a user gets, but a coarse one for comparing two checkpoints of one model, where a
few dozen answers flip either way.  Here every example's true line (the typed part and
the rest, closed by end-of-text) is scored as the middle of the fill-in-the-middle prompt
the model completes from: the file around the cursor within the server's default prompt
budgets, no retrieved context.  The mean negative log-likelihood per character does not
depend on the tokenizer, and each of the 642 dev positions contributes, right or wrong.

    ghostline eval fim MODEL [--examples line_completion_requests.jsonl] [--repos DIR]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsp_server.settings import ServerSettings
from training.eval_lines import LineExample, load_examples, split_document

# The server's default budgets with no retrieved context (the context's tokens go back to
# the prefix, as ``lsp_server.prompt.build_prompt`` gives them back).
_DEFAULTS = ServerSettings()
PREFIX_TOKENS = _DEFAULTS.max_prefix_tokens + _DEFAULTS.retrieval_tokens
SUFFIX_TOKENS = _DEFAULTS.max_suffix_tokens


@dataclass
class FimReport:
    n: int  # lines scored
    skipped: int  # lines longer than the model's context could hold with their prompt
    nats: float  # summed negative log-likelihood
    chars: int  # characters of the scored lines (their end-of-line counted as one)
    tokens: int

    @property
    def nats_per_char(self) -> float:
        return self.nats / max(1, self.chars)

    def line(self) -> str:
        return (f"{self.n} lines: {self.nats_per_char:.4f} nats/character, "
                f"{self.nats / max(1, self.tokens):.4f} nats/token over {self.tokens:,} tokens"
                + (f" ({self.skipped} too long to score)" if self.skipped else ""))


def line_likelihood(model_dir: Path, examples: list[LineExample], repos: Path,
                    prefix_tokens: int = PREFIX_TOKENS, suffix_tokens: int = SUFFIX_TOKENS) -> FimReport:
    """Score every example's true line with the CTranslate2 model in ``model_dir``."""
    from model.engine import CompletionEngine
    from model.prompt_format import completion_prompt
    from model.scoring import score_middles

    engine = CompletionEngine(model_dir, device="cpu")
    report = FimReport(0, 0, 0.0, 0, 0)
    texts: dict[tuple[str, str], str] = {}
    for ex in examples:
        key = (ex.repo, ex.path)
        if key not in texts:
            texts[key] = (repos / ex.repo / ex.path).read_text(encoding="utf-8")
        prefix, suffix = split_document(texts[key], ex)
        before, _, typed = prefix.rpartition("\n")
        context = before + "\n" if "\n" in prefix else ""
        line = typed + ex.gt
        prompt = completion_prompt(engine.tokenizer, engine.special, ex.path, context, "\n" + suffix,
                                   max_prefix_tokens=prefix_tokens, max_suffix_tokens=suffix_tokens)
        scores = score_middles(engine, prompt.ids, [line], max_len=engine.max_seq_len)
        if not scores:
            report.skipped += 1
            continue
        report.n += 1
        report.nats -= scores[0].logprob
        report.tokens += scores[0].tokens
        report.chars += len(line) + 1
    if not report.n:
        raise ValueError("no line could be scored")
    return report


def evaluate_fim(model_dir: Path, examples_file: Path, repos: Path) -> FimReport:
    return line_likelihood(model_dir, load_examples(examples_file), repos)
