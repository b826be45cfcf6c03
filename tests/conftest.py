"""Shared fixtures: one tiny model per test session, trained by our own pipeline; a
workspace folder and the initialization options for servers started on it."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from training.corpus import CorpusConfig


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny model trained on a slice of the standard library (~20 s on 2 cores)."""
    from model.export import export
    from training.train import PRESETS, train

    out = tmp_path_factory.mktemp("tiny-run")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    train(PRESETS["tiny"], out, corpus=CorpusConfig(roots=[stdlib]))
    export(out / "checkpoint", out / "ct2-int8", quantization="int8")
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_run: Path) -> Path:
    """The tiny model exported to CTranslate2 int8."""
    return tiny_run / "ct2-int8"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace folder; a suite overrides this fixture to fill it."""
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def options(tmp_path: Path) -> dict:
    """Initialization options for a test's server: completions without debounce, every
    suggestion shown however unsure (``minConfidence`` 0: what is held back, and when, is
    test_confidence.py's subject), and the similarity cache in the test's own folder,
    beside the workspace."""
    return {"debounceMs": 0, "minConfidence": 0.0, "cacheDir": str(tmp_path / "cache")}
