"""The similarity package without a server: tokens, chunks, crawl, index updates, cache."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lsp_server.languages import language_of
from lsp_server.similarity.chunking import chunk_text
from lsp_server.similarity.crawl import CrawlConfig, crawl, parse_gitignore
from lsp_server.similarity.encoder import CodeEncoder, EncoderConfig
from lsp_server.similarity.fingerprint import BAGS, fingerprint
from lsp_server.similarity.index import SimilarityIndex, make_entry
from lsp_server.similarity.service import EmbeddingWorker, WorkspaceConfig, WorkspaceIndex
from lsp_server.similarity.store import cache_folder
from lsp_server.similarity.tokens import subwords, tokenize
from training.eval_clones import average_precision_at_r

PY = '''import os


class Cache:
    """Keeps things."""

    def __init__(self):
        self.items = {}

    def get_or_load(self, key, loader):
        if key not in self.items:
            self.items[key] = loader(key)
        return self.items[key]


def tiny():
    pass


@decorated
def total_size(paths):
    size = 0
    for path in paths:
        size += os.path.getsize(path)
    return size
'''

TS = '''export class Queue<T> {
  private items: T[] = [];

  push(item: T): void {
    this.items.push(item);
    // grow if needed
  }
}

const sum = (values: number[]): number => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

function greet(name: string) {
  const message = `hello ${name}`;
  return message;
}
'''


@pytest.fixture(scope="module")
def encoder() -> CodeEncoder:
    return CodeEncoder.load()


def test_subwords_split_every_naming_style():
    assert subwords("numToIndex") == subwords("num_to_index") == ["num", "to", "index"]
    assert subwords("HTTPServer") == ["http", "server"]


def test_tokens_drop_comments_and_keep_floor_division():
    kinds = [(t.kind, t.text) for t in tokenize("x = a // 2  # half\n", "python")]
    assert ("op", "//") in kinds and not any("half" in text for _, text in kinds)
    js = [(t.kind, t.text) for t in tokenize("x = a; // note\n/* block */ y = `t${x}`", "javascript")]
    assert not any("note" in text or "block" in text for _, text in js)
    assert ("str", "`t${x}`") in js


def test_python_chunks_are_functions_methods_and_classes():
    chunks = {(c.kind, c.name): c for c in chunk_text(PY, "python")}
    assert set(chunks) == {("class", "Cache"), ("function", "get_or_load"), ("function", "total_size")}
    method = chunks[("function", "get_or_load")]
    assert (method.start_line, method.end_line) == (9, 12)
    assert method.text.startswith("    def get_or_load") and method.text.endswith("return self.items[key]")


def test_typescript_chunks_include_arrow_functions_and_methods():
    names = {(c.kind, c.name) for c in chunk_text(TS, "typescript")}
    assert {("class", "Queue"), ("function", "push"), ("function", "sum"), ("function", "greet")} <= names
    assert language_of("x.tsx").grammar == "tsx" and language_of("x.go").grammar == "text"
    assert language_of("x.png") is None


def test_other_text_files_fall_back_to_line_windows():
    text = "\n".join(f"line number {i} of the file" for i in range(70))
    windows = chunk_text(text, "text")
    assert [(w.start_line, w.end_line) for w in windows] == [(0, 29), (15, 44), (30, 59), (45, 69)]


def test_gitignore_rules():
    rules = parse_gitignore("build/\n*.log\n!keep.log\n/top.py\ndocs/**/gen_*.py\n")
    matched = {r.regex.pattern for r in rules}
    assert len(rules) == 5 and matched


def test_crawl_honours_gitignore_size_limit_and_symlink_loops(tmp_path):
    (tmp_path / ".gitignore").write_text("build/\n*_gen.py\n/top_only.py\n")
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "src" / "pkg" / "table_gen.py").write_text("x = 1\n")
    (tmp_path / "src" / "top_only.py").write_text("x = 1\n")  # anchored rule: only the root one
    (tmp_path / "top_only.py").write_text("x = 1\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.py").write_text("x = 1\n")
    (tmp_path / "src" / ".gitignore").write_text("pkg/private.py\n")
    (tmp_path / "src" / "pkg" / "private.py").write_text("x = 1\n")
    (tmp_path / "big.py").write_text("x = 1\n" * 100_000)
    (tmp_path / "notes.bin").write_text("data")
    os.symlink(tmp_path / "src", tmp_path / "src" / "pkg" / "loop")  # a folder that contains itself
    stats: dict[str, int] = {}
    found = {p.relative_to(tmp_path).as_posix() for p in crawl(tmp_path, CrawlConfig(max_file_bytes=100_000), stats)}
    assert found == {"src/pkg/mod.py", "src/top_only.py"}
    assert stats["too_big"] == 1 and stats["symlink_loops"] >= 1
    assert len(list(crawl(tmp_path, CrawlConfig(max_files=1)))) == 1


def test_index_updates_replace_a_files_chunks(encoder):
    index = SimilarityIndex(encoder.dim)
    chunks = chunk_text(PY, "python")
    vectors = encoder.embed_many([c.text for c in chunks])
    index.set_file("a.py", 1, [make_entry("a.py", c) for c in chunks], vectors)
    index.set_file("b.py", 1, [make_entry("b.py", c) for c in chunks], vectors)
    query = fingerprint(chunks[-1].text)
    best = index.search(query, 1, exclude_file="a.py", vector=vectors[-1])[0]
    assert (best.entry.file, best.entry.name) == ("b.py", "total_size")
    assert best.score == pytest.approx(1.0, abs=1e-3)
    index.set_file("b.py", 2, [make_entry("b.py", chunks[0])])  # b.py edited: only the class is left
    assert all(h.entry.name != "total_size" for h in index.search(query, 5, exclude_file="a.py"))
    index.remove_file("b.py")
    assert index.search(query, 5, exclude_file="a.py") == []
    index.compact()
    assert len(index) == len(chunks) and len(index.entries) == len(chunks)


def test_many_updates_keep_search_exact(encoder):
    """Delta segment, rebuilds and compaction must give the same scores as a fresh index."""
    rng = np.random.default_rng(0)
    bodies = [f"def f{i}(x):\n    y = x * {i}\n    return y + {i % 7} - len(str(x))\n" for i in range(300)]
    index = SimilarityIndex(encoder.dim)
    for step in range(900):
        i = int(rng.integers(300))
        c = chunk_text(bodies[i], "python")
        index.set_file(f"m{i}.py", step, [make_entry(f"m{i}.py", ch) for ch in c])
    fresh = SimilarityIndex(encoder.dim)
    for file, record in index.files.items():
        fresh.set_file(file, 0, [index.entries[s] for s in record.slots])
    q = fingerprint(bodies[5])

    def by_file(ix: SimilarityIndex) -> dict[tuple[str, str], float]:
        scores = ix.scores(q)
        return {(f, name): round(float(scores[name][r.slots[0]]), 5) for f, r in ix.files.items() for name in BAGS}
    assert by_file(index) == by_file(fresh)


def test_workspace_index_persists_and_reuses_the_cache(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(PY)
    (root / "b.py").write_text(PY.replace("total_size", "sum_sizes"))
    config = WorkspaceConfig(cache_dir=tmp_path / "cache")
    ws = WorkspaceIndex(root, config)
    first = ws.refresh()
    assert (first.files, first.indexed, first.from_cache) == (2, 2, 0)
    saved = json.loads((cache_folder(config.cache_dir, root) / "index.json").read_text())
    assert saved["files"] == {} and saved["entries"] == []  # vectors pending: nothing worth writing yet
    ws.embed_pending()  # a file is cached once its vectors are in
    ws.save()
    saved_at = (cache_folder(config.cache_dir, root) / "index.npz").stat().st_mtime_ns
    unchanged = WorkspaceIndex(root, config).refresh()
    assert (unchanged.from_cache, unchanged.indexed) == (2, 0)
    # Nothing changed on disk: the cache is not written again.
    assert (cache_folder(config.cache_dir, root) / "index.npz").stat().st_mtime_ns == saved_at
    (root / "c.py").write_text(PY)
    (root / "b.py").unlink()
    again = WorkspaceIndex(root, config)
    second = again.refresh()
    assert (second.from_cache, second.indexed, second.removed, second.files) == (2, 1, 1, 2)
    assert (cache_folder(config.cache_dir, root) / "index.npz").stat().st_mtime_ns != saved_at
    hits = again.find_similar(str(root / "a.py"), PY, 19, 24, limit=1)
    assert (Path(hits[0].entry.file).name, hits[0].entry.name) == ("c.py", "total_size")


def test_open_document_shadows_disk_until_closed(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(PY)
    (root / "b.py").write_text("x = 1\n")
    ws = WorkspaceIndex(root, WorkspaceConfig())
    ws.refresh()

    def files() -> set[str]:
        return {Path(h.entry.file).name for h in ws.find_similar(str(root / "a.py"), PY, 19, 24, limit=3)}
    assert files() == {"a.py"}  # only a.py's other chunks
    ws.set_document(root / "b.py", 3, PY)  # typed, not saved
    assert Path(ws.find_similar(str(root / "a.py"), PY, 19, 24, limit=1)[0].entry.file).name == "b.py"
    ws.refresh()  # a crawl must not overwrite the open document with the disk copy
    assert Path(ws.find_similar(str(root / "a.py"), PY, 19, 24, limit=1)[0].entry.file).name == "b.py"
    ws.close_document(root / "b.py")
    assert files() == {"a.py"}


def test_an_older_text_of_an_open_document_never_replaces_a_newer_one(tmp_path):
    """The index worker and a search both sync open documents; the slower one may carry an
    older text.  Whatever order they land in, the index must hold the newest."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(PY)
    ws = WorkspaceIndex(root, WorkspaceConfig())
    ws.refresh()
    b = root / "b.py"
    assert ws.set_document(b, 2, "x = 1\n")  # the user replaced the copy
    assert not ws.set_document(b, 1, PY)  # the copy, read before the edit, lands late
    hits = ws.find_similar(str(root / "a.py"), PY, 19, 24, limit=3)
    assert all(Path(h.entry.file).name == "a.py" for h in hits)


