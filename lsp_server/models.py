"""The completion engine for the current settings, loaded off the event loop and reloaded
when the model settings or the model folder change."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from model.engine import CompletionEngine, ModelLoadError
from lsp_server.settings import ServerSettings

log = logging.getLogger("lsp_server.completion")


class ModelHolder:
    """Owns the engine for the current settings; loading happens off the event loop."""

    def __init__(self, on_error: Callable[[str], None]) -> None:
        self._on_error = on_error
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._engine: CompletionEngine | None = None
        self._error: str | None = None

    def _wanted(self, settings: ServerSettings) -> tuple:
        """What the engine must match: settings, and a stamp of every file in the folder.

        A model folder can change under a running server (a new export copied over it, a
        folder renamed into place).  Any file counts, not only ``model.bin``: a new
        tokenizer must be read too, and CTranslate2 re-reads the folder by itself when the
        engine trims its static-prompt cache, so a missed swap would mix two models.  The
        inode and ctime catch a copy that keeps the old mtime (``cp -p``).
        """
        path = settings.resolved_model_path()
        try:
            with os.scandir(path) as entries:
                stamp = tuple(sorted((e.name, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
                                     for e in entries if e.is_file() for st in (e.stat(),)))
        except OSError:
            stamp = None
        return (str(path), settings.device, settings.cpu_threads, stamp)

    def get(self, settings: ServerSettings) -> CompletionEngine | None:
        """The engine for ``settings``, loading (or reloading after a swap) as needed."""
        key = self._wanted(settings)
        with self._lock:
            if key == self._key:
                return self._engine
            self._key = key
            self._engine, self._error = None, None
            t0 = time.perf_counter()
            try:
                self._engine = CompletionEngine(
                    Path(key[0]), device=settings.device, cpu_threads=settings.cpu_threads
                )
            except ModelLoadError as exc:
                self._error = str(exc)
            except Exception as exc:  # noqa: BLE001 - any loader failure must reach the user, not kill the server
                self._error = f"cannot load model {key[0]}: {exc}"
            if self._error:
                log.error(self._error)
                self._on_error(f"ghostline: {self._error}. Completions are off until a model loads "
                               f"(setting ghostline.modelPath).")
                return None
            log.info("model %s loaded on %s (%s) in %.2fs", key[0], self._engine.device,
                     self._engine.compute_type, time.perf_counter() - t0)
            return self._engine

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def engine(self) -> CompletionEngine | None:
        return self._engine
