"""Load: a fast typist, many open documents, request storms -- through the real server.

What a user relies on under load: the document the server holds is exactly the editor's,
only the newest request per document spends model time, the answer to the last keystroke
does not wait behind the ones before it, and memory does not grow with the session.
Bounds are generous (CI is a slow 2-core machine): they catch queues and leaks, not
milliseconds; the soak script (``benchmarks/soak.py``) measures the real numbers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_helpers import RecordingClient, running_server
from lsp_server.client import GhostlineClient, inline_params

BODY = "".join(f"def handler_{i}(request, value):\n    result = value * {i}\n    return result\n\n\n"
               for i in range(60))


def rss_mb(client: GhostlineClient) -> tuple[float, float]:
    """The server's (current, peak) resident memory in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{client._server.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def generations(client: RecordingClient) -> int:
    """Model calls the server made (it logs one line per generation)."""
    return sum(1 for line in client.logs if " completion " in f" {line}" and " tokens in " in line)


@pytest.fixture
def workspace(workspace: Path) -> Path:
    for i in range(20):
        (workspace / f"module_{i}.py").write_text(BODY.replace("handler_", f"m{i}_handler_"))
    return workspace


def open_modules(client: GhostlineClient, workspace: Path, n: int) -> list[str]:
    """Open the workspace's first ``n`` modules as they are on disk; their URIs."""
    uris = [(workspace / f"module_{i}.py").as_uri() for i in range(n)]
    for i, uri in enumerate(uris):
        client.open(uri, (workspace / f"module_{i}.py").read_text())
    return uris