def test_encoder_vectors_are_unit_length_and_batch_independent(encoder):
    texts = [c.text for c in chunk_text(PY, "python")]
    together = encoder.embed_many(texts)
    assert together.shape == (len(texts), encoder.dim) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    # Padding to the longest chunk of a batch must not change a chunk's vector.
    alone = np.stack([encoder.embed(t) for t in texts])
    assert np.allclose(together, alone, atol=2e-2)
    # Small passes (the memory limit) give each chunk the same vector, in the same place.
    small = CodeEncoder.load(config=EncoderConfig(batch_size=3, batch_tokens=80))
    assert np.allclose(small.embed_many(texts), together, atol=2e-2)


def test_pending_vectors_are_no_dense_candidates(encoder):
    """A chunk whose vector is not computed yet has no dense score (NaN), is ranked by the
    lexical signal alone, and ranks once ``set_vectors`` fills it in."""
    chunks = chunk_text(PY, "python")
    vectors = encoder.embed_many([c.text for c in chunks])
    index = SimilarityIndex(encoder.dim)
    index.set_file("a.py", 1, [make_entry("a.py", c) for c in chunks], vectors)
    index.set_file("b.py", 7, [make_entry("b.py", c) for c in chunks])  # vectors pending
    assert index.embedding_progress() == (len(chunks), 2 * len(chunks))
    query, vector = fingerprint(chunks[-1].text), vectors[-1]
    dense = index.scores(query, vector)["dense"]
    assert np.isnan(dense[index.files["b.py"].slots]).all() and not np.isnan(dense[index.files["a.py"].slots]).any()
    assert {h.entry.file for h in index.search(query, 10, signals="dense", vector=vector)} == {"a.py"}
    assert index.search(query, 1, exclude_file="a.py", vector=vector)[0].entry.file == "b.py"  # lexical finds it
    assert not index.set_vectors("b.py", 6, vectors)  # computed for an older version: dropped
    assert index.set_vectors("b.py", 7, vectors)
    assert index.embedding_progress() == (2 * len(chunks), 2 * len(chunks))
    dense_hits = index.search(query, 10, signals="dense", vector=vector)
    assert {h.entry.file for h in dense_hits} == {"a.py", "b.py"}
    index.compact()  # renumbering keeps every vector with its chunk
    assert index.embedding_progress() == (2 * len(chunks), 2 * len(chunks))
    best = index.search(query, 1, exclude_file="a.py", signals="dense", vector=vector)[0]
    assert (best.entry.name, round(best.dense, 4)) == ("total_size", 1.0)


