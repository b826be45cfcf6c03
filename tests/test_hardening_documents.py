"""Hostile documents through the real server (shipped model, ``python -m lsp_server``).

A 10 MB file, a 1 MB line, minified JavaScript, NULs and other control characters,
invalid UTF-8 on disk, CRLF and CR-only line ends, characters outside the BMP before the
cursor, empty files.  Every request answers correctly, or declines (an empty completion is
fine for an absurd document), within a bound that tells a hang from a slow run; and the
event loop keeps answering while the hostile work runs: a probe sends a cheap request (a
completion for a document that is not open, refused at once on the event loop) every
50 ms meanwhile and records the slowest answer.  Bounds are generous: CI is a slow 2-core
box.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from pathlib import Path

import pytest
from lsprotocol import types

from clone_pair import COMBINE
from clone_pair import MERGE_BARE as MERGE
from lsp_helpers import complete, explain, find_similar, insert, running_server, start_line
from lsp_server.client import GhostlineClient
from lsp_server.documents import utf16_len
from lsp_server.settings import DEFAULT_MODEL_DIR

REQUEST_S = 15.0  # the longest one request may take on a hostile document
STALL_S = 2.5  # the longest the event loop may stop answering
CONTEXT = json.loads((DEFAULT_MODEL_DIR / "ghostline_model.json").read_text())["max_seq_len"]

SMALL = "import os\n\n\ndef join_all(parts):\n    return os.path.join(*parts)\n\n\ndef first(parts):\n    return \n"


@pytest.fixture
def workspace(workspace: Path) -> Path:
    (workspace / "small.py").write_text(SMALL)
    (workspace / "ranges.py").write_text("import sys\n\n\n" + COMBINE)
    return workspace


class Probe:
    """Times a cheap request every 50 ms while the test does hostile work; ``worst`` is
    the slowest answer, so a stalled event loop shows however briefly it stalled."""

    def __init__(self, client: GhostlineClient, root: Path) -> None:
        self.client, self.uri = client, (root / "not-open.py").as_uri()
        self.worst = 0.0
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Probe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            with pytest.raises(Exception, match="not open"):
                await asyncio.wait_for(self.client.inline(self.uri, 0, 0), 60)
            self.worst = max(self.worst, time.perf_counter() - t0)
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.05)


async def bounded(awaitable, seconds: float = REQUEST_S):
    """The awaitable's result; fails the test if it takes longer than ``seconds``."""
    t0 = time.perf_counter()
    result = await asyncio.wait_for(awaitable, 10 * seconds)
    took = time.perf_counter() - t0
    assert took < seconds, f"took {took:.1f}s"
    return result


def assert_fits_the_model(explained) -> None:
    assert explained.staticTokens + explained.dynamicTokens <= CONTEXT


# A generated data module: nested literals are slow to parse (seconds for 10 MB, all of it
# holding the GIL).
ROW = "    {'id': 12345, 'tags': ['alpha', 'beta'], 'pos': (1.5, -2.25), 'next': {'k': [1, [2, (3,)]]}},\n"
BIG_TAIL = "]\n\n\ndef summarize(rows):\n    \n"


