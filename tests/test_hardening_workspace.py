"""Workspace fuzzing: random trees of what a disk can hold under names that look like code
(special files, unreadable files, odd encodings, links that loop or dangle, files that change
while they are indexed), and a server that must keep answering in every one of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_hardening_protocol import INLINE, RawServer, inline_params

APP = "import os\n\n\ndef read_lines(path):\n    with open(path) as fh:\n        return fh.read().splitlines()\n"
NAMES = st.sampled_from(["a.py", "b.js", "c.ts", ".gitignore", "d.pyi", "pkg/e.py", "pkg/.gitignore", "f.txt"])
CONTENTS = st.one_of(
    st.binary(max_size=300),  # anything at all, invalid UTF-8 included
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([APP.encode("utf-16"), b"\xef\xbb\xbf" + APP.encode(), APP.encode().replace(b"\n", b"\r"),
                     b"*\n!*.py\n/pkg/\n", b"x" * 500_000, b"def f(:\n" * 2000]),
)
ENTRIES = st.tuples(st.sampled_from(["file", "fifo", "unreadable", "loop", "dangling", "dir_link", "churn"]),
                    NAMES, CONTENTS)


def _make(root: Path, kind: str, name: str, data: bytes, stop: threading.Event) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        return
    if kind == "file":
        path.write_bytes(data)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "unreadable":
        path.write_bytes(data)
        path.chmod(0)
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to(root / "nowhere" / name)
    elif kind == "dir_link":
        path.symlink_to(root, target_is_directory=True)
    elif kind == "churn":  # rewritten, truncated and grown while the server reads the tree
        path.write_bytes(data)  # there before any later entry of the same name is made

        def churn() -> None:
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    path.write_bytes(data * 50)
                    path.write_bytes(b"")
        threading.Thread(target=churn, daemon=True).start()


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(entries=st.lists(ENTRIES, max_size=8))
def test_any_workspace_keeps_the_server_answering(tmp_path_factory, entries):
    root = tmp_path_factory.mktemp("fuzzed")
    cache = tmp_path_factory.mktemp("cache")
    (root / "app.py").write_text(APP)
    stop = threading.Event()
    for kind, name, data in entries:
        _make(root, kind, name, data, stop)

    async def session() -> None:
        server = await RawServer.start(root, cache)
        try:
            uri = server.open("app.py", APP + "\ndef count(path):\n    return len(read_")
            answer = await server.request(INLINE, inline_params(uri, 7, 20), timeout=30)
            assert "result" in answer, answer
            similar = await server.request("ghostline/findSimilar", {
                "textDocument": {"uri": uri}, "range": {"start": {"line": 3, "character": 0},
                                                        "end": {"line": 3, "character": 0}}}, timeout=60)
            assert "result" in similar, similar
            assert "result" in await server.request("shutdown", None, timeout=5)
            server.notify("exit", None)
            assert await asyncio.wait_for(server.proc.wait(), 10) == 0
        finally:
            await server.stop()

    try:
        asyncio.run(session())
    finally:
        stop.set()
        for path in root.rglob("*"):
            if not path.is_symlink() and path.exists():
                path.chmod(0o755)
