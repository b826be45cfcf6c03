"""Repository context, type-ahead and suffix handling, through a real LSP client."""

from lsp_helpers import explain, insert, running_server

MAIN = "import os\n\n\ndef main():\n    data = read_lines('x')\n    print(data)\n"


async def test_open_unsaved_documents_shadow_disk_and_the_file_never_leaks(workspace, options, tiny_model):
    (workspace / "helpers.py").write_text(
        "def read_lines(path):\n    disk_version_marker = open(path)\n    return disk_version_marker\n")
    # The edited file's saved copy holds a line the user has not typed (yet): its "future".
    (workspace / "main.py").write_text(MAIN + "    future_answer_line = read_lines(os.sep)\n")
    main_uri, helpers_uri = (workspace / "main.py").as_uri(), (workspace / "helpers.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), "maxTokens": 16}) as client:
        client.open(main_uri, MAIN)
        before = await explain(client, main_uri, 5, 4)
        assert "disk_version_marker" in before.prompt
        assert "future_answer_line" not in before.prompt
        client.open(helpers_uri,
                    "def read_lines(path):\n    unsaved_marker = open(path).read()\n    return unsaved_marker\n")
        after = await explain(client, main_uri, 5, 4)
        assert "unsaved_marker" in after.prompt
        assert "disk_version_marker" not in after.prompt
        assert "future_answer_line" not in after.prompt
        assert after.context[0].path == "helpers.py"


async def test_retrieval_can_be_switched_off(workspace, options, tiny_model):
    (workspace / "helpers.py").write_text("def read_lines(path):\n    marker_xyz = open(path)\n    return marker_xyz\n")
    uri = (workspace / "main.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), "retrieval": False}) as client:
        client.open(uri, MAIN)
        explained = await explain(client, uri, 5, 4)
        assert "marker_xyz" not in explained.prompt and explained.context == []


async def test_prompt_is_stable_while_typing_on_a_line(workspace, options, tiny_model):
    uri = (workspace / "main.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        client.open(uri, MAIN)
        a = await explain(client, uri, 5, 4)
        insert(client, uri, 2, 5, 4, "pr")
        b = await explain(client, uri, 5, 6)
        assert a.staticTokens == b.staticTokens
        assert b.prompt.startswith(a.prompt.rsplit("\n", 1)[0])


async def test_completion_never_repeats_the_rest_of_the_line(workspace, options, tiny_model):
    uri = (workspace / "main.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        client.open(uri, MAIN)
        for col in (19, 20, 21):  # inside read_lines('x')
            line_suffix = MAIN.split("\n")[4][col:]
            text = await client.inline(uri, 4, col)
            assert not (text.strip() and text.rstrip().endswith(line_suffix.strip()))


async def test_typing_the_suggestion_needs_no_model_call(workspace, options, tiny_model):
    uri = (workspace / "main.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        logs = client.logs
        client.open(uri, MAIN)
        first = await client.inline(uri, 5, 4)
        assert len(first) >= 2
        calls = sum("completion main.py" in m for m in logs)
        insert(client, uri, 2, 5, 4, first[0])
        second = await client.inline(uri, 5, 5)
        assert second == first[1:]
        assert sum("completion main.py" in m for m in logs) == calls


async def test_retrieved_snippets_never_repeat_each_others_lines(workspace, options, tiny_model):
    """The two best windows of one file overlap (windows start every 4 lines, 8 long): the
    second must come from elsewhere, or the prompt's little room holds the same lines twice."""
    body = "".join(f"    total_{i} = merge_rows(left_rows, right_rows, key_name)\n" for i in range(24))
    (workspace / "helpers.py").write_text("def joined(left_rows, right_rows, key_name):\n" + body)
    main = ("def main(left_rows, right_rows, key_name):\n"
            "    total = merge_rows(left_rows, right_rows, key_name)\n"
            "    return total\n")
    uri = (workspace / "main.py").as_uri()
    async with running_server(workspace, {**options, "modelPath": str(tiny_model), "retrievalTokens": 2048}) as client:
        client.open(uri, main)
        explained = await explain(client, uri, 2, 4)
        starts = sorted(s.startLine for s in explained.context if s.path == "helpers.py")
        assert starts, "the helper's windows share the cursor's names: one must be retrieved"
        assert all(b - a >= 8 for a, b in zip(starts, starts[1:], strict=False)), starts
