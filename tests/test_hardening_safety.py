"""Safety: what the server may touch while it serves a hostile workspace.

The server runs under a CPython audit hook (``sys.addaudithook``) that records every file
opened for writing, every network call, every unpickling, every process it starts and
every compilation of workspace code.  An editor session against a workspace full of
traps (modules named like the server's own dependencies, code that writes a marker when
run) must leave: no marker, no network, no pickle, no child process, and writes only
under the cache folder.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_helpers import find_similar
from lsp_server.client import inline_params, running_server
from lsp_server.settings import DEFAULT_MODEL_DIR
from lsp_server.telemetry import EVENT_METHOD, log_path

# Started with ``python -c``, in the workspace, as an editor starts the server.
AUDITED_SERVER = r'''
import os, sys
log = open(os.environ["GHOSTLINE_AUDIT_LOG"], "a", buffering=1)
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
WATCHED = ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto",
           "pickle.find_class", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
           "os.fork", "os.forkpty")
def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writes = (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & WRITE)
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            log.write("write " + os.path.realpath(os.fsdecode(path)) + "\n")
    elif event in WATCHED:
        log.write(event + " " + repr(args)[:200] + "\n")
    elif event == "compile" and args[0] is not None and b"GHOSTLINE_TRAP" in (
            args[0] if isinstance(args[0], bytes) else str(args[0]).encode()):
        log.write("compile " + str(args[1]) + "\n")
    elif event == "import" and args[1] and os.path.realpath(str(args[1])).startswith(os.environ["GHOSTLINE_WORKSPACE"]):
        log.write("import " + str(args[1]) + "\n")
sys.addaudithook(hook)
sys.argv = ["lsp_server"]
import runpy
runpy.run_module("lsp_server", run_name="__main__", alter_sys=True)
'''

TRAP = 'import pathlib  # GHOSTLINE_TRAP\npathlib.Path(__file__).with_name("RAN-" + __name__).write_text("x")\n'
APP = '''import os


def total_size(paths):
    size = 0
    for path in paths:
        size += os.path.getsize(path)
    return size


def main(argv):
    path = os.path.join(argv[0], "x")
    return 
'''  # noqa: W291 - completions are asked for after "return "


@pytest.fixture
def trapped_workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    # Modules named like the server's dependencies: imported only if the workspace is on sys.path.
    for name in ("numpy", "ctranslate2", "tokenizers", "lsprotocol", "tree_sitter", "setup", "conftest",
                 "sitecustomize", "usercustomize"):
        (ws / f"{name}.py").write_text(TRAP)
    (ws / "__init__.py").write_text(TRAP)
    (ws / "app.py").write_text(APP)
    (ws / "copy.py").write_text(APP.replace("total_size", "sum_sizes") + TRAP)
    (ws / "data.pkl").write_bytes(pickle.dumps({"x": 1}))
    return ws


def audit_env(tmp_path: Path, ws: Path) -> tuple[dict[str, str], Path]:
    log = tmp_path / "audit.log"
    env = dict(os.environ, GHOSTLINE_AUDIT_LOG=str(log), GHOSTLINE_WORKSPACE=os.path.realpath(ws),
               XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONSAFEPATH", None)  # the server must protect itself, whatever the launcher does
    return env, log


async def editor_session(client, ws: Path) -> None:
    uri = (ws / "app.py").as_uri()
    client.open(uri, APP)
    result = await client.text_document_inline_completion_async(inline_params(uri, 12, 11))
    suggestion_id = result.items[0].command.arguments[0]  # telemetry: shown, then typed over
    for event in ("shown", "typedOver"):
        client.protocol.notify(EVENT_METHOD, {"id": suggestion_id, "event": event})
    hits = await find_similar(client, uri, 3, 3)
    assert [Path(i["uri"]).name for i in hits][:1] == ["copy.py"]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=APP + "\n# edited\n")]))
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.inline(uri, 12, 11)


async def test_a_hostile_workspace_runs_no_code_and_gets_no_writes_or_network(trapped_workspace, tmp_path):
    ws = trapped_workspace
    env, log = audit_env(tmp_path, ws)
    async with running_server(ws, {"debounceMs": 0}, server_args=("-c", AUDITED_SERVER), env=env,
                              cwd=ws) as client:
        await editor_session(client, ws)
    events = log.read_text().splitlines()
    assert not sorted(p.name for p in ws.glob("RAN-*")), "workspace code ran inside the server"
    assert [e for e in events if not e.startswith("write ")] == []  # no network, pickle, process, import
    cache = os.path.realpath(tmp_path / "xdg" / "ghostline")
    writes = {e.removeprefix("write ") for e in events if e.startswith("write ")}
    assert writes, "the similarity index cache should have been written"
    assert str(log_path(tmp_path / "xdg" / "ghostline").resolve()) in writes, "telemetry goes to the cache folder"
    assert {w for w in writes if not w.startswith(cache + os.sep)} == set()


async def test_a_pickle_in_place_of_the_model_is_refused_not_loaded(tmp_path):
    """A model folder is data: a ``model.bin`` that is really a pickle must not run."""
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (tmp_path / "UNPICKLED", "x"))

    (model / "model.bin").write_bytes(pickle.dumps(Payload()))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text(APP)
    env, log = audit_env(tmp_path, ws)
    async with running_server(ws, {"debounceMs": 0, "modelPath": str(model), "similarity": False, "lineMemory": False},
                              server_args=("-c", AUDITED_SERVER), env=env) as client:
        uri = (ws / "app.py").as_uri()
        client.open(uri, APP)
        assert await client.inline(uri, 12, 11) == ""
        assert any("cannot load model" in m or "model" in m.lower() for m in client.messages)
    assert not (tmp_path / "UNPICKLED").exists()
    assert [e for e in log.read_text().splitlines() if e.startswith("pickle")] == []


def test_serving_code_imports_no_unsafe_loader():
    """The serving packages never import pickle-based loaders, torch, or process/network modules."""
    import ast

    banned = {"pickle", "torch", "subprocess", "socket", "urllib.request", "http.client", "requests",
              "shelve", "marshal", "dill", "joblib"}
    # What the exceptions need, and nothing more: the CLI client and the team server's test
    # harness start servers as child processes by design; the remote backend (off unless
    # the user sets ``backend: "remote"``) makes one HTTP POST.
    allowed = {"lsp_server/client.py": banned, "lsp_server/team/process.py": {"socket", "subprocess", "urllib.request"},
               "lsp_server/remote.py": {"urllib.request"}}
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [*root.joinpath("lsp_server").rglob("*.py"), root / "model" / "engine.py",
                 root / "model" / "tokenizer.py", root / "model" / "prompt_format.py"]:
        name = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{name}: {n}" for n in names
                      if (n in banned or n.split(".")[0] in banned) and n not in allowed.get(name, ())]
    assert found == []


def test_the_audit_hook_sees_what_it_must():
    """The hook itself works: otherwise the tests above would pass by seeing nothing."""
    import subprocess

    probe = AUDITED_SERVER.split("sys.argv")[0] + (
        "import pickle, socket\npickle.loads(pickle.dumps(Exception()))\n"
        "open(os.environ['GHOSTLINE_WORKSPACE'] + '/w', 'w').close()\n"
        "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=0.1)\nexcept OSError:\n    pass\n")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ghostline-audit-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    log = tmp / "log"
    subprocess.run([sys.executable, "-c", probe], check=True,
                   env=dict(os.environ, GHOSTLINE_AUDIT_LOG=str(log), GHOSTLINE_WORKSPACE=str(tmp)))
    kinds = {line.split()[0] for line in log.read_text().splitlines()}
    shutil.rmtree(tmp)
    assert {"pickle.find_class", "write", "socket.connect"} <= kinds

