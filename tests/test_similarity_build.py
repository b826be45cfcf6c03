"""Cold indexing's and search's fast paths give what the plain per-chunk definitions give.

A file's chunks are fingerprinted from one tokenization and the chunker's tree
(``fingerprint_chunks``), a file's chunks go into the postings in one numpy pass
(``TfidfField.add_many``), and the commonest features are scored from dense rows.  All must
change nothing but the time.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lsp_server.similarity import lexical
from lsp_server.similarity.chunking import ChunkConfig, chunk_file, chunk_text
from lsp_server.similarity.features import feature_ids
from lsp_server.similarity.fingerprint import BAGS, SHINGLE, Bag, fingerprint, fingerprint_chunks, fingerprint_tokens
from lsp_server.similarity.index import SimilarityIndex, make_entry
from lsp_server.similarity.lexical import TfidfField
from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex
from lsp_server.similarity.structure import TreeFeatures
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


def test_token_bags_with_more_symbols_than_the_shingle_table_holds():
    """Every character that is not a letter, digit or space is an operator and a shape symbol
    of its own; past 256 of them the shingle table grows."""
    code = "".join(f"v{i} = a {chr(0x2200 + i)} b\n" for i in range(300))
    words, shape, _ = _reference_words_and_shape(code, "python")
    fp = fingerprint(code, "python")
    assert _bags_equal(fp.words, words) and _bags_equal(fp.shape, shape)


CALLBACK_JS = """run(function (done) {
  if (ready) { done(); }
  return done;
}, 10
);

function sum(values) {
  let s = 0;
  for (const v of values) { s += v; }
  return s;
}
"""


@pytest.mark.parametrize(("code", "language"), [(PY, "python"), (JS, "javascript"), (CALLBACK_JS, "javascript")])
def test_tree_ids_of_a_files_chunks_are_their_plain_counts_hashed(code, language):
    """``chunk_ids`` reads every chunk's tree features at once from per-node ancestors; the
    plain definition (``counts``) walks each chunk's nodes.  In CALLBACK_JS the call around
    the callback starts on the callback's first line and ends past its last: not the
    callback's, though inside its lines."""
    chunked = chunk_file(code, language, ChunkConfig(min_chars=10))
    data = code.encode()
    lines = code.split("\n")
    spans = []
    for chunk in chunked.chunks:
        lo = len("\n".join(lines[:chunk.start_line]).encode()) + (chunk.start_line > 0)
        spans.append((lo, lo + len(chunk.text.encode()), chunk.text))
        assert data[spans[-1][0]:spans[-1][1]].decode() == chunk.text
    tree = TreeFeatures(chunked.captures, language)
    for (lo, hi, text), (interface, structure) in zip(spans, tree.chunk_ids(spans), strict=True):
        plain_interface, plain_structure = TreeFeatures(chunked.captures, language).counts(lo, hi, text)
        assert sorted(interface) == sorted(feature_ids(plain_interface, "i:"))
        assert sorted(structure) == sorted(feature_ids(plain_structure, "x:"))
    if code is CALLBACK_JS:
        lo, hi, _ = spans[0]
        assert any(lo <= n.start_byte < hi < n.end_byte for n in chunked.captures["n"])


def test_a_method_keeps_its_tree_features_from_its_class():
    chunked = chunk_file(JS, "javascript", ChunkConfig(min_chars=10))
    push = next(fp for c, fp in zip(chunked.chunks, fingerprint_chunks(chunked), strict=True) if c.name == "push")
    if_statement = Bag.from_counts(Counter({"p:if_statement": 1}), "x:").ids[0]
    assert if_statement in push.structure.ids  # read from the file's tree, not error recovery's


def _workspace(tmp_path: Path, n: int = 12) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    for i in range(n):
        (root / "pkg" / f"m{i}.py").write_text(PY.replace("Cache", f"Cache{i}").replace("total_size", f"size_{i}"))
    (root / "pkg" / "broken.py").write_bytes(b"\xff\xfe not utf-8 \x00")
    return root


