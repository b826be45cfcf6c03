"""Where a workspace's adapted model lives, and what is known about it.

``ghostline adapt DIR`` fine-tunes the default model on DIR's own code and exports it into
the cache folder, never into the user's tree: ``<cache>/adapted/<key>/`` with a model
folder (a CTranslate2 int8 model with its bf16 float weights) and ``adapted.json`` (which
folder, the root, when, how long, on how many tokens).  The key is a hash of the
workspace's real path, so the language server finds the model from its workspace root
alone.  Adapting again writes a new model folder beside the old one and then replaces the
record in one rename: a server reading meanwhile sees the old model or the new one, never
half of one.  No torch here: the server reads this too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

ADAPTED_INFO = "adapted.json"
MODEL_SUBDIR = "model"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ghostline`` (``~/.cache/ghostline``): out of the user's workspace
    (adapted models and the similarity index's cache both live under it)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ghostline"


def workspace_key(root: Path) -> str:
    return hashlib.sha1(str(Path(root).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def adapted_dir(root: Path, cache_dir: Path | None = None) -> Path:
    """The folder holding ``root``'s adapted model and its record (it may not exist)."""
    return Path(cache_dir or default_cache_dir()) / "adapted" / workspace_key(root)


@dataclass
class AdaptedInfo:
    root: str
    created: str  # ISO date and time, local
    base_model: str
    steps: int
    tokens_seen: int
    repo_tokens: int
    files: int
    seconds: float
    peak_rss_mb: float
    val_loss_before: float | None = None
    val_loss_after: float | None = None
    model: str = MODEL_SUBDIR  # the model's folder, beside the record (records before it: ``model``)

    def save(self, folder: Path) -> None:
        """Write the record in one rename, so that it is never read half-written."""
        tmp = Path(folder) / f".{ADAPTED_INFO}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, Path(folder) / ADAPTED_INFO)

    @property
    def date(self) -> str:
        return self.created[:10]


def read_adapted(root: Path, cache_dir: Path | None = None) -> tuple[Path, AdaptedInfo] | None:
    """``(model folder, record)`` of ``root``'s adapted model, or None when there is none.

    Raises ``ValueError`` when the folder exists but its record is unreadable: the caller
    falls back to the default model and says so.
    """
    folder = adapted_dir(root, cache_dir)
    info_file = folder / ADAPTED_INFO
    if not info_file.exists():
        return None
    try:
        data = json.loads(info_file.read_text())
        info = AdaptedInfo(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"the adapted model record {info_file} is unreadable ({exc})") from None
    if not isinstance(info.model, str) or Path(info.model).name != info.model or info.model in ("", ".", ".."):
        raise ValueError(f"the adapted model record {info_file} names no model folder beside it ({info.model!r})")
    return folder / info.model, info


def remove_other_models(folder: Path, keep: str) -> None:
    """Delete the model folders of earlier adaptations (and of any that stopped half-way)."""
    for path in Path(folder).iterdir():
        if path.is_dir() and path.name != keep and path.name.startswith(MODEL_SUBDIR):
            shutil.rmtree(path, ignore_errors=True)


def remove_adapted(root: Path, cache_dir: Path | None = None) -> bool:
    folder = adapted_dir(root, cache_dir)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True
