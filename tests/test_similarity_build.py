"""Cold indexing's fast paths give the index the plain per-chunk definitions give.

A file's chunks are fingerprinted from one tokenization and the chunker's tree
(``fingerprint_chunks``); a refresh with many files reads them in worker processes
(``read_in_workers``).  Both must change nothing but the time, and a failing worker must
cost no file.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lsp_server.similarity.build import BuildConfig, FileResult, read_batch
from lsp_server.similarity.chunking import ChunkConfig, chunk_file
from lsp_server.similarity.fingerprint import BAGS, SHINGLE, Bag, fingerprint, fingerprint_chunks, fingerprint_tokens
from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex
from lsp_server.similarity.tokens import subwords, tokenize

PY = '''"""Module docstring: loaders and caches."""
import os


class Cache:
    """Keeps things, keyed by name."""

    def __init__(self, size: int = 10):
        self.items = {}  # name -> value
        self.size = size

    def get_or_load(self, key, loader):
        """Load ``key`` once.

        :type key: str
        :rtype: object
        """
        if key not in self.items:
            self.items[key] = loader(key)
        return self.items[key]


def total_size(paths: list[str]) -> int:
    size = 0x10 + 1.5e3 - 7
    for path in paths:
        size += os.path.getsize(path) // 2
    text = """a string
    over lines"""
    return size + len(text) + len(r'raw\\d') + len(f"{size}")
'''

JS = '''class Queue {
  constructor(limit = 10) {
    this.items = [];
    this.limit = limit;
  }

  push(item) {
    if (this.items.length >= this.limit) { this.items.shift(); }
    this.items.push(item);
  }
}

function total(values) {
  let sum = 0;
  for (const v of values) sum += v * 2;
  return sum;
} /* a comment that starts on the function's last line
     and ends below it */

const area = (w, h) => {
  const result = w * h;
  return `${result} square units`;
};
'''


def _bags_equal(a: Bag, b: Bag) -> bool:
    return np.array_equal(a.ids, b.ids) and np.array_equal(a.weights, b.weights)


def _reference_words_and_shape(code: str, language: str) -> tuple[Bag, Bag, int]:
    """The bags as first defined: Counters of feature strings, token by token."""
    words: Counter = Counter()
    stream = []
    for tok in tokenize(code, language):
        if tok.kind == "name":
            words.update("w:" + w for w in subwords(tok.text))
            stream.append("I")
        elif tok.kind == "kw":
            words["k:" + tok.text] += 1
            stream.append(tok.text)
        elif tok.kind == "doc":
            words.update("w:" + s for w in re.findall("[A-Za-z]+", tok.text) for s in subwords(w))
        elif tok.kind == "str":
            words["s:" + tok.text[-16:]] += 1
            stream.append("S")
        elif tok.kind == "number":
            words["#:" + tok.text] += 1
            stream.append(tok.text if len(tok.text) == 1 else "N")
        else:
            words["o:" + tok.text] += 1
            stream.append(tok.text)
    shape = Counter(" ".join(stream[i:i + SHINGLE]) for i in range(len(stream) - SHINGLE + 1))
    return Bag.from_counts(words), Bag.from_counts(shape, "g:"), sum(words.values())


@pytest.mark.parametrize(("code", "language"), [(PY, "python"), (JS, "javascript"), (JS, "text")])
def test_token_bags_match_their_plain_definition(code, language):
    words, shape, n_tokens = _reference_words_and_shape(code, language)
    for fp in (fingerprint(code, language), fingerprint_tokens(tokenize(code, language))):
        assert _bags_equal(fp.words, words) and _bags_equal(fp.shape, shape) and fp.n_tokens == n_tokens


@pytest.mark.parametrize(("code", "language"), [(PY, "python"), (JS, "javascript"), (JS, "typescript")])
def test_a_files_chunks_get_the_fingerprints_of_their_own_text(code, language):
    chunked = chunk_file(code, language, ChunkConfig(min_chars=10))
    assert len(chunked.chunks) >= 3
    for chunk, fp in zip(chunked.chunks, fingerprint_chunks(chunked), strict=True):
        alone = fingerprint(chunk.text, language)
        # Token bags always (the comment crossing total()'s last line falls back to the chunk
        # alone); tree bags too where the text alone parses as it does in its file: Python,
        # and JavaScript outside classes (a method alone is a syntax error).
        assert _bags_equal(fp.words, alone.words) and _bags_equal(fp.shape, alone.shape)
        assert fp.n_tokens == alone.n_tokens
        if language == "python" or chunk.name in ("total", "area"):
            assert all(_bags_equal(fp.bag(name), alone.bag(name)) for name in BAGS), chunk.name


def test_a_method_keeps_its_tree_features_from_its_class():
    chunked = chunk_file(JS, "javascript", ChunkConfig(min_chars=10))
    push = next(fp for c, fp in zip(chunked.chunks, fingerprint_chunks(chunked), strict=True) if c.name == "push")
    if_statement = Bag.from_counts(Counter({"p:if_statement": 1}), "x:").ids[0]
    assert if_statement in push.structure.ids  # read from the file's tree, not error recovery's


def _workspace(tmp_path: Path, n: int = 24) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    for i in range(n):
        (root / "pkg" / f"m{i}.py").write_text(PY.replace("Cache", f"Cache{i}").replace("total_size", f"size_{i}"))
    (root / "pkg" / "app.js").write_text(JS)
    (root / "pkg" / "broken.py").write_bytes(b"\xff\xfe not utf-8 \x00")
    return root


def _snapshot(ws: WorkspaceIndex) -> list[tuple]:
    out = []
    for file, record in ws.index.files.items():
        for slot in record.slots:
            e = ws.index.entries[slot]
            bags = tuple((e.fingerprint.bag(b).ids.tolist(), e.fingerprint.bag(b).weights.tolist()) for b in BAGS)
            out.append((file, slot, e.kind, e.name, e.start_line, e.end_line, e.preview, bags))
    return out


def _refresh(root: Path, build: BuildConfig) -> WorkspaceIndex:
    ws = WorkspaceIndex(root, WorkspaceConfig(build=build))
    ws.refresh()
    return ws


def test_worker_processes_build_the_index_one_process_builds(tmp_path):
    root = _workspace(tmp_path)
    alone = _refresh(root, BuildConfig(workers=0))
    pooled = _refresh(root, BuildConfig(workers=2, min_files=1, batch_files=5))
    assert len(alone.index.files) == 25  # the undecodable file is left out by both
    assert _snapshot(pooled) == _snapshot(alone)
    assert np.array_equal(pooled.index.vectors, alone.index.vectors)
    query = (str(root / "pkg" / "m3.py"), PY.replace("Cache", "Cache3").replace("total_size", "size_3"), 23, 23)
    assert [(h.entry.file, h.entry.name, h.score) for h in pooled.find_similar(*query, limit=5)] == \
        [(h.entry.file, h.entry.name, h.score) for h in alone.find_similar(*query, limit=5)]


def failing_batch(files: list[str], *args) -> list[FileResult]:
    """A worker that raises on one batch (module-level: worker processes import it by name)."""
    if any(f.endswith("m5.py") for f in files):
        raise RuntimeError("worker bug")
    return read_batch(files, *args)


def dying_batch(files: list[str], *args) -> list[FileResult]:
    """A worker process that dies (killed for memory, a crash in native code)."""
    os._exit(3)


@pytest.mark.parametrize("worker", [failing_batch, dying_batch])
def test_a_failing_worker_costs_no_file(tmp_path, caplog, worker):
    root = _workspace(tmp_path)
    alone = _refresh(root, BuildConfig(workers=0))
    broken = _refresh(root, BuildConfig(workers=2, min_files=1, batch_files=4, worker=worker))
    assert "a worker failed" in caplog.text  # the pool really ran, and broke
    assert _snapshot(broken) == _snapshot(alone)
    assert broken.find_similar(str(root / "pkg" / "m5.py"), (root / "pkg" / "m5.py").read_text(), 23, 23, limit=1)
