"""The similarity package without a server: tokens, chunks, crawl, index updates, cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lsp_server.languages import language_of
from lsp_server.similarity.chunking import chunk_text
from lsp_server.similarity.crawl import CrawlConfig, crawl, parse_gitignore
from lsp_server.similarity.embedder import CodeEmbedder
from lsp_server.similarity.fingerprint import BAGS, fingerprint
from lsp_server.similarity.index import SimilarityIndex, make_entry
from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex
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
def embedder() -> CodeEmbedder:
    return CodeEmbedder.load()


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


def test_index_updates_replace_a_files_chunks(embedder):
    index = SimilarityIndex(embedder)
    chunks = chunk_text(PY, "python")
    index.set_file("a.py", 1, [make_entry("a.py", c) for c in chunks])
    index.set_file("b.py", 1, [make_entry("b.py", c) for c in chunks])
    query = fingerprint(chunks[-1].text)
    best = index.search(query, 1, exclude_file="a.py")[0]
    assert (best.entry.file, best.entry.name) == ("b.py", "total_size")
    assert best.score == pytest.approx(1.0, abs=1e-3)
    index.set_file("b.py", 2, [make_entry("b.py", chunks[0])])  # b.py edited: only the class is left
    assert all(h.entry.name != "total_size" for h in index.search(query, 5, exclude_file="a.py"))
    index.remove_file("b.py")
    assert index.search(query, 5, exclude_file="a.py") == []
    index.compact()
    assert len(index) == len(chunks) and len(index.entries) == len(chunks)


def test_many_updates_keep_search_exact(embedder):
    """Delta segment, rebuilds and compaction must give the same scores as a fresh index."""
    rng = np.random.default_rng(0)
    bodies = [f"def f{i}(x):\n    y = x * {i}\n    return y + {i % 7} - len(str(x))\n" for i in range(300)]
    index = SimilarityIndex(embedder)
    for step in range(900):
        i = int(rng.integers(300))
        c = chunk_text(bodies[i], "python")
        index.set_file(f"m{i}.py", step, [make_entry(f"m{i}.py", ch) for ch in c])
    fresh = SimilarityIndex(embedder)
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
    first = WorkspaceIndex(root, config).refresh()
    assert (first.files, first.indexed, first.from_cache) == (2, 2, 0)
    (root / "c.py").write_text(PY)
    (root / "b.py").unlink()
    again = WorkspaceIndex(root, config)
    second = again.refresh()
    assert (second.from_cache, second.indexed, second.removed, second.files) == (2, 1, 1, 2)
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


def test_average_precision_at_r():
    assert average_precision_at_r(["a", "b"], "a", 2) == 0.5
    assert average_precision_at_r(["b", "a"], "a", 2) == 0.25
    assert average_precision_at_r(["a"], "a", 2) == 0.5  # fewer results than R count as misses