async def test_a_ten_megabyte_file_is_completed_and_searched_without_stalling(workspace, options):
    big = "DATA = [\n" + ROW * (10_000_000 // len(ROW)) + BIG_TAIL
    body_line = big.count("\n") - 1  # the empty body of summarize()
    big_uri, small_uri = (workspace / "data.py").as_uri(), (workspace / "small.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(small_uri, SMALL)
        assert (await client.inline(small_uri, 8, 11)).strip()  # warm: model loaded, index built
        async with Probe(client, workspace) as probe:
            client.open(big_uri, big)
            text = await bounded(client.inline(big_uri, body_line, 4))
            assert isinstance(text, str)
            explained = await bounded(explain(client, big_uri, body_line, 4))
            assert explained.mode == "block"
            assert explained.prompt.endswith("def summarize(rows):\n    <|fim_middle|>")
            assert_fits_the_model(explained)
            for version in (2, 3, 4):  # typing in the big file re-indexes nothing heavy
                insert(client, big_uri, version, 1, 0, "#")
            assert await bounded(find_similar(client, big_uri, body_line - 1, body_line - 1)) is not None
            assert await bounded(find_similar(client, small_uri, 3, 3)) is not None
            # Retrieval in another file of the same language skips the huge open buffer.
            assert isinstance(await bounded(client.inline(small_uri, 4, 11)), str)
        assert probe.worst < STALL_S, f"the event loop stalled for {probe.worst:.1f}s"
        assert client.messages == []


async def test_a_one_megabyte_line_keeps_only_its_end_in_the_prompt(workspace, options):
    line = "ROWS = [" + ", ".join(f"item_{i}" for i in range(100_000)) + ", "
    assert len(line) > 1_000_000
    uri = (workspace / "rows.py").as_uri()
    async with running_server(workspace, options) as client:
        async with Probe(client, workspace) as probe:
            client.open(uri, line)
            # Only the line's end may reach the prompt: all of it is ~300k tokens.
            assert isinstance(await bounded(client.inline(uri, 0, len(line))), str)
            explained = await bounded(explain(client, uri, 0, len(line)))
            assert explained.prompt.endswith("item_99998, item_99999, <|fim_middle|>")
            assert_fits_the_model(explained)
            assert isinstance(await bounded(find_similar(client, uri, 0, 0)), list)
        assert probe.worst < STALL_S, f"the event loop stalled for {probe.worst:.1f}s"


async def test_minified_javascript_is_completed_at_either_end(workspace, options):
    code = ";".join(f"function f{i}(a,b){{return a+b*{i}}}" for i in range(30_000)) + ";var total=ad"
    assert len(code) > 1_000_000
    uri = (workspace / "bundle.min.js").as_uri()
    async with running_server(workspace, options) as client:
        async with Probe(client, workspace) as probe:
            client.open(uri, code, language="javascript")
            assert isinstance(await bounded(client.inline(uri, 0, len(code))), str)
            explained = await bounded(explain(client, uri, 0, len(code)))
            assert explained.prompt.endswith(";var total=ad<|fim_middle|>")
            assert_fits_the_model(explained)
            # At the very start the whole megabyte is suffix.
            explained = await bounded(explain(client, uri, 0, 0))
            assert_fits_the_model(explained)
            result = await bounded(complete(client, uri, 0, len(code)))
            for item in result.items:  # the word typed so far is what the item replaces
                assert item.text_edit.range.start == types.Position(line=0, character=len(code) - len("ad"))
                assert item.text_edit.new_text.startswith("ad")
            assert isinstance(await bounded(find_similar(client, uri, 0, 0)), list)
        assert probe.worst < STALL_S, f"the event loop stalled for {probe.worst:.1f}s"


async def test_nuls_and_control_characters_do_not_move_the_cursor(workspace, options):
    # \x0c, \x1c, \x85 and \u2028 are line breaks for str.splitlines but not for LSP: they
    # must not shift the lines (a form feed between sections is common in older code).
    lines = ["import os", "BLOB = '\x00\x01\x02\x7f\x00'", "\x0c", "# \x1c\x1d\x1e \x85 \u2028 \u2029 \v end",
             "", "def where(path):", "    return os.pa"]
    text = "\n".join(lines) + "\n"
    uri = (workspace / "blob.py").as_uri()
    (workspace / "binary.py").write_bytes(b"\x00\x01def f(x):\n    return x\x00\xff\xfe\n" * 50)
    async with running_server(workspace, options) as client:
        client.open(uri, text)
        explained = await bounded(explain(client, uri, 6, 16))
        assert explained.prompt.endswith("def where(path):\n    return os.pa<|fim_middle|>")
        assert isinstance(await bounded(client.inline(uri, 6, 16)), str)
        # An edit after the control characters lands where the client put it.
        insert(client, uri, 2, 6, 16, "th")
        explained = await bounded(explain(client, uri, 6, 18))
        assert explained.prompt.endswith("    return os.path<|fim_middle|>")
        result = await bounded(complete(client, uri, 6, 18))
        for item in result.items:
            assert item.text_edit.range.start == types.Position(line=6, character=14)
        assert isinstance(await bounded(find_similar(client, uri, 5, 5)), list)
        assert client.messages == []


async def test_invalid_utf8_on_disk_is_skipped_by_retrieval_and_similarity(workspace, options):
    # The same function twice on disk: once readable (ranges.py), once with a byte that is
    # not UTF-8 (broken.py, and in the crawl's own .git/info/exclude).
    (workspace / "broken.py").write_bytes(
        MERGE.replace("merge_intervals", "broken_ranges").encode() + b"# caf\xe9 \xff\xfe\n")
    (workspace / ".git" / "info").mkdir(parents=True)
    (workspace / ".git" / "info" / "exclude").write_bytes(b"# \xff\xfe latin-1 comment\n*.tmp\n")
    uri = (workspace / "query.py").as_uri()
    text = "import sys\n\n\n" + MERGE
    async with running_server(workspace, options) as client:
        client.open(uri, text)
        items = await bounded(find_similar(client, uri, 3, 3))
        assert items and items[0]["uri"] == (workspace / "ranges.py").as_uri()
        assert not any("broken" in item["uri"] for item in items)
        # Retrieval sees the readable copy and never the broken one.
        explained = await bounded(explain(client, uri, 8, 8))
        paths = [c.path for c in explained.context]
        assert "ranges.py" in paths and "broken.py" not in paths
        with pytest.raises(Exception, match="cannot read"):
            await find_similar(client, (workspace / "broken.py").as_uri(), 0, 0)
        assert (await client.inline(uri, 8, 8)) is not None  # still serving
        assert client.messages == []


@pytest.mark.parametrize("eol", ["\r\n", "\r"], ids=["crlf", "cr"])
async def test_crlf_and_cr_only_documents_complete_and_search_by_lsp_lines(workspace, eol, options):
    lines = ["import os", "", "", "def count_lines(path):", "    ", "", "", *MERGE.rstrip("\n").split("\n"),
             "", "", "def main():", "    name = os.pa"]
    text = eol.join(lines) + eol
    uri = (workspace / "endings.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, text)
        # Mid-line: the prefix is that line's start; the model sees "\n" line breaks.
        last = len(lines) - 1
        explained = await bounded(explain(client, uri, last, 16))
        assert explained.prompt.endswith("\n\ndef main():\n    name = os.pa<|fim_middle|>")
        assert "\r" not in explained.prompt
        # An empty body is a block in any line-end style, given back in the document's.
        explained = await bounded(explain(client, uri, 4, 4))
        assert explained.mode == "block"
        block = await bounded(client.inline(uri, 4, 4))
        assert "\n" not in block.replace(eol, "") and "\r" not in block.replace(eol, "")
        # findSimilar counts LSP lines: merge_intervals starts on line 7.
        items = await bounded(find_similar(client, uri, 9, 9))
        assert items and items[0]["uri"] == (workspace / "ranges.py").as_uri()
        client.open((workspace / "ranges.py").as_uri(), (workspace / "ranges.py").read_text())
        items = await bounded(find_similar(client, (workspace / "ranges.py").as_uri(), 5, 5))
        mine = [item for item in items if item["uri"] == uri]
        assert mine and start_line(mine[0]) == 7 and mine[0]["preview"].startswith("def merge_intervals")


async def test_characters_outside_the_bmp_count_two_utf16_units(workspace, options):
    lines = ["# \U0001F600 \U0001F389 emoji above the cursor \U0001F680", "def greet(name):",
             "    label = '\U0001F389\U0001F389 party ' + na", "    v = a\U0001D465b"]
    text = "\n".join(lines) + "\n"
    uri = (workspace / "emoji.py").as_uri()

    async with running_server(workspace, options) as client:
        client.open(uri, text)
        end = utf16_len(lines[2])
        assert end == len(lines[2]) + 2  # two characters outside the BMP, two units each
        explained = await bounded(explain(client, uri, 2, end))
        assert explained.prompt.endswith("    label = '\U0001F389\U0001F389 party ' + na<|fim_middle|>")
        explained = await bounded(explain(client, uri, 2, utf16_len("    label = '\U0001F389")))
        assert explained.prompt.endswith("    label = '\U0001F389<|fim_middle|>")
        # A column past the end of a line means its end (LSP), not the next line's start.
        for past in (1, 2, 50):
            explained = await bounded(explain(client, uri, 1, utf16_len(lines[1]) + past))
            assert explained.prompt.endswith("def greet(name):<|fim_middle|>")
        result = await bounded(client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=end),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))))
        for item in result.items:  # inserted exactly at the cursor
            assert item.range.start == item.range.end == types.Position(line=2, character=end)
        result = await bounded(complete(client, uri, 2, end))
        for item in result.items:
            assert item.text_edit.range.start == types.Position(line=2, character=end - 2)
            assert item.text_edit.new_text.startswith("na")
        # A word holding a character outside the BMP (mathematical italic x) is replaced whole.
        result = await bounded(complete(client, uri, 3, utf16_len(lines[3])))
        for item in result.items:
            assert item.text_edit.range.start == types.Position(line=3, character=8)
            assert item.text_edit.new_text.startswith("a\U0001D465b")


