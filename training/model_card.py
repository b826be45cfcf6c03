"""Model card: what a model was trained on and how, written from the run's own records.

Everything here is read from the run folder (``data/meta.json``, ``log.jsonl``, the
checkpoint's ``training_info.json``), so the card cannot drift from the model it describes.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from model.config import MODEL_CONFIG_FILE, ModelConfig
from model.export import FLOAT_WEIGHTS_FILE

CARD_FILE = "MODEL_CARD.md"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _log_rows(run: Path) -> list[dict]:
    path = run / "log.jsonl"
    if not path.is_file():
        return []
    by_step: dict[tuple[str, int], dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_step[(row["kind"], row["step"])] = row  # a resumed run re-logs steps: keep the last
    return sorted(by_step.values(), key=lambda r: (r["step"], r["kind"]))


def _tokens_row(info: dict) -> str:
    own, before = info.get("tokens_seen", 0), info.get("tokens_seen_before", 0)
    if not before:
        return f"| tokens seen | {own:,} |"
    return f"| tokens seen | {own + before:,} in all: {own:,} in this run, {before:,} by the model it started from |"


_DTYPE_NAMES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


def _format_row(exported: Path, quantization: str) -> str:
    """The exported folder's size, the float weights (shipped for adaptation and resumed
    training) counted apart from what inference loads."""
    files = [f for f in exported.iterdir() if f.is_file() and f.name != CARD_FILE]
    floats = [f for f in files if f.name == FLOAT_WEIGHTS_FILE]
    inference_mb = sum(f.stat().st_size for f in files if f not in floats) / 1e6
    row = f"| format | CTranslate2, {quantization}, {inference_mb:.1f} MB"
    if floats:
        from safetensors import safe_open

        with safe_open(str(floats[0]), "pt") as weights:
            dtype = weights.get_slice(next(iter(weights.keys()))).get_dtype()
        row += (f"; float weights `{FLOAT_WEIGHTS_FILE}` ({_DTYPE_NAMES.get(dtype, dtype)}, "
                f"{floats[0].stat().st_size / 1e6:.1f} MB, no optimizer state)")
    return row + " |"


def write_model_card(checkpoint: Path, exported: Path, quantization: str, command: str,
                     extra: dict[str, str] | None = None) -> Path:
    run = checkpoint.parent
    meta = _read_json(run / "data" / "meta.json")
    info = _read_json(checkpoint / "training_info.json")
    # The exported folder's: export may set the released model's second-opinion threshold.
    cfg = ModelConfig.load(exported if (exported / MODEL_CONFIG_FILE).is_file() else checkpoint)
    rows = _log_rows(run)
    train_rows = [r for r in rows if r["kind"] == "train"]
    val_rows = [r for r in rows if r["kind"] == "val"]
    speeds = [r["tokens_per_s"] for r in train_rows[len(train_rows) // 10:] if r.get("tokens_per_s")]
    val = info.get("val_loss")
    lines = [
        "# ghostline default model",
        "",
        f"Written {datetime.now(UTC).strftime('%Y-%m-%d')} by `training/model_card.py` from the run's records.",
        "",
        "| | |",
        "|---|---|",
        "| architecture | Llama-style decoder (RoPE, RMSNorm, SwiGLU, tied embeddings) |",
        f"| shape | {cfg.n_layer} layers, d_model {cfg.d_model}, {cfg.n_head} heads, d_ff {cfg.d_ff}, "
        f"context {cfg.max_seq_len} tokens |",
        f"| parameters | {cfg.n_params() / 1e6:.2f} M |",
        f"| tokenizer | byte-level BPE, {cfg.vocab_size} tokens, FIM + file-separator special tokens |",
        _format_row(exported, quantization),
        f"| languages | {', '.join(cfg.languages)} (`languages` in `ghostline_model.json`: "
        "the server asks the model nothing in other languages) |",
        f"| second opinion | from confidence {cfg.second_opinion_sure:g} (`second_opinion_sure`: where line "
        "memory is unsure, the model's own line replaces it when the model is at least this sure) |",
        f"| steps | {info.get('step', '?')} |",
        _tokens_row(info),
        f"| final validation loss | {val:.4f} nats/token (perplexity {math.exp(val):.2f}) |"
        if val else "| final validation loss | ? |",
        f"| training speed | {sum(speeds) / len(speeds):,.0f} tokens/s (mean over the run) |"
        if speeds else "| training speed | ? |",
        f"| command | `{command}` |",
    ]
    for k, v in (extra or {}).items():
        lines.append(f"| {k} | {v} |")
    if meta:
        stats = ", ".join(f"{k} {v}" for k, v in sorted(meta.get("filter_stats", {}).items()))
        lines += [
            "",
            "## Corpus",
            "",
            f"- roots: {', '.join(f'`{r}`' for r in meta.get('roots', []))}",
            f"- files: {meta['files']['train']:,} train, {meta['files']['val']:,} validation "
            f"({meta.get('chars', 0) / 1e6:.1f} M characters; "
            f"{meta['tokens']['train']:,} / {meta['tokens']['val']:,} tokens)",
            f"- filters: {stats}",
            "- always excluded: requests, flask, httpx, sqlalchemy (any folder or module of that name, "
            "vendored copies included) and everything under `../shared/eval` (held-out evaluation code)",
            f"- FIM rate {meta.get('data_config', {}).get('fim_rate')}, SPM layout; pieces of "
            f"~{meta.get('data_config', {}).get('piece_chars')} characters",
        ]
    if val_rows:
        lines += ["", "## Validation loss", "", "| step | loss |", "|---|---|"]
        lines += [f"| {r['step']} | {r['val_loss']:.4f} |" for r in val_rows]
    out = exported / CARD_FILE
    out.write_text("\n".join(lines) + "\n")
    return out
