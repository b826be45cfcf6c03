"""Similar code end to end: ``ghostline/findSimilar`` and duplicate hints through a real
LSP client talking to ``python -m lsp_server`` over stdio."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types

from clone_pair import COMBINE, MERGE
from lsp_helpers import find_similar, running_server, start_line, status, until

OTHERS = [
    '''def read_config(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    settings = {}
    for line in lines:
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    return settings
''',
    '''def word_counts(text):
    counts = {}
    for word in text.lower().split():
        word = word.strip(".,;:!?")
        if word:
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])
''',
    '''class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()
''',
    '''def binary_search(values, target):
    lo, hi = 0, len(values) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if values[mid] == target:
            return mid
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
''',
]
A = MERGE + "\n\n" + OTHERS[0]
B = OTHERS[1] + "\n\n" + COMBINE
C = OTHERS[2] + "\n\n" + OTHERS[3]


@pytest.fixture
def workspace(workspace: Path) -> Path:
    (workspace / "a.py").write_text(A)
    (workspace / "b.py").write_text(B)
    (workspace / "c.py").write_text(C)
    return workspace


@pytest.fixture
def options(options: dict) -> dict:
    # Completions off: these tests need no language model, only the similarity index.
    return {**options, "enabled": False}


async def test_find_similar_returns_the_renamed_copy_first(workspace, options):
    uri = (workspace / "a.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, A)
        items = await find_similar(client, uri, 0, 10, limit=5)
        assert items, "no similar code found"
        assert items[0]["uri"] == (workspace / "b.py").as_uri()
        assert start_line(items[0]) == B.split("\n").index("def combine_ranges(spans):")
        assert items[0]["preview"].startswith("def combine_ranges(spans):")
        assert 0 < items[0]["score"] <= 1
        assert not any(item["uri"] == uri and start_line(item) == 0 for item in items), "the query is not a result"
        assert [i["score"] for i in items][0] >= max(i["score"] for i in items[1:])


# OTHERS[0] written again by someone else: every name changed, the comprehension and the
# second loop folded into one loop with an early ``continue``, the file read in another way.
REWRITTEN_READ_CONFIG = '''def load_settings(filename):
    result = {}
    with open(filename, encoding="utf-8") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            name, _, val = raw.strip().partition("=")
            result[name.strip()] = val.strip()
    return result
'''


async def test_find_similar_finds_a_rewrite_with_other_names_and_loops(workspace, options):
    (workspace / "d.py").write_text(OTHERS[3] + "\n\n" + REWRITTEN_READ_CONFIG)
    uri = (workspace / "a.py").as_uri()
    first = A.split("\n").index("def read_config(path):")
    async with running_server(workspace, options) as client:
        client.open(uri, A)
        items = await find_similar(client, uri, first, first + 7, limit=5)
        assert items[0]["uri"] == (workspace / "d.py").as_uri(), [(i["uri"][-4:], i["preview"][:25]) for i in items]
        assert items[0]["preview"].startswith("def load_settings(filename):")


async def test_status_counts_chunks_as_their_embeddings_fill_in(workspace, options):
    """``ghostline/status`` tells the client how far the background encoder has got: every
    chunk of the workspace ends up embedded, and findSimilar answers all along."""
    uri = (workspace / "a.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, A)
        items = await find_similar(client, uri, 0, 10, limit=5)
        assert items[0]["uri"] == (workspace / "b.py").as_uri()

        def similarity() -> dict | None:
            value = status(client, "similarity")
            return value if value is None or isinstance(value, dict) else value._asdict()
        await until(lambda: (s := similarity()) is not None and s["ready"] and s["chunks"] > 0
                    and s["embedded"] == s["chunks"], timeout=60)
        assert similarity()["files"] == 3
        items = await find_similar(client, uri, 0, 10, limit=5)
        assert items[0]["uri"] == (workspace / "b.py").as_uri()


async def test_editing_an_open_document_changes_the_results_without_saving(workspace, options):
    a_uri, b_uri = (workspace / "a.py").as_uri(), (workspace / "b.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(a_uri, A)
        client.open(b_uri, B)
        before = await find_similar(client, a_uri, 0, 10, limit=5)
        assert before[0]["uri"] == b_uri
        # Replace the copy in the editor with unrelated code; the file on disk keeps it.
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=b_uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=OTHERS[1])]))
        after = await find_similar(client, a_uri, 0, 10, limit=5)
        assert (workspace / "b.py").read_text() == B
        assert not any(i["uri"] == b_uri and i["preview"].startswith("def combine_ranges") for i in after)
        # Typing the copy into another open document makes that the best match.
        c_uri = (workspace / "c.py").as_uri()
        client.open(c_uri, C)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=c_uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=C + "\n\n" + COMBINE)]))
        moved = await find_similar(client, a_uri, 0, 10, limit=5)
        assert moved[0]["uri"] == c_uri and moved[0]["preview"].startswith("def combine_ranges"), [
            (m["uri"][-5:], m["score"], m["preview"][:30]) for m in moved[:4]]


async def test_hint_names_the_duplicate_and_goes_when_it_is_deleted(workspace, options):
    a_uri, b_uri = (workspace / "a.py").as_uri(), (workspace / "b.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(a_uri, A)

        def hinted(by_uri):
            return any("combine_ranges" in d.message for d in by_uri.get(a_uri, []))
        await client.wait_for_diagnostics(hinted)
        hint = next(d for d in client.diagnostics[a_uri] if "combine_ranges" in d.message)
        assert hint.severity == types.DiagnosticSeverity.Hint
        assert hint.range.start.line == 0  # on merge_intervals' def line
        assert "b.py" in hint.message
        assert hint.related_information[0].location.uri == b_uri
        assert not any(d.range.start.line > 10 for d in client.diagnostics[a_uri]), "read_config has no duplicate"

        client.open(b_uri, B)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=b_uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=OTHERS[1])]))
        await client.wait_for_diagnostics(lambda by_uri: not by_uri.get(a_uri))


async def test_hint_goes_when_the_duplicate_file_is_deleted_on_disk(workspace, options):
    a_uri, b_path = (workspace / "a.py").as_uri(), workspace / "b.py"
    async with running_server(workspace, options) as client:
        client.open(a_uri, A)
        await client.wait_for_diagnostics(lambda by_uri: bool(by_uri.get(a_uri)))
        b_path.unlink()
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=b_path.as_uri(), type=types.FileChangeType.Deleted)]))
        await client.wait_for_diagnostics(lambda by_uri: not by_uri.get(a_uri))


async def test_hints_can_be_switched_off(workspace, options):
    a_uri = (workspace / "a.py").as_uri()
    async with running_server(workspace, {**options, "similarityHints": False}) as client:
        client.open(a_uri, A)
        items = await find_similar(client, a_uri, 0, 10, limit=5)  # the index is built once this answers
        assert items
        assert not client.diagnostics.get(a_uri)


async def test_bad_find_similar_params_are_an_lsp_error(workspace, options):
    uri = (workspace / "a.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, A)
        with pytest.raises(Exception, match="limit"):
            await client.protocol.send_request_async("ghostline/findSimilar", {
                "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0},
                                                        "end": {"line": 3, "character": 0}}, "limit": 0})
        assert await find_similar(client, uri, 0, 10, limit=5)  # the server still answers


async def test_index_is_saved_in_the_cache_folder(workspace, tmp_path, options):
    uri = (workspace / "a.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, A)
        await find_similar(client, uri, 0, 10, limit=5)
    assert list((tmp_path / "cache").rglob("index.npz")), "the index was not saved in the cache folder"


async def test_hints_wait_for_a_pause_in_typing(workspace, options):
    """Hints search the workspace for every function of the document: while the user types
    they would cost the completions CPU, so they come once typing pauses."""
    a_uri = (workspace / "a.py").as_uri()
    async with running_server(workspace, options) as client:
        await find_similar(client, (workspace / "c.py").as_uri(), 0, 3, limit=1)  # the index is built
        client.open(a_uri, A)
        text = A + "\n"
        until = time.monotonic() + 3.0
        version = 1
        while time.monotonic() < until:  # a keystroke every 50 ms for 3 s
            version += 1
            text += "x"
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=a_uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
            await asyncio.sleep(0.05)
        assert not client.diagnostics.get(a_uri)
        await client.wait_for_diagnostics(lambda by_uri: any("combine_ranges" in d.message
                                                             for d in by_uri.get(a_uri, [])))
