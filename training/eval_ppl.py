"""Perplexity of an exported model on held-out files, scored by CTranslate2 itself.

Files are laid out exactly like plain training documents (file separator, path header,
text, end-of-text) and cut into windows of the model's context length; the result is
per-token perplexity over every scored token.
"""

from __future__ import annotations

import math
from pathlib import Path

from model.config import ModelConfig
from model.prompt_format import plain_ids
from model.tokenizer import load_tokenizer, special_ids


def perplexity(model_dir: Path, files: list[Path], root: Path, max_files: int = 200) -> tuple[float, int]:
    """(perplexity, tokens scored) of the CTranslate2 model in ``model_dir`` on ``files``."""
    import ctranslate2

    tok = load_tokenizer(model_dir)
    sp = special_ids(tok)
    ctx = ModelConfig.load(model_dir).max_seq_len
    gen = ctranslate2.Generator(str(model_dir), device="cpu")
    nll, count = 0.0, 0
    windows: list[list[str]] = []
    for f in sorted(files)[:max_files]:
        text = f.read_text(encoding="utf-8", errors="replace")
        ids = plain_ids(tok, sp, f.relative_to(root).as_posix(), text)
        for start in range(0, len(ids) - 1, ctx):
            window = ids[start:start + ctx + 1]
            if len(window) > 1:
                windows.append([tok.id_to_token(i) for i in window])
    for i in range(0, len(windows), 16):
        for result in gen.score_batch(windows[i:i + 16]):
            nll -= sum(result.log_probs)
            count += len(result.log_probs)
    if not count:
        raise ValueError("no tokens to score")
    return math.exp(nll / count), count
