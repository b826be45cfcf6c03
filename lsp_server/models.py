"""The completion engine for the current settings, loaded off the event loop and reloaded
when the model settings or the model folder change.

Which model: the one the user named (``modelPath``, ``--model``, ``$GHOSTLINE_MODEL``);
else the workspace's adapted model (``ghostline adapt``, found in the cache folder by the
workspace root); else the shipped default.  An adapted model that cannot be used is
reported once and the default serves instead.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lsp_server.settings import ServerSettings, default_model_path
from model.adapted import AdaptedInfo, read_adapted
from model.engine import CompletionEngine, ModelLoadError

log = logging.getLogger("lsp_server.completion")


class ModelHolder:
    """Owns the engine for the current settings; loading happens off the event loop."""

    def __init__(self, on_error: Callable[[str], None], on_swap: Callable[[], None] | None = None) -> None:
        self._on_error = on_error
        self._on_swap = on_swap  # called when another engine (or none) replaces a loaded one
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._engine: CompletionEngine | None = None
        self._error: str | None = None
        self._adapted: AdaptedInfo | None = None  # the loaded engine's adaptation, if any
        self._refused: set[str] = set()  # adapted models that failed: reported once, until re-adapted

    def _choose(self, settings: ServerSettings) -> tuple[Path, AdaptedInfo | None]:
        """The model folder for ``settings`` and, for an adapted model, its record."""
        explicit = settings.explicit_model_path()
        if explicit or not settings.workspace_root:
            return settings.resolved_model_path(), None
        default = Path(default_model_path())
        try:
            found = read_adapted(Path(settings.workspace_root), settings.cache_folder())
        except ValueError as exc:
            self._refuse(str(exc), str(exc))
            return default, None
        if found is None or _refusal_key(*found) in self._refused:
            return default, None
        return found[0], found[1]

    def _refuse(self, reason: str, key: str) -> None:
        if key in self._refused:
            return
        self._refused.add(key)
        log.warning("adapted model unusable: %s; using the default model", reason)
        self._on_error(f"ghostline: the workspace's adapted model cannot be used ({reason}); completing with "
                       f"the default model. `ghostline adapt --remove` deletes it, `ghostline adapt` makes a new one.")

    def _wanted(self, settings: ServerSettings, path: Path) -> tuple:
        """What the engine must match: settings, and a stamp of every file in the folder.

        A model folder can change under a running server (a new export copied over it, a
        folder renamed into place).  Any file counts, not only ``model.bin``: a new
        tokenizer must be read too, and CTranslate2 re-reads the folder by itself when the
        engine trims its static-prompt cache, so a missed swap would mix two models.  The
        inode and ctime catch a copy that keeps the old mtime (``cp -p``).
        """
        try:
            with os.scandir(path) as entries:
                stamp = tuple(sorted((e.name, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
                                     for e in entries if e.is_file() for st in (e.stat(),)))
        except OSError:
            stamp = None
        return (str(path), settings.device, settings.cpu_threads, stamp)

    def get(self, settings: ServerSettings) -> CompletionEngine | None:
        """The engine for ``settings``, loading (or reloading after a swap) as needed."""
        with self._lock:
            path, adapted = self._choose(settings)
            engine = self._load(settings, path, adapted)
            if engine is None and adapted is not None:
                self._refuse(self._error or "it does not load", _refusal_key(path, adapted))
                engine = self._load(settings, Path(default_model_path()), None)
            return engine

    def _load(self, settings: ServerSettings, path: Path, adapted: AdaptedInfo | None) -> CompletionEngine | None:
        key = self._wanted(settings, path)
        if key == self._key:
            return self._engine
        if self._engine is not None and self._on_swap is not None:
            self._on_swap()
        self._key = key
        self._engine, self._error, self._adapted = None, None, adapted
        t0 = time.perf_counter()
        try:
            self._engine = CompletionEngine(path, device=settings.device,
                                            cpu_threads=inference_threads(settings.cpu_threads))
        except ModelLoadError as exc:
            self._error = str(exc)
        except Exception as exc:  # noqa: BLE001 - any loader failure must reach the user, not kill the server
            self._error = f"cannot load model {path}: {exc}"
        if self._error:
            if adapted is None:  # an adapted model's failure is reported by the caller, once
                log.error(self._error)
                self._on_error(f"ghostline: {self._error}. Completions are off until a model loads "
                               f"(setting ghostline.modelPath).")
            return None
        log.info("model %s%s loaded on %s (%s) in %.2fs", path, f" (adapted {adapted.created})" if adapted else "",
                 self._engine.device, self._engine.compute_type, time.perf_counter() - t0)
        return self._engine

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def adapted(self) -> AdaptedInfo | None:
        """The loaded model's adaptation record, when it is the workspace's adapted model."""
        return self._adapted if self._engine is not None else None

    def label(self, settings: ServerSettings) -> str:
        """What the status bar calls the model: "adapted <date>" or the folder's name."""
        if self.adapted is not None:
            return f"adapted {self.adapted.date}"
        return Path(settings.resolved_model_path()).name

    @property
    def engine(self) -> CompletionEngine | None:
        return self._engine


def inference_threads(setting: int) -> int:
    """CTranslate2's threads for the editor's model: the ``cpuThreads`` setting, or for 0 every
    core but one, at most 4.  The server's own work (line memory, retrieval, the event loop,
    indexing) runs beside each completion; on a 2-core machine two inference threads made it
    wait (first key on a line p50 317 ms, p95 517 ms, against 218 / 242 ms with one thread;
    docs/benchmarks.md)."""
    if setting:
        return setting
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores - 1))


def _refusal_key(path: Path, info: AdaptedInfo) -> str:
    return f"{path}@{info.created}"
