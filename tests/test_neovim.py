"""Neovim's built-in LSP client against the server, when ``nvim`` is installed.

The same harness as ``make e2e-neovim`` (``tests/e2e/neovim/``): the configuration of
docs/editors.md in ``nvim --headless`` gets a ghostline completion through the protocol and
through CTRL-X CTRL-O, and the server ends with Neovim. ``make e2e`` installs Debian's
neovim first; the plain test command does not, so without ``nvim`` this is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "e2e" / "neovim" / "run.py"


@pytest.mark.skipif(shutil.which("nvim") is None, reason="no nvim (make e2e-neovim installs Debian's neovim)")
def test_documented_neovim_config_completes_and_ends_the_server():
    proc = subprocess.run([sys.executable, str(RUN), "--timeout", "120"], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
