"""TeamServerConfig: every knob of ``ghostline serve --http``, with its default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lsp_server.team.tokens import default_tokens_file


@dataclass(frozen=True)
class TeamServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    model_dir: Path | None = None  # None: $GHOSTLINE_MODEL, else the shipped model
    model_name: str = "ghostline"  # what /v1/models lists and responses name
    tokens_file: Path = field(default_factory=default_tokens_file)
    device: str = "auto"
    cpu_threads: int = 0  # 0: CTranslate2 picks
    # The model finishes the token a prompt ends in (``json.du`` -> ``dump``) instead of
    # starting after it, as the language server does (its ``tokenHealing`` setting).
    token_healing: bool = True
    # Batching: a batch starts when it is full or this long after its first request.
    max_batch_size: int = 32
    batch_window_ms: float = 5.0
    max_queue: int = 256  # requests waiting beyond this get 503: better than timing out
    # Limits per request and per token.
    max_body_bytes: int = 256 * 1024
    max_tokens_limit: int = 256
    rate_limit_per_minute: int = 600  # per token; 0: no limit
    max_stop_strings: int = 4  # as OpenAI