async def test_a_thousand_edits_a_second_keep_the_document_exact_and_only_the_newest_runs(workspace, options):
    uri = (workspace / "module_0.py").as_uri()
    typed = "    total = sum(value for value in request.values if value is not None) + len(request.items)"
    async with running_server(workspace, {**options, "debounceMs": 25, "maxTokens": 16}) as client:
        client.open(uri, BODY + "\n")
        line = BODY.count("\n")
        await client.inline(uri, 2, 4)  # the model is loaded
        before = generations(client)
        pending = []
        t0 = time.perf_counter()
        for version, ch in enumerate(typed * 10, start=2):  # ~900 keystrokes on one line, 1 ms apart
            column = version - 2
            client.change(uri, version, (line, column), (line, column), ch)
            if version % 3 == 0:  # the editor asks for ghost text after most keystrokes
                pending.append(client.protocol.send_request_async(
                    types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, line, column + 1)))
            delay = t0 + (version - 1) / 1000 - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        rate = (len(typed) * 10) / (time.perf_counter() - t0)
        last_sent = time.perf_counter()
        await asyncio.wait_for(client.inline(uri, line, len(typed) * 10), 30)
        last_latency = time.perf_counter() - last_sent
        answers = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 60)
        ran = generations(client) - before
        # The server's copy must be the editor's, keystroke for keystroke: a lost, repeated or
        # reordered edit would shift every later copy of ``typed`` off these columns.
        prompts = [(await client.protocol.send_request_async("ghostline/explainPrompt", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": len(typed) * k}})).prompt
            for k in range(1, 11)]
    assert rate > 500, f"the test itself typed too slowly ({rate:.0f} edits/s)"
    assert [a for a in answers if isinstance(a, Exception)] == []  # every request was answered
    assert ran <= len(pending) // 4, f"{ran} generations for {len(pending)} requests: superseded ones ran"
    assert last_latency < 10, f"the last keystroke's answer waited {last_latency:.1f}s behind older requests"
    before_cursor = [p.rsplit("<|fim_middle|>", 1)[0] for p in prompts]
    assert before_cursor[0].endswith("\n" + typed)
    assert all(b.endswith(typed) for b in before_cursor)


async def test_twenty_open_documents_all_get_answers_and_memory_stays_bounded(workspace, options):
    async with running_server(workspace, {**options, "maxTokens": 8}) as client:
        uris = open_modules(client, workspace, 20)
        await client.inline(uris[0], 1, 13)
        _, warm_peak = rss_mb(client)
        for round_ in range(6):  # all twenty at once, on a different line each round
            answers = await asyncio.wait_for(asyncio.gather(
                *(client.inline(uri, 1 + 5 * ((round_ + 3 * i) % 60), 13) for i, uri in enumerate(uris)),
                return_exceptions=True), 120)
            assert [a for a in answers if isinstance(a, Exception)] == []
        _, peak = rss_mb(client)
    assert peak - warm_peak < 300, f"peak RSS grew {peak - warm_peak:.0f} MB over 120 completions"


async def test_memory_does_not_grow_with_the_number_of_lines_completed(workspace, options):
    """The model's prompt cache grows with every distinct line; the engine must recycle it."""
    uri = (workspace / "module_1.py").as_uri()
    text = (workspace / "module_1.py").read_text()
    async with running_server(workspace, {**options, "maxTokens": 2, "similarity": False}) as client:
        client.open(uri, text)
        # The cache holds a few prompts' state, and the allocator settles only after some
        # dozens of lines (the 8-layer default's RSS levels off after ~45).
        for line in range(0, 135, 3):
            await client.inline(uri, line, 4)
        warm, _ = rss_mb(client)
        for line in range(135, text.count("\n"), 3):  # 55 more distinct cursor lines
            await client.inline(uri, line, 4)
        now, _ = rss_mb(client)
    # Unrecycled, each line's cached prompt state costs ~3 MB for the default model: ~170 MB here.
    assert now - warm < 80, f"RSS grew {now - warm:.0f} MB over 55 lines: the prompt cache is not recycled"


async def test_request_and_cancel_storms_leave_the_server_responsive(workspace, options):
    async with running_server(workspace, {**options, "maxTokens": 64}) as client:
        uris = open_modules(client, workspace, 5)
        await client.inline(uris[0], 1, 13)
        futures = []
        for n in range(300):
            msg_id = f"storm-{n}"
            futures.append(client.protocol.send_request(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uris[n % 5], 1 + n % 50, 13), msg_id=msg_id))
            if n % 2 == 0:
                client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
            if n % 25 == 0:
                await asyncio.sleep(0.005)
        settled = await asyncio.wait_for(
            asyncio.gather(*(asyncio.wrap_future(f) for f in futures), return_exceptions=True), 120)
        after_storm = (workspace / "after_storm.py").as_uri()
        client.open(after_storm, "def handler(request, value):\n    result = value * 2\n    return ")
        t0 = time.perf_counter()
        text = await asyncio.wait_for(client.inline(after_storm, 2, len("    return ")), 30)
        after = time.perf_counter() - t0
    assert len(settled) == 300  # every request got an answer or a cancellation error
    assert all(not isinstance(s, Exception) or "cancel" in str(s).lower() for s in settled), \
        [s for s in settled if isinstance(s, Exception)][:3]
    assert text.strip(), "after the storm a normal request still gets a completion"
    assert after < 10


async def test_keystrokes_leave_nothing_behind(workspace, options):
    """A notification (a keystroke's didChange) leaves nothing behind, such as a future in
    pygls' table of pending requests: ~2 KB a keystroke would add up over a session."""
    uri = (workspace / "module_2.py").as_uri()
    async with running_server(workspace, {**options, "similarity": False}) as client:
        client.open(uri, "x = 1\n")
        await client.inline(uri, 0, 5)
        before, _ = rss_mb(client)
        for version in range(2, 20_002):
            client.change(uri, version, (1, 0), (1, 0), "")  # an edit that changes nothing
            if version % 500 == 0:
                await asyncio.sleep(0)
        await client.inline(uri, 0, 5)  # all edits are in
        after, _ = rss_mb(client)
    assert after - before < 15, f"RSS grew {after - before:.0f} MB over 20,000 keystrokes"
