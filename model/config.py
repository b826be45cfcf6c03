"""The model's shape: one dataclass, turned into a transformers Llama config.

A Llama-style decoder (RoPE, RMSNorm, SwiGLU, tied embeddings) because CTranslate2's
converter supports it directly, so the exported model runs the same maths as training.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

MODEL_CONFIG_FILE = "ghostline_model.json"


@dataclass
class ModelConfig:
    vocab_size: int = 8192
    n_layer: int = 6
    n_head: int = 8
    n_kv_head: int = 8
    d_model: int = 256
    d_ff: int = 704
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    # What the model was trained on (language names as the server's language_of gives
    # them); the server asks the model nothing in other languages.
    languages: tuple[str, ...] = ("python",)
    # Where line memory is unsure (the server's ``secondOpinionBelow``), the model's own line
    # replaces its answer from this confidence on.  It belongs to the model: a better-trained
    # model's confidence runs higher (``training/fit_ranker.py --second-opinion`` picks 0.5
    # on both folds for the 46 M-token default, 0.6 on every fold for the 110 M-token g12).
    second_opinion_sure: float = 0.5

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head {self.n_head} is not divisible by n_kv_head {self.n_kv_head}")

    def to_hf(self, special: Any | None = None):
        """A ``transformers.LlamaConfig`` (imported here: only training and export need it)."""
        from transformers import LlamaConfig

        extra = {}
        if special is not None:
            extra = {"bos_token_id": special.file_sep, "eos_token_id": special.eot, "pad_token_id": special.eot}
        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.d_model,
            intermediate_size=self.d_ff,
            num_hidden_layers=self.n_layer,
            num_attention_heads=self.n_head,
            num_key_value_heads=self.n_kv_head,
            max_position_embeddings=self.max_seq_len,
            rms_norm_eps=self.norm_eps,
            rope_theta=self.rope_theta,
            tie_word_embeddings=True,
            hidden_act="silu",
            attention_bias=False,
            mlp_bias=False,
            **extra,
        )

    def n_params(self) -> int:
        """Parameter count with tied embeddings (the head shares the embedding matrix)."""
        attn = self.d_model * (2 * self.d_model + 2 * self.d_model * self.n_kv_head // self.n_head)
        mlp = 3 * self.d_model * self.d_ff
        return self.vocab_size * self.d_model + self.n_layer * (attn + mlp + 2 * self.d_model) + self.d_model

    def flops_per_token(self) -> float:
        """Training FLOPs per token (6N plus attention), for MFU-style reporting."""
        return 6 * self.n_params() + 6 * self.n_layer * self.max_seq_len * self.d_model

    def save(self, directory: Path) -> None:
        (Path(directory) / MODEL_CONFIG_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ModelConfig:
        data = json.loads((Path(directory) / MODEL_CONFIG_FILE).read_text())
        known = {f.name for f in fields(cls)}
        if isinstance(data.get("languages"), list):
            data["languages"] = tuple(data["languages"])
        return cls(**{k: v for k, v in data.items() if k in known})
