"""End-to-end test of ghostline in Neovim's built-in LSP client, headless.

Runs the Neovim configuration that docs/editors.md documents, as it stands there (the Lua
block after the ``<!-- neovim-config`` marker), with the repository's ``.venv/bin`` first on
``PATH`` so its ``ghostline serve`` is the one started. ``ghostline_test.lua`` opens a Python
file in a fresh workspace, asks for a completion at the end of a partly typed line (through
the protocol, then with CTRL-X CTRL-O as a user would) and records what it saw; this script
checks that record, and that the server process ended with Neovim.

    .venv/bin/python tests/e2e/neovim/run.py [--nvim PATH] [--timeout SECONDS] [--keep]

Exit status 0 when every check passes, 1 when one fails, 2 when the test cannot run (no
``nvim``, no ``.venv``). ``make e2e-neovim`` installs Debian's neovim first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DOC = REPO / "docs" / "editors.md"
CONFIG_BLOCK = re.compile(r"<!-- neovim-config\b.*?-->\s*```lua\n(.*?)```", re.S)

# The file the user edits: its last line is being typed, the cursor at its end.
SOURCE = '''"""Reading and writing small JSON settings files."""

import json
import os


def load_config(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_config(path, data):
    with open(path, "w", encoding="utf-8") as fh:
        json.du'''


class Failed(Exception):
    """A check failed: what the user would have seen go wrong."""


@dataclass
class Run:
    returncode: int
    output: str
    record: dict | None  # what ghostline_test.lua wrote, if anything
    server_exit: str | None  # "code signal" from the client's on_exit, if the server ended in time


def documented_config() -> str:
    match = CONFIG_BLOCK.search(DOC.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"run.py: no '<!-- neovim-config' Lua block in {DOC}")
    return match.group(1)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def run_neovim(nvim: str, work: Path, timeout: float) -> Run:
    """Start Neovim in a fresh workspace with its own home; never let it outlive ``timeout``."""
    workspace, home = work / "workspace", work / "home"
    workspace.mkdir()
    home.mkdir()
    source = workspace / "config_io.py"
    source.write_text(SOURCE + "\n", encoding="utf-8")
    config = work / "ghostline.lua"
    config.write_text(documented_config(), encoding="utf-8")
    result, exit_file = work / "result.json", work / "server-exit.txt"
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # Neovim's log, shada and the server's index cache stay in the temporary folder.
        "HOME": str(home),
        **{var: str(home / sub) for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                                                 ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache"))},
        "GHOSTLINE_TEST_CONFIG": str(config),
        "GHOSTLINE_TEST_FILE": str(source),
        "GHOSTLINE_TEST_LINE": str(SOURCE.count("\n") + 1),
        "GHOSTLINE_TEST_RESULT": str(result),
        "GHOSTLINE_TEST_EXIT": str(exit_file),
        "GHOSTLINE_TEST_TIMEOUT_MS": str(int(1000 * (timeout - 10))),  # the script gives up first
    }
    cmd = [nvim, "--headless", "--clean", "-u", "NONE", "-n", "-c", f"luafile {HERE / 'ghostline_test.lua'}"]
    # A session of its own: on a timeout the whole group (Neovim and the server) is ended.
    proc = subprocess.Popen(cmd, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\n[run.py: Neovim still running after {timeout:.0f} s; killed]".encode()
    record = json.loads(result.read_text(encoding="utf-8")) if result.exists() else None
    server_exit = exit_file.read_text(encoding="utf-8").strip() if exit_file.exists() else None
    return Run(proc.returncode, output.decode("utf-8", "replace"), record, server_exit)


def process_gone(pid: int, seconds: float) -> bool:
    """True when ``pid`` has ended (or is a zombie left to its new parent) within ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def check(run: Run) -> list[str]:
    """The checks; returns the lines of the report, raises Failed on the first failure."""
    record = run.record
    if record is None:
        raise Failed(f"Neovim wrote no result (exit status {run.returncode}):\n{run.output}")
    if record.get("error"):
        raise Failed(f"step failed: {record['error']}\n{run.output}")
    if run.returncode != 0:
        raise Failed(f"Neovim exited with status {run.returncode}:\n{run.output}")

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise Failed(f"{what}\nrecord: {json.dumps(record, indent=1)[:4000]}")

    typed = SOURCE.rsplit("\n", 1)[1]
    word = re.search(r"\w*$", typed).group(0)
    line = SOURCE.count("\n")
    expect(record.get("filetype") == "python", f"the file opened as filetype {record.get('filetype')!r}")
    status = record.get("status") or {}
    expect(status.get("state") == "ready", f"ghostline/status is {status!r}, not ready")
    expect(not [m for m in record["messages"] if m.get("type") in (1, 2)],
           f"the server reported problems: {record['messages']}")
    # Options objects, possibly empty ({} arrives as [] from Lua): present is what counts.
    expect(record.get("completion_provider") is not None, "the server did not advertise textDocument/completion")
    expect(record.get("inline_completion_provider") is not None, "the server did not advertise inline completion")

    completion = record.get("completion") or {}
    expect(not completion.get("error"), f"textDocument/completion failed: {completion.get('error')}")
    items = (completion.get("result") or {}).get("items") or []
    expect(len(items) == 1, f"textDocument/completion returned {len(items)} items, expected one from ghostline")
    item = items[0]
    edit = item.get("textEdit") or {}
    new_text = edit.get("newText", "")
    expect(item.get("detail") == "ghostline", f"the item is not marked ghostline: {item}")
    expect(new_text.startswith(word) and len(new_text) > len(word),
           f"the item does not extend the typed word {word!r}: {new_text!r}")
    expect(item.get("label") == new_text.strip(), f"label {item.get('label')!r} is not the inserted text")
    start = {"line": line, "character": utf16_len(typed) - utf16_len(word)}
    end = {"line": line, "character": utf16_len(typed)}
    expect(edit.get("range") == {"start": start, "end": end},
           f"the edit replaces {edit.get('range')}, not the typed word {start}-{end}")

    inline = record.get("inline") or {}
    expect(not inline.get("err"), f"textDocument/inlineCompletion failed: {inline.get('err')}")
    inline_items = (inline.get("result") or {}).get("items") or []
    expect(len(inline_items) == 1, f"textDocument/inlineCompletion returned {len(inline_items)} items")
    suggestion = inline_items[0].get("insertText")
    expect(word + suggestion == new_text,
           f"inline completion {suggestion!r} and completion {new_text!r} differ")

    menu = [m for m in record.get("menu") or [] if m.get("menu") == "ghostline"]
    expect(len(menu) == 1 and menu[0].get("word") == new_text,
           f"CTRL-X CTRL-O did not list the ghostline item: {record.get('menu')}")
    expect(record.get("line_after") == typed + suggestion,
           f"after CTRL-X CTRL-O and Esc the line is {record.get('line_after')!r}, expected {typed + suggestion!r}")

    pid = record.get("server_pid")
    expect(isinstance(pid, int), "no server process id was recorded")
    if not process_gone(pid, 5.0):
        os.kill(pid, signal.SIGKILL)
        raise Failed(f"the server (pid {pid}) was still running 5 s after Neovim quit; killed it")
    return [
        f"server: {status.get('model')} ready, pid {pid}",
        f"completion at line {line + 1}: {typed.strip()!r} + {suggestion!r} (item {item.get('label')!r}, "
        f"detail {item.get('detail')!r})",
        f"inline completion: {suggestion!r}",
        f"CTRL-X CTRL-O menu: {menu[0].get('abbr')!r} [{menu[0].get('menu')}]; line after Esc: "
        f"{record['line_after'].strip()!r}",
        "server ended with Neovim: " + (f"exit code {run.server_exit.split()[0]}, signal {run.server_exit.split()[1]}"
                                        if run.server_exit else "ended after Neovim's exit handler had returned"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvim", default="nvim", help="the Neovim to run (default: nvim on PATH)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before Neovim is killed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args(argv)
    nvim = shutil.which(args.nvim)
    if nvim is None:
        print(f"run.py: {args.nvim} not found; tests/e2e/neovim/setup.sh installs Debian's neovim", file=sys.stderr)
        return 2
    if not (REPO / ".venv" / "bin" / "ghostline").exists():
        print(f"run.py: no {REPO / '.venv/bin/ghostline'}; tests/e2e/neovim/setup.sh makes it", file=sys.stderr)
        return 2
    version = subprocess.run([nvim, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    work = Path(tempfile.mkdtemp(prefix="ghostline-nvim-"))
    t0 = time.monotonic()
    try:
        run = run_neovim(nvim, work, args.timeout)
        report = check(run)
    except Failed as exc:
        print(f"FAIL: Neovim e2e ({version}): {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"PASS: Neovim e2e ({version}, docs/editors.md config) in {time.monotonic() - t0:.1f} s")
    for line in report:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