def test_embeddings_fill_in_behind_lexical_results(tmp_path, encoder):
    """Lexical search works as soon as the refresh returns; the background worker then gives
    every chunk its vector, only changed files are embedded again, and the cache keeps them."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(PY)
    (root / "b.py").write_text(PY.replace("total_size", "sum_sizes"))
    ws = WorkspaceIndex(root, WorkspaceConfig(cache_dir=tmp_path / "cache"), encoder)
    ws.refresh()
    n = len(ws.index)
    assert ws.index.embedding_progress() == (0, n) and ws.pending_chunks() == n
    hits = ws.find_similar(str(root / "a.py"), PY, 19, 24, limit=1)
    assert hits[0].entry.name == "sum_sizes"  # lexical results before any vector
    seen: list[tuple[int, int]] = []
    drained = threading.Event()
    worker = EmbeddingWorker(ws, progress=lambda done, total: seen.append((done, total)), done=drained.set)
    worker.start()
    assert drained.wait(60)
    assert seen[-1] == (n, n) and ws.pending_chunks() == 0
    hits = ws.find_similar(str(root / "a.py"), PY, 19, 24, limit=1)
    assert hits[0].entry.name == "sum_sizes" and hits[0].dense > 0.9  # the dense signal is in
    drained.clear()
    ws.set_document(root / "b.py", 1, "def other(x):\n    y = x + 1\n    return y\n")
    assert drained.wait(60)
    assert ws.index.embedding_progress() == (len(ws.index), len(ws.index))
    assert seen[-1] == (len(ws.index), len(ws.index)) and len(seen) == 2  # one more batch: the document
    worker.stop()
    ws.close_document(root / "b.py")
    ws.embed_pending()
    ws.save()
    again = WorkspaceIndex(root, WorkspaceConfig(cache_dir=tmp_path / "cache"), encoder)
    report = again.refresh()
    assert report.from_cache == 2 and again.pending_chunks() == 0  # vectors came from the cache
    assert again.index.embedding_progress() == (n, n)


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, encoder: CodeEncoder) -> None:
        self.inner, self.texts = encoder, 0
        self.dim, self.identity = encoder.dim, encoder.identity

    def embed(self, text: str) -> np.ndarray:
        return self.inner.embed(text)

    def embed_many(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_many(texts)


def test_an_edit_re_embeds_only_the_chunk_that_changed(tmp_path, encoder):
    """Typing in one function of an open document must not send the whole file back to the
    encoder, and undoing an edit gets every vector back at once."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(PY)
    counting = CountingEncoder(encoder)
    ws = WorkspaceIndex(root, WorkspaceConfig(), counting)
    ws.refresh()
    ws.set_document(root / "a.py", 1, PY)
    ws.embed_pending()
    chunks = len(ws.index.files[str(root / "a.py")].slots)
    assert chunks >= 3
    counting.texts = 0
    edited = PY.replace("size += os.path.getsize(path)", "size += os.stat(path).st_size")
    ws.set_document(root / "a.py", 2, edited)
    ws.embed_pending()
    assert counting.texts == 1  # total_size only
    assert ws.index.embedding_progress() == (len(ws.index), len(ws.index))
    ws.set_document(root / "a.py", 3, PY)  # undo: every chunk's text is known
    assert ws.pending_chunks() == 0 and counting.texts == 1
    assert ws.index.embedding_progress() == (len(ws.index), len(ws.index))


