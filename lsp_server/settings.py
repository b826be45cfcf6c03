"""ServerSettings: every knob the server has, typed, defaulted and documented in one place.

Settings arrive as LSP ``initializationOptions`` and later through
``workspace/didChangeConfiguration`` under the ``ghostline`` section, with the same
camelCase names as the VS Code settings (``ghostline.maxTokens`` <-> ``maxTokens``).
Each field carries its own limits (``setting(48, minimum=1, maximum=512)``, ``choices=``).
Unknown keys, wrong types and values out of range are reported back as warnings and the
current value is kept, so a typo in a settings file never stops completions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import model

DEFAULT_MODEL_DIR = Path(model.__file__).resolve().parent / "default"


def default_model_path() -> str:
    """``$GHOSTLINE_MODEL`` if set, else the model shipped with the package.

    The user's fallback (README); ghostline's own commands pass ``--model`` or ``modelPath``."""
    return os.environ.get("GHOSTLINE_MODEL") or str(DEFAULT_MODEL_DIR)


def setting(default, *, minimum: float | None = None, maximum: float | None = None,
            choices: tuple[str, ...] | None = None, secret: bool = False):
    """A client setting: its default and the values it accepts, side by side.

    The bounds are inclusive; a value outside them (or not among ``choices``) is refused
    with a warning, never clamped.  ``tests/test_settings.py`` checks that the VS Code
    extension's ``package.json`` declares the same names, defaults and limits.  A
    ``secret`` (a token) never appears in a warning, a log line or the settings' repr.
    """
    limits = {"minimum": minimum, "maximum": maximum, "choices": choices, "secret": secret or None}
    meta = {"setting": True, **{k: v for k, v in limits.items() if v is not None}}
    return field(default=default, repr=not secret, metadata=meta)


@dataclass(frozen=True)
class ServerSettings:
    enabled: bool = setting(True)
    model_path: str = setting("")  # empty: launch_model_path, else $GHOSTLINE_MODEL, else the shipped model
    device: str = setting("auto", choices=("auto", "cpu", "cuda"))
    cpu_threads: int = setting(0, minimum=0, maximum=256)  # 0: every core but one, at most 4 (models.py)
    max_tokens: int = setting(48, minimum=1, maximum=512)
    debounce_ms: int = setting(25, minimum=0, maximum=2000)  # wait this long for the next keystroke before generating
    static_prompt_reuse: bool = setting(True)
    token_healing: bool = setting(True)  # finish the token the cursor splits instead of starting after it
    beam_size: int = setting(2, minimum=1, maximum=16)  # single lines: the best of this many beams (1: greedy)
    max_prefix_tokens: int = setting(240, minimum=16, maximum=4096)  # also capped by the model's context length
    max_suffix_tokens: int = setting(96, minimum=0, maximum=2048)
    multiline: bool = setting(True)  # a whole block at an empty block body (after "def ...:", "{")
    max_block_tokens: int = setting(96, minimum=1, maximum=1024)
    max_block_lines: int = setting(12, minimum=1, maximum=200)
    retrieval: bool = setting(True)  # similar code from other files as prompt context
    line_memory: bool = setting(True)  # complete a line from existing lines that start the same way (no model call)
    # line memory's first N candidates are scored by the model as the fill of the cursor's
    # line (one batch, prompt budgets as above) and ranked again on those scores; 0: ranked
    # on cheap features alone (no model call when line memory answers)
    score_candidates: int = setting(3, minimum=0, maximum=8)
    # suggestions less sure than this are not shown (line memory: estimated chance of an exact
    # match, and the model is asked instead; the model: geometric-mean token probability);
    # 0 shows everything; 0.1 is the dev set's best point (docs/benchmarks.md)
    min_confidence: float = setting(0.1, minimum=0.0, maximum=1.0)
    # where line memory's model-judged best is less sure than this, the model writes the line
    # too, and its line is shown instead when the model is sure of it (the model's ``second_opinion_sure``,
    # in its ghostline_model.json); 0: line memory's answer stands (the dev set's best point: fit_ranker
    # --second-opinion)
    second_opinion_below: float = setting(0.2, minimum=0.0, maximum=1.0)
    retrieval_tokens: int = setting(64, minimum=0, maximum=2048)  # prompt budget for that context
    similarity: bool = setting(True)  # index the workspace for ghostline/findSimilar and duplicate hints
    similarity_hints: bool = setting(True)  # Hint diagnostics on functions with a near-duplicate elsewhere
    # similarity (0-1) from which a match counts as a duplicate
    similarity_threshold: float = setting(0.8, minimum=0.0, maximum=1.0)
    # no hints in workspaces with more indexed files than this
    similarity_hints_max_files: int = setting(5000, minimum=0, maximum=10_000_000)
    similarity_max_files: int = setting(20000, minimum=1, maximum=10_000_000)  # the workspace crawl stops here
    # similarity index cache, adapted models, telemetry log; empty: $XDG_CACHE_HOME/ghostline (~/.cache/ghostline)
    cache_dir: str = setting("")
    # record what becomes of each suggestion (shown, accepted, typed over) in a local log for
    # ``ghostline stats``; nothing leaves the machine
    telemetry: bool = setting(True)
    telemetry_include_text: bool = setting(False)  # also log the suggestion's text
    # "remote": ask an OpenAI-compatible completions server (``ghostline serve --http``, or any
    # other) at remote_url, falling back to the local model while it cannot be reached
    backend: str = setting("local", choices=("local", "remote"))
    remote_url: str = setting("")  # e.g. http://gpu-box:8000/v1
    remote_token: str = setting("", secret=True)  # its bearer token
    # Not a client setting: the server's own ``--model`` argument, the model when
    # ``model_path`` is empty.  Settings from the client never change it.
    launch_model_path: str = ""
    # Not a client setting: the workspace folder, whose adapted model (``ghostline adapt``)
    # is used when no model was named.
    workspace_root: str = ""

    def explicit_model_path(self) -> str:
        """The model the user named (setting, ``--model``, ``$GHOSTLINE_MODEL``), or ""."""
        return self.model_path or self.launch_model_path or os.environ.get("GHOSTLINE_MODEL", "")

    def resolved_model_path(self) -> Path:
        return Path(self.explicit_model_path() or default_model_path()).expanduser()

    def cache_folder(self) -> Path | None:
        return Path(self.cache_dir).expanduser() if self.cache_dir else None


SETTINGS = tuple(f for f in fields(ServerSettings) if f.metadata.get("setting"))  # what a client may set


def camel_case(name: str) -> str:
    """``max_tokens`` -> ``maxTokens``: the client's name for a setting."""
    return "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))


_CAMEL = {f.name: camel_case(f.name) for f in SETTINGS}
_FIELDS = {f.name: f for f in SETTINGS}


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
        meta = _FIELDS[name].metadata
        default = _FIELDS[name].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str) or (name == "model_path" and value is None)
            value = (value or "") if ok else value
        if ok and "minimum" in meta:
            ok = meta["minimum"] <= value
        if ok and "maximum" in meta:
            ok = value <= meta["maximum"]
        if ok and "choices" in meta:
            ok = value in meta["choices"]
        if not ok:
            if meta.get("secret"):
                warnings.append(f"ghostline.{_CAMEL[name]} must be a string; keeping the current value")
            else:
                warnings.append(f"ghostline.{_CAMEL[name]} = {value!r} is invalid; keeping {getattr(base, name)!r}")
            continue
        changes[name] = value
    return replace(base, **changes), warnings
