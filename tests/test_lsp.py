"""The server end to end, through a real LSP client over stdio."""

import asyncio
import re

import pytest
from lsprotocol import types

from lsp_helpers import complete, insert, running_server
from lsp_server.client import inline_params

SOURCE = "import os\n\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n    return \n"


@pytest.fixture
def workspace(workspace):
    (workspace / "app.py").write_text(SOURCE)
    return workspace


async def test_inline_completion_continues_the_line(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        client.open(uri, SOURCE)
        text = await client.inline(uri, 5, 11)
        assert text.strip() and "\n" not in text
        assert client.messages == []


async def test_completion_fallback_replaces_the_word(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        client.open(uri, SOURCE)
        result = await complete(client, uri, 4, 15)
        item = result.items[0]
        assert item.text_edit.range.start == types.Position(line=4, character=14)
        assert item.text_edit.new_text.startswith("p")


async def test_cancel_request_stops_generation_and_server_keeps_serving(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), "maxTokens": 512}) as client:
        client.open(uri, SOURCE)
        await client.inline(uri, 5, 11)  # warm up: model loaded
        stopped_mid_generation = False
        # A cancel can land before generation starts (nothing runs) or during it (it stops
        # within a token); retry with later cancels until one lands mid-generation.  The
        # tiny model writes its 512 tokens in ~40 ms, so the delays step finely: on a busy
        # machine the start moves by more than that.
        for attempt, delay in enumerate((0.01, 0.02, 0.03, 0.045, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3)):
            seen = len(client.logs)
            params = inline_params(uri, 4, 4 + attempt)
            msg_id = f"cancel-me-{attempt}"
            future = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)
            await asyncio.sleep(delay)
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
            try:
                await asyncio.wrap_future(future)
                finished_first = True  # the answer came before the cancel: nothing to stop
            except Exception as exc:
                assert "cancel" in str(exc).lower()
                finished_first = False
            assert (await client.inline(uri, 5, 11)).strip()  # the server keeps serving
            runs = [m for m in client.logs[seen:] if "completion app.py" in m]
            if finished_first:
                continue
            # The cancelled request never ran to its 512-token limit.
            assert not any("(max_tokens)" in m for m in runs), runs  # (the follow-up is a cache hit)
            cancelled = [m for m in runs if "(cancelled)" in m]
            if cancelled:
                assert int(re.search(r"(\d+) tokens", cancelled[0]).group(1)) < 512
                stopped_mid_generation = True
                break
        assert stopped_mid_generation, client.logs


async def test_only_the_newest_request_per_document_runs(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), "debounceMs": 50}) as client:
        client.open(uri, SOURCE)
        first, second = await asyncio.gather(client.inline(uri, 4, 10), client.inline(uri, 5, 11))
        assert first == ""
        assert second.strip()


async def test_missing_model_gives_a_message_and_the_server_still_answers(workspace, tmp_path, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tmp_path / "nope")}) as client:
        client.open(uri, SOURCE)
        assert await client.inline(uri, 5, 11) == ""
        assert await client.inline(uri, 4, 4) == ""
        await asyncio.sleep(0.1)
        assert any("no model" in m and "modelPath" in m for m in client.messages)


async def test_bad_requests_get_errors_and_the_server_keeps_serving(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        client.open(uri, SOURCE)
        with pytest.raises(Exception, match="not open"):
            await client.inline((workspace / "other.py").as_uri(), 0, 0)
        with pytest.raises(Exception, match="outside the document"):
            await client.inline(uri, 500, 0)
        assert (await client.inline(uri, 5, 11)).strip()


async def test_invalid_settings_are_reported_and_defaults_kept(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    invalid = {"maxTokens": "lots", "colour": "blue"}
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), **invalid}) as client:
        client.open(uri, SOURCE)
        assert (await client.inline(uri, 5, 11)).strip()
        assert any("maxTokens" in m for m in client.messages)
        assert any("colour" in m for m in client.messages)


async def test_incremental_edits_are_applied(workspace, tiny_model, options):
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), "enabled": False}) as client:
        client.open(uri, SOURCE)
        insert(client, uri, 2, 5, 11, "os.pa")
        # Disabled: no completion, but the document is tracked and requests are answered.
        assert await client.inline(uri, 5, 16) == ""
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"ghostline": {"enabled": True}}))
        result = await complete(client, uri, 5, 16)
        # The item replaces the word typed by the edit, so the server saw the edit.
        assert result.items[0].text_edit.new_text.startswith("pa")