def _modules(tmp_path: Path, count: int) -> Path:
    """A workspace of ``count`` copies of ``PY``, each with its own function name."""
    root = tmp_path / "ws"
    root.mkdir()
    for i in range(count):
        (root / f"m{i}.py").write_text(PY.replace("total_size", f"total_size_{i}"))
    return root


def test_the_encoder_waits_while_the_user_types(tmp_path, encoder):
    """The background encoder competes with completions for the cores: while edits keep
    coming it embeds nothing, and once they stop it finishes the queue."""
    root = _modules(tmp_path, 3)
    ws = WorkspaceIndex(root, WorkspaceConfig(), encoder)
    ws.refresh()
    n = len(ws.index)
    drained = threading.Event()
    worker = EmbeddingWorker(ws, done=drained.set)
    worker.start()
    try:
        typing_until = time.monotonic() + 3 * EmbeddingWorker.QUIET_SECONDS
        while time.monotonic() < typing_until:
            worker.touch()  # what the server does on every didChange
            time.sleep(0.05)
        assert ws.index.embedding_progress() == (0, n) and ws.pending_chunks() == n
        assert drained.wait(60)
        assert ws.index.embedding_progress() == (n, n)
    finally:
        worker.stop()


def test_the_encoder_waits_while_a_completion_is_worked_on(tmp_path, encoder):
    """A completion being generated holds the background encoder back as typing does; once
    it is done the queue is finished."""
    root = _modules(tmp_path, 3)
    ws = WorkspaceIndex(root, WorkspaceConfig(), encoder)
    ws.refresh()
    n = len(ws.index)
    generating = threading.Event()
    generating.set()
    drained = threading.Event()
    worker = EmbeddingWorker(ws, done=drained.set, make_way=generating.is_set)
    worker._active_at -= 2 * EmbeddingWorker.QUIET_SECONDS  # no edit for a while
    worker.start()
    try:
        time.sleep(3 * EmbeddingWorker.QUIET_SECONDS)
        assert ws.index.embedding_progress() == (0, n)
        generating.clear()
        assert drained.wait(60)
        assert ws.index.embedding_progress() == (n, n)
    finally:
        worker.stop()


def test_indexing_reads_no_file_while_a_completion_is_worked_on(tmp_path, monkeypatch):
    """The first index of a workspace reads its files between completions: every file is
    read at a moment when none is being worked on."""
    root = _modules(tmp_path, 4)
    ws = WorkspaceIndex(root, WorkspaceConfig())
    answers = iter([True, True, False, True, False, False, True, True, True, False] + [False] * 20)
    state = {"generating": False}

    def make_way() -> bool:
        state["generating"] = next(answers)
        return state["generating"]

    read_while: list[bool] = []
    update = ws.update_file
    monkeypatch.setattr(ws, "update_file", lambda path: (read_while.append(state["generating"]), update(path))[1])
    report = ws.refresh(make_way=make_way)
    assert report.indexed == 4 and read_while == [False] * 4


def test_average_precision_at_r():
    assert average_precision_at_r(["a", "b"], "a", 2) == 0.5
    assert average_precision_at_r(["b", "a"], "a", 2) == 0.25
    assert average_precision_at_r(["a"], "a", 2) == 0.5  # fewer results than R count as misses