def test_a_refresh_ranks_as_an_index_of_per_chunk_fingerprints_added_one_by_one(tmp_path):
    """The refresh's path (one parse per file, a file's postings in one pass, settled at the
    end) against the plain one (each chunk fingerprinted alone and added on its own)."""
    root = _workspace(tmp_path)
    ws = WorkspaceIndex(root, WorkspaceConfig())
    ws.refresh()
    assert len(ws.index.files) == 12  # the undecodable file is left out
    plain = SimilarityIndex()
    for file, record in ws.index.files.items():
        chunks = chunk_text(Path(file).read_text(), "python", ws.config.chunk)
        assert len(chunks) == len(record.slots)
        for chunk in chunks:
            plain.set_file(f"{file}#{chunk.start_line}", None, [make_entry(file, chunk)])
    for file, record in list(ws.index.files.items())[:3]:
        for slot in record.slots:
            query = ws.index.entries[slot].fingerprint
            ours = ws.index.search(query, 8, exclude_file=file, signals="lexical")
            theirs = [h for h in plain.search(query, 60, signals="lexical") if h.entry.file != file][:8]
            assert [(h.entry.file, h.entry.name) for h in ours] == [(h.entry.file, h.entry.name) for h in theirs]
            assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-5)


def test_a_files_postings_added_at_once_score_as_one_by_one():
    """``add_many``'s norms (used until the next rebuild) are each chunk's TF-IDF length with
    every added chunk counted in the idf, as adding them one by one and rebuilding gives."""
    chunked = chunk_file(PY, "python", ChunkConfig(min_chars=10))
    bags = [fp.words for fp in fingerprint_chunks(chunked)]
    together, alone = TfidfField(), TfidfField()
    together.add_many(list(range(len(bags))), bags)
    for slot, bag in enumerate(bags):
        alone.add(slot, bag)
    alone.rebuild()
    n = len(bags)
    assert np.allclose(together.norms[:n], alone.norms[:n])
    assert np.allclose(together.norms[:n], [np.linalg.norm(b.weights * together.idf(b.ids)) for b in bags])
    for bag in bags:
        assert np.allclose(together.scores(bag, n), alone.scores(bag, n), atol=1e-6)


def test_dense_rows_of_common_features_score_as_their_postings(tmp_path, monkeypatch):
    """Features in more than a quarter of the chunks are scored from dense rows; the scores
    are the postings' bit for bit (float64 sums of float32 terms >= 1 are exact)."""
    root = _workspace(tmp_path)
    ws = WorkspaceIndex(root, WorkspaceConfig())
    ws.refresh()
    n = len(ws.index.entries)
    queries = [e.fingerprint for e in ws.index.entries if e is not None]
    dense = {name: [field.scores(fp.bag(name), n) for fp in queries] for name, field in ws.index.fields.items()}
    assert all(len(field._dense) for field in ws.index.fields.values())  # "self", "def", "(" ...
    monkeypatch.setattr(lexical, "DENSE_SHARE", 1.0)  # no feature is in more than all chunks
    for name, field in ws.index.fields.items():
        field.rebuild()
        assert not len(field._dense)
        for fp, scores in zip(queries, dense[name], strict=True):
            assert np.array_equal(field.scores(fp.bag(name), n), scores)


def test_token_tables_shared_by_threads_give_every_thread_its_own_bags():
    """The token vocabulary and the shingle tables are shared by every text (the server
    fingerprints from its index worker and its request threads at once); tokens and symbol
    triples never seen before make both grow while other threads read them."""
    import threading

    def code(seed: int) -> str:
        rng = np.random.default_rng(seed)
        lines = []
        for i in range(150):
            name = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 8))
            op = chr(0x2300 + seed * 150 + i)  # a symbol of its own: new shingles
            lines.append(f"def f{seed}_{i}({name}_{i}, y):\n    return {name}_{i} {op} y * {i}  # note {name}\n")
        return "".join(lines)

    texts = [code(seed) for seed in range(4)]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = [fingerprint(texts[k][: len(texts[k]) * j // 20], "python") for j in range(1, 21)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, fps in results.items():
        for j, fp in enumerate(fps, 1):
            plain = fingerprint_tokens(tokenize(texts[k][: len(texts[k]) * j // 20], "python"))
            assert _bags_equal(fp.words, plain.words) and _bags_equal(fp.shape, plain.shape)