async def test_empty_documents_and_files(workspace, options):
    (workspace / "empty_on_disk.py").write_text("")
    uri, blank_uri = (workspace / "empty.py").as_uri(), (workspace / "blank.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, "")
        client.open(blank_uri, "\n\n\n")
        assert isinstance(await bounded(client.inline(uri, 0, 0)), str)
        assert isinstance(await bounded(client.inline(blank_uri, 3, 0)), str)
        explained = await bounded(explain(client, uri, 0, 0))
        assert explained.prompt.endswith("<|fim_prefix|><|fim_middle|>")
        assert isinstance((await bounded(complete(client, uri, 0, 0))).items, (list, tuple))
        assert await bounded(find_similar(client, uri, 0, 0)) == []
        assert await bounded(find_similar(client, (workspace / "empty_on_disk.py").as_uri(), 0, 0)) == []
        with pytest.raises(Exception, match="outside the document"):
            await client.inline(uri, 2, 0)
        assert client.messages == []


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_five_thousand_nested_blocks_get_a_suggestion_or_nothing_never_an_error(workspace, options, language):
    """An empty block body deep inside 5,000 nested blocks (or after 5,000 open brackets):
    block mode parses all of it; the answer is a suggestion or nothing, not -32603."""
    depth = 5000
    if language == "python":
        name = "deep.py"
        text = "def f():\n    \nx = " + "(" * depth + "1 + " + ")" * depth + "\n"
        line, col = 1, 4
    else:
        name = "deep.js"
        text = "function f() {\n" + "if (a) {\n" * depth + "\n" + "}\n" * depth + "}\n"
        line, col = depth + 1, 0
    uri = (workspace / name).as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, text, language=language)
        answer = await asyncio.wait_for(client.inline(uri, line, col), 60)
        assert isinstance(answer, str)
        assert client.messages == []
