"""Repository context, type-ahead and suffix handling, through a real LSP client."""

from lsprotocol import types

from lsp_server.client import running_server

MAIN = "import os\n\n\ndef main():\n    data = read_lines('x')\n    print(data)\n"


def _edit(client, uri, version, line, col, text):
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=line, character=col),
                              end=types.Position(line=line, character=col)), text=text)]))


async def _explain(client, uri, line, col):
    return await client.protocol.send_request_async(
        "ghostline/explainPrompt", {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}})


async def test_open_unsaved_documents_shadow_disk_and_the_file_never_leaks(tmp_path, tiny_model):
    (tmp_path / "helpers.py").write_text(
        "def read_lines(path):\n    disk_version_marker = open(path)\n    return disk_version_marker\n")
    # The edited file's saved copy holds a line the user has not typed (yet): its "future".
    (tmp_path / "main.py").write_text(MAIN + "    future_answer_line = read_lines(os.sep)\n")
    main_uri, helpers_uri = (tmp_path / "main.py").as_uri(), (tmp_path / "helpers.py").as_uri()
    options = {"modelPath": str(tiny_model), "debounceMs": 0, "maxTokens": 16}
    async with running_server(tmp_path, options) as client:
        client.open(main_uri, MAIN)
        before = await _explain(client, main_uri, 5, 4)
        assert "disk_version_marker" in before.prompt
        assert "future_answer_line" not in before.prompt
        client.open(helpers_uri,
                    "def read_lines(path):\n    unsaved_marker = open(path).read()\n    return unsaved_marker\n")
        after = await _explain(client, main_uri, 5, 4)
        assert "unsaved_marker" in after.prompt
        assert "disk_version_marker" not in after.prompt
        assert "future_answer_line" not in after.prompt
        assert after.context[0].path == "helpers.py"


async def test_retrieval_can_be_switched_off(tmp_path, tiny_model):
    (tmp_path / "helpers.py").write_text("def read_lines(path):\n    marker_xyz = open(path)\n    return marker_xyz\n")
    uri = (tmp_path / "main.py").as_uri()
    async with running_server(tmp_path, {"modelPath": str(tiny_model), "debounceMs": 0, "retrieval": False}) as client:
        client.open(uri, MAIN)
        explained = await _explain(client, uri, 5, 4)
        assert "marker_xyz" not in explained.prompt and explained.context == []


async def test_prompt_is_stable_while_typing_on_a_line(tmp_path, tiny_model):
    uri = (tmp_path / "main.py").as_uri()
    async with running_server(tmp_path, {"modelPath": str(tiny_model), "debounceMs": 0}) as client:
        client.open(uri, MAIN)
        a = await _explain(client, uri, 5, 4)
        _edit(client, uri, 2, 5, 4, "pr")
        b = await _explain(client, uri, 5, 6)
        assert a.staticTokens == b.staticTokens
        assert b.prompt.startswith(a.prompt.rsplit("\n", 1)[0])


async def test_completion_never_repeats_the_rest_of_the_line(tmp_path, tiny_model):
    uri = (tmp_path / "main.py").as_uri()
    async with running_server(tmp_path, {"modelPath": str(tiny_model), "debounceMs": 0}) as client:
        client.open(uri, MAIN)
        for col in (19, 20, 21):  # inside read_lines('x')
            line_suffix = MAIN.split("\n")[4][col:]
            text = await client.inline(uri, 4, col)
            assert not (text.strip() and text.rstrip().endswith(line_suffix.strip()))


async def test_typing_the_suggestion_needs_no_model_call(tmp_path, tiny_model):
    uri = (tmp_path / "main.py").as_uri()
    async with running_server(tmp_path, {"modelPath": str(tiny_model), "debounceMs": 0}) as client:
        logs = client.logs
        client.open(uri, MAIN)
        first = await client.inline(uri, 5, 4)
        assert len(first) >= 2
        calls = sum("completion main.py" in m for m in logs)
        _edit(client, uri, 2, 5, 4, first[0])
        second = await client.inline(uri, 5, 5)
        assert second == first[1:]
        assert sum("completion main.py" in m for m in logs) == calls
