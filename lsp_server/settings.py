"""ServerSettings: every knob the server has, typed, defaulted and documented in one place.

Settings arrive as LSP ``initializationOptions`` and later through
``workspace/didChangeConfiguration`` under the ``ghostline`` section, with the same
camelCase names as the VS Code settings (``ghostline.maxTokens`` <-> ``maxTokens``).
Unknown keys and wrong types are reported back as warnings and the default is kept, so a
typo in a settings file never stops completions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import model

DEFAULT_MODEL_DIR = Path(model.__file__).resolve().parent / "default"


def default_model_path() -> str:
    """``GHOSTLINE_MODEL`` if set, else the model shipped with the package."""
    return os.environ.get("GHOSTLINE_MODEL") or str(DEFAULT_MODEL_DIR)


@dataclass(frozen=True)
class ServerSettings:
    enabled: bool = True
    model_path: str = ""  # empty: the shipped default model
    device: str = "auto"  # auto | cpu | cuda
    cpu_threads: int = 0  # 0: CTranslate2 picks
    max_tokens: int = 48
    debounce_ms: int = 25  # wait this long for the next keystroke before generating
    static_prompt_reuse: bool = True
    max_prefix_tokens: int = 320  # also capped by the model's context length
    max_suffix_tokens: int = 96
    multiline: bool = True  # a whole block at an empty block body (after "def ...:", "{")
    max_block_tokens: int = 96
    max_block_lines: int = 12
    retrieval: bool = True  # similar code from other files as prompt context
    line_memory: bool = True  # complete a line from existing lines that start the same way (no model call)
    retrieval_tokens: int = 64  # prompt budget for that context
    similarity: bool = True  # index the workspace for ghostline/findSimilar and duplicate hints
    similarity_hints: bool = True  # Hint diagnostics on functions with a near-duplicate elsewhere
    similarity_threshold: float = 0.8  # similarity (0-1) from which a match counts as a duplicate
    similarity_hints_max_files: int = 5000  # no hints in workspaces with more indexed files than this
    similarity_max_files: int = 20000  # the workspace crawl stops here
    cache_dir: str = ""  # similarity index cache; empty: $XDG_CACHE_HOME/ghostline (~/.cache/ghostline)

    def resolved_model_path(self) -> Path:
        return Path(self.model_path or default_model_path()).expanduser()


_CAMEL = {f.name: "".join(w.capitalize() if i else w for i, w in enumerate(f.name.split("_")))
          for f in fields(ServerSettings)}
_LIMITS = {"max_tokens": (1, 512), "max_block_tokens": (1, 1024), "max_block_lines": (1, 200), "debounce_ms": (0, 2000), "cpu_threads": (0, 256),
           "max_prefix_tokens": (16, 4096), "max_suffix_tokens": (0, 2048), "retrieval_tokens": (0, 2048)}
_LIMITS.update({"similarity_threshold": (0.0, 1.0), "similarity_hints_max_files": (0, 10_000_000),
                "similarity_max_files": (1, 10_000_000)})
_CHOICES = {"device": ("auto", "cpu", "cuda")}


def parse_settings(raw: Any, base: ServerSettings | None = None) -> tuple[ServerSettings, list[str]]:
    """Merge ``raw`` (a camelCase dict) over ``base``; return the settings and warnings."""
    base = base or ServerSettings()
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"ghostline settings must be an object, got {type(raw).__name__}; using defaults"]
    if isinstance(raw.get("ghostline"), dict):  # a whole configuration tree
        raw = raw["ghostline"]
    warnings: list[str] = []
    changes: dict[str, Any] = {}
    by_camel = {v: k for k, v in _CAMEL.items()}
    for key, value in raw.items():
        name = by_camel.get(key, key if key in _CAMEL else None)
        if name is None:
            warnings.append(f"unknown setting ghostline.{key} ignored")
            continue
        default = getattr(ServerSettings(), name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str) or (name == "model_path" and value is None)
            value = value or ""
        if ok and name in _LIMITS:
            lo, hi = _LIMITS[name]
            ok = lo <= value <= hi
        if ok and name in _CHOICES:
            ok = value in _CHOICES[name]
        if not ok:
            warnings.append(f"ghostline.{_CAMEL[name]} = {value!r} is invalid; keeping {getattr(base, name)!r}")
            continue
        changes[name] = value
    return replace(base, **changes), warnings
