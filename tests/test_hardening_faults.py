"""Faults around the real server (``python -m lsp_server``, shipped model by default).

Broken model folders (truncated ``model.bin``, garbage ``config.json``, missing or garbage
``tokenizer.json``, garbage ``ghostline_model.json``) each give one clear
``window/showMessage`` naming the folder, and the server keeps answering: completions are
empty, every other request works.  A model folder swapped while serving -- files replaced
under a served copy, or ``modelPath`` changed -- is picked up or reported, never a crash.
A workspace with symlink loops, unreadable files and huge generated folders is indexed
without them; a similarity cache that is corrupt or from an older format is rebuilt, not
trusted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types

from clone_pair import COMBINE, MERGE
from lsp_helpers import complete, explain, find_similar, running_server, status, until
from lsp_server.client import GhostlineClient
from lsp_server.settings import DEFAULT_MODEL_DIR
from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex
from lsp_server.similarity.store import FORMAT, cache_folder

APP = "import os\n\n\n" + MERGE + "\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n    return \n"
RETURN_LINE = APP.split("\n").index("    return ")


@pytest.fixture
def workspace(workspace: Path) -> Path:
    (workspace / "app.py").write_text(APP)
    (workspace / "util.py").write_text("import sys\n\n\n" + COMBINE)
    return workspace


def model_options(options: dict, model: Path) -> dict:
    # Line memory copies existing lines without the model; off, every completion needs it.
    return {**options, "modelPath": str(model), "lineMemory": False}


async def fresh_completion(client: GhostlineClient, root: Path, name: str) -> str:
    """A completion at the end of ``return`` in a document never completed before (the
    type-ahead cache would answer a repeated request without the model)."""
    uri = (root / f"{name}.py").as_uri()
    client.open(uri, APP)
    return await client.inline(uri, RETURN_LINE, 11)


def served_copy(tmp_path: Path, name: str = "served") -> Path:
    folder = tmp_path / name
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BREAKS = {
    "model.bin truncated": lambda d: truncate(d / "model.bin"),
    "config.json garbage": lambda d: (d / "config.json").write_text("{{ this is not json"),
    "tokenizer.json missing": lambda d: (d / "tokenizer.json").unlink(),
    "tokenizer.json garbage": lambda d: (d / "tokenizer.json").write_bytes(b"\x00\xff\xfe not a tokenizer"),
    "ghostline_model.json garbage": lambda d: (d / "ghostline_model.json").write_text("max_seq_len: lots"),
}


@pytest.mark.parametrize("damage", list(BREAKS))
async def test_a_broken_model_is_reported_and_the_server_keeps_answering(workspace, tmp_path, damage, options):
    model = served_copy(tmp_path)
    BREAKS[damage](model)
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, model_options(options, model)) as client:
        client.open(uri, APP)
        assert await client.inline(uri, RETURN_LINE, 11) == ""
        await until(lambda: client.messages)
        assert len(client.messages) == 1, client.messages
        assert str(model) in client.messages[0] and "modelPath" in client.messages[0]
        file = damage.split()[0]
        if file in ("tokenizer.json", "ghostline_model.json"):  # ours to name; CTranslate2 names the rest
            assert file.split(".")[0] in client.messages[0]
        await until(lambda: status(client, "state") == "error")
        # Everything else still works; completions stay empty, without more messages.
        result = await complete(client, uri, RETURN_LINE, 11)
        assert list(result.items) == []
        assert str(model) in (await explain(client, uri, RETURN_LINE, 11)).error
        items = await find_similar(client, uri, 4, 4)
        assert items and items[0]["uri"] == (workspace / "util.py").as_uri()
        assert await client.inline(uri, RETURN_LINE - 1, 4) == ""
        assert len(client.messages) == 1


def _total_tokens(explained) -> int:
    return explained.staticTokens + explained.dynamicTokens


async def test_a_model_folder_swapped_while_serving_is_picked_up_or_reported(workspace, tmp_path, options):
    served = served_copy(tmp_path)
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, model_options(options, served)) as client:
        client.open(uri, APP)
        assert (await fresh_completion(client, workspace, "step1")).strip()
        context = json.loads((served / "ghostline_model.json").read_text())["max_seq_len"]
        assert 128 < _total_tokens(await explain(client, uri, RETURN_LINE, 11)) <= context

        # A new export copied over the served one; this one has half the context.
        config = json.loads((served / "ghostline_model.json").read_text())
        (served / "ghostline_model.json").write_text(json.dumps({**config, "max_seq_len": 128}))
        assert _total_tokens(await explain(client, uri, RETURN_LINE, 11)) <= 128
        assert client.messages == []

        # A copy caught half-written: reported, completions empty, the rest still answers.
        truncate(served / "model.bin")
        assert await fresh_completion(client, workspace, "step2") == ""
        await until(lambda: client.messages)
        assert str(served) in client.messages[-1]
        assert "error" in (await explain(client, uri, RETURN_LINE, 11))._asdict()
        assert await find_similar(client, uri, 4, 4)
        # The copy finished: served again, no restart.
        shutil.copyfile(DEFAULT_MODEL_DIR / "model.bin", served / "model.bin")
        assert (await fresh_completion(client, workspace, "step3")).strip()

        # Only the tokenizer replaced (model.bin untouched): read again, and reported.
        seen = len(client.messages)
        (served / "tokenizer.json").write_text("{}")
        assert await fresh_completion(client, workspace, "step4") == ""
        await until(lambda: len(client.messages) > seen)
        assert "tokenizer" in client.messages[-1]
        shutil.copyfile(DEFAULT_MODEL_DIR / "tokenizer.json", served / "tokenizer.json")
        assert (await fresh_completion(client, workspace, "step5")).strip()

        # modelPath changed to another folder, to a missing one, and back.
        other = served_copy(tmp_path, "other")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"ghostline": {"modelPath": str(other)}}))
        assert (await fresh_completion(client, workspace, "step6")).strip()
        await until(lambda: status(client, "model") == "other")
        seen = len(client.messages)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"ghostline": {"modelPath": str(tmp_path / "missing")}}))
        assert await fresh_completion(client, workspace, "step7") == ""
        await until(lambda: len(client.messages) > seen)
        assert "no model" in client.messages[-1] and "missing" in client.messages[-1]
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"ghostline": {"modelPath": str(other)}}))
        assert (await fresh_completion(client, workspace, "step8")).strip()
        await until(lambda: status(client, "state") == "ready")
        assert client._server.returncode is None


def _many(folder: Path, count: int, suffix: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"m{i}{suffix}").write_text(text)


async def test_loops_unreadable_files_and_generated_folders_are_skipped(tmp_path, options):
    root = tmp_path / "ws"
    src = root / "src"
    src.mkdir(parents=True)
    (src / "app.py").write_text(APP)
    (src / "util.py").write_text("import sys\n\n\n" + COMBINE)
    # Symlink loops: to an ancestor, two folders pointing at each other, one to itself.
    (src / "loop").symlink_to(root, target_is_directory=True)
    (root / "ping").mkdir()
    (root / "pong").mkdir()
    (root / "ping" / "to_pong").symlink_to(root / "pong", target_is_directory=True)
    (root / "pong" / "to_ping").symlink_to(root / "ping", target_is_directory=True)
    (root / "self.py").symlink_to(root / "self.py")
    (root / "dangling.py").symlink_to(root / "nowhere.py")
    # An unreadable copy (chmod 000 blocks reads unless the tests run as root).
    secret = src / "secret.py"
    secret.write_text(MERGE.replace("merge_intervals", "secret_intervals"))
    secret.chmod(0)
    secret_readable = os.access(secret, os.R_OK)
    # Generated folders: exact copies of app.py in build output (more than the crawl's
    # limit below, and sorted before src/), bundles, dependencies, git objects.
    _many(root / "build" / "lib" / "src", 300, ".py", APP)
    _many(root / "dist", 300, ".js", "function mergeIntervals(a) { return a.sort(); }\n" * 5)
    _many(root / "node_modules" / "left-pad", 2000, ".js", "module.exports = function (s) { return s; };\n")
    _many(root / ".git" / "objects" / "ab", 2000, ".py", APP)
    uri = (src / "app.py").as_uri()
    try:
        async with running_server(root, {**options, "similarityMaxFiles": 250}) as client:
            client.open(uri, APP)
            t0 = time.perf_counter()
            items = await asyncio.wait_for(find_similar(client, uri, 4, 4), 60)
            assert time.perf_counter() - t0 < 30
            assert (src / "util.py").as_uri() in [item["uri"] for item in items]
            skipped = ("/build/", "/dist/", "/node_modules/", "/.git/", "/loop/", "/ping/", "/pong/")
            assert not any(part in item["uri"] for item in items for part in skipped), items
            if not secret_readable:
                assert not any("secret" in item["uri"] for item in items)
            explained = await explain(client, uri, RETURN_LINE, 11)
            paths = [c.path for c in explained.context]
            assert paths and all(p.startswith("src/") for p in paths), paths
            assert (await client.inline(uri, RETURN_LINE, 11)).strip()
            assert client.messages == []
    finally:
        secret.chmod(0o644)  # let pytest clean up


# -- the similarity index cache -------------------------------------------------------------

def _corrupt(folder: Path, how: str) -> None:
    meta, npz = folder / "index.json", folder / "index.npz"
    if how == "garbage bytes":
        meta.write_bytes(os.urandom(512))
        npz.write_bytes(os.urandom(4096))
    elif how == "truncated archive":
        truncate(npz)
    elif how == "json of the wrong shape":
        data = json.loads(meta.read_text())
        meta.write_text(json.dumps({**data, "entries": [[1]], "files": {"x.py": {"stamp": 1, "chunks": 9}}}))
    elif how == "older format":
        # Stamps still match the files, so only the version tells the content is stale.
        data = json.loads(meta.read_text())
        for entry in data["entries"]:
            entry[5] = "STALE " + entry[5]
        meta.write_text(json.dumps({**data, "format": FORMAT - 1}))


@pytest.mark.parametrize("how", ["intact", "garbage bytes", "truncated archive", "json of the wrong shape",
                                 "older format"])
async def test_a_bad_similarity_cache_is_rebuilt_not_trusted(workspace, tmp_path, how, options):
    cache = tmp_path / "cache"
    saved = WorkspaceIndex(workspace, WorkspaceConfig(cache_dir=cache))  # what the server saves:
    saved.refresh()
    saved.embed_pending()  # the vectors too (a file saved with vectors pending is re-read)
    saved.save()
    folder = cache_folder(cache, workspace)
    assert (folder / "index.npz").is_file()
    _corrupt(folder, how)
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, APP)
        items = await find_similar(client, uri, 4, 4)
        assert items and items[0]["uri"] == (workspace / "util.py").as_uri()
        assert all(not item["preview"].startswith("STALE") for item in items)
        assert items[0]["preview"].startswith("def combine_ranges(spans):")
        assert client.messages == []  # no "indexing failed"
        # util.py comes from the cache only when it is intact. app.py may too: whether its
        # didOpen reaches the server before the index starts is up to the scheduler.
        counts = [int(found) for line in client.logs for found in re.findall(r"(\d+) from cache", line)]
        assert counts, client.logs
        assert (counts[-1] >= 1) if how == "intact" else (counts[-1] == 0), client.logs
        if how != "intact":
            assert any("rebuilding" in line for line in client.logs), client.logs
        assert (await client.inline(uri, RETURN_LINE, 11)).strip()
    # The rebuilt index replaced the bad cache.
    saved = json.loads((folder / "index.json").read_text())
    assert saved["format"] == FORMAT
    assert not any(entry[5].startswith("STALE") for entry in saved["entries"])


async def test_named_pipes_in_the_workspace_block_nothing(tmp_path, options):
    """A FIFO as a ``.py`` file and as a ``.gitignore``: opening either for reading would
    wait for a writer for ever. Completions (retrieval and line memory read the workspace),
    findSimilar (the index reads it) and shutdown keep being answered."""
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text(APP)
    (root / "util.py").write_text("import sys\n\n\n" + COMBINE)
    os.mkfifo(root / "pipe.py")
    os.mkfifo(root / "pkg" / ".gitignore")
    (root / "pkg" / "mod.py").write_text(MERGE.replace("merge_intervals", "pkg_intervals"))
    uri = (root / "app.py").as_uri()
    async with running_server(root, options) as client:
        client.open(uri, APP)
        await asyncio.wait_for(client.inline(uri, 4, 4), 60)
        items = await asyncio.wait_for(find_similar(client, uri, 4, 4), 60)
        assert (root / "util.py").as_uri() in [item["uri"] for item in items]
        assert (root / "pkg" / "mod.py").as_uri() in [item["uri"] for item in items]  # its folder still counts
        pipe = (root / "pipe.py").as_uri()
        with pytest.raises(Exception, match="not a regular file"):  # asked about the pipe itself: an error
            await asyncio.wait_for(find_similar(client, pipe, 0, 0), 30)
        t0 = time.perf_counter()
    assert time.perf_counter() - t0 < 10  # shutdown was answered (running_server waits for it)


def _big_workspace(root: Path, files: int = 2500) -> None:
    """A workspace whose first index takes many seconds on this machine."""
    body = "\n\n".join(f"def function_{k}(values, limit):\n    total = 0\n    for v in values:\n"
                       f"        if v > limit + {k}:\n            total += v * {k}\n    return total\n"
                       for k in range(8))
    for i in range(files):
        folder = root / f"pkg{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text(body.replace("function_", f"f{i}_"))


async def test_shutdown_is_answered_at_once_while_the_first_index_runs(tmp_path):
    from test_hardening_protocol import RawServer, inline_params

    root = tmp_path / "ws"
    _big_workspace(root)
    server = await RawServer.start(root, tmp_path / "cache")
    try:
        uri = server.open("app.py", APP)
        answer = await server.request("textDocument/inlineCompletion", inline_params(uri, 4, 4), timeout=30)
        assert "result" in answer  # answered while indexing goes on
        t0 = time.perf_counter()
        assert "result" in await server.request("shutdown", None, timeout=30)
        assert time.perf_counter() - t0 < 1.0
        server.notify("exit", None)
        assert await asyncio.wait_for(server.proc.wait(), 10) == 0
    finally:
        await server.stop()


async def test_exit_without_shutdown_while_indexing_ends_at_once_with_code_1(tmp_path):
    root = tmp_path / "ws"
    _big_workspace(root)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)

    def send(message: dict) -> None:
        body = json.dumps(message).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": None, "rootUri": root.as_uri(), "initializationOptions": {"cacheDir": str(tmp_path / "c")},
        "capabilities": {"window": {"workDoneProgress": True}}}})
    header = await asyncio.wait_for(proc.stdout.readuntil(b"\r\n\r\n"), 60)  # the initialize result
    await proc.stdout.readexactly(int(header.split(b"\r\n")[0].split(b":")[1]))
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    await asyncio.sleep(1.5)  # indexing is under way (progress requests go unanswered)
    proc.stdout._transport.close()  # the client is gone: its end of our stdout too
    t0 = time.perf_counter()
    send({"jsonrpc": "2.0", "method": "exit"})
    await proc.stdin.drain()
    stderr = await asyncio.wait_for(proc.stderr.read(), 10)
    code = await asyncio.wait_for(proc.wait(), 10)
    assert time.perf_counter() - t0 < 1.0
    assert code == 1
    assert len(stderr) < 10_000, stderr[-2000:]
