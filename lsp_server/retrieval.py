"""Repository context for completions: similar code from other files, found by Jaccard
similarity of identifier sets over sliding line windows.

The query is the few lines *above* the cursor's line, never the line being typed, so the
retrieved context (which sits in the static part of the prompt) stays the same for every
keystroke on a line.  Open documents shadow their files on disk; the file being edited is
never a source, so neither its saved copy nor anything else can leak its future.  Scanning
stops at a time cap and keeps the best snippets found so far.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from lsp_server.documents import lsp_line_breaks
from lsp_server.files import read_regular_text
from lsp_server.languages import PYTHON, family_of
from lsp_server.line_memory import FileLines
from lsp_server.similarity.crawl import CrawlConfig, crawl
from lsp_server.unfinished import blank_unfinished_lines

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RetrievalConfig:
    window_lines: int = 8
    stride: int = 4
    query_lines: int = 8
    top_k: int = 2
    min_score: float = 0.15
    max_files: int = 2000
    max_file_bytes: int = 300_000
    time_cap_s: float = 0.05
    rescan_s: float = 10.0


@dataclass(frozen=True)
class Snippet:
    path: str
    start_line: int
    text: str
    score: float


class _Windows:
    """One file's sliding windows as an inverted index: for each identifier (an id from
    the retriever's vocabulary), the windows that hold it.

    A set of identifier strings per window cost ~20 times the file's size in memory (a
    600k-line workspace: ~400 MB); sorted arrays of ids cost ~8 bytes an occurrence, and a
    query looks up its own few identifiers instead of comparing every window."""

    __slots__ = ("text", "line_starts", "ids", "windows", "sizes")

    def __init__(self, text: str, vocabulary: dict[str, int], window_lines: int, stride: int) -> None:
        lines = text.split("\n")
        per_line = [{vocabulary.setdefault(name, len(vocabulary)) for name in _IDENT.findall(line)}
                    for line in lines]
        ids: list[int] = []
        windows: list[int] = []
        sizes: list[int] = []
        for k, start in enumerate(range(0, max(1, len(lines) - window_lines + 1), stride)):
            held = set().union(*per_line[start:start + window_lines])
            ids.extend(held)
            windows.extend([k] * len(held))
            sizes.append(len(held))
        held_ids = np.asarray(ids, dtype=np.int32)
        order = np.argsort(held_ids, kind="stable")
        self.ids = held_ids[order]
        self.windows = np.asarray(windows, dtype=np.int32)[order]
        self.sizes = np.asarray(sizes, dtype=np.int32)
        self.text = text
        self.line_starts = np.cumsum([0] + [len(line) + 1 for line in lines], dtype=np.int64)

    def scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows sharing identifiers with the query (the sorted ids of its identifiers),
        and their Jaccard similarity."""
        lo = np.searchsorted(self.ids, query, "left")
        hi = np.searchsorted(self.ids, query, "right")
        hits = [self.windows[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        if not hits:
            return _EMPTY, _EMPTY.astype(np.float64)
        inter = np.bincount(np.concatenate(hits), minlength=len(self.sizes))
        found = np.flatnonzero(inter)
        shared = inter[found]
        return found, shared / (len(query) + self.sizes[found] - shared)

    def lines(self, start: int, count: int) -> str:
        """The text of ``count`` lines from line ``start`` (fewer at the end)."""
        end = min(start + count, len(self.line_starts) - 1)
        return self.text[self.line_starts[start]:self.line_starts[end] - 1]


_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class _FileWindows:
    """What one version of a file offers: windows for retrieval, lines for line memory."""

    stamp: object
    windows: _Windows
    lines: FileLines


def identifiers(text: str) -> frozenset[str]:
    return frozenset(_IDENT.findall(text))


class Retriever:
    """Windows of workspace files, refreshed lazily by modification time."""

    def __init__(self, config: RetrievalConfig | None = None) -> None:
        self.config = config or RetrievalConfig()
        self._files: dict[str, _FileWindows] = {}
        self._listing: dict[str, list[Path]] = {}
        self._listed_at: dict[str, float] = {}
        # Identifier -> id, shared by every file's windows (names repeat across a code base;
        # it only grows, by the names of files read and of queries: a few MB at most).
        self._vocabulary: dict[str, int] = {}

    def _list(self, root: Path, family: str) -> list[Path]:
        """Workspace files of one language family, as the similarity index crawls them
        (.gitignore honoured, big files and symlink loops skipped); relisted every few seconds."""
        key = f"{root}|{family}"
        now = time.monotonic()
        if key in self._listing and now - self._listed_at[key] < self.config.rescan_s:
            return self._listing[key]
        limits = CrawlConfig(max_files=self.config.max_files, max_file_bytes=self.config.max_file_bytes)
        found = [p for p in crawl(root, limits) if family_of(p) == family]
        self._listing[key], self._listed_at[key] = found, now
        return found

    def _file(self, key: str, stamp: object, read) -> _FileWindows | None:
        cached = self._files.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached
        text = read()
        if text is None:
            return None
        text = lsp_line_breaks(text)  # an open CRLF or CR-only document (files are read with universal newlines)
        if family_of(key) == PYTHON.family:
            # Another file saved (or open) mid-edit holds the line its user was typing: as
            # context it shows the model code that ends nowhere, as a line to copy it is one.
            text = blank_unfinished_lines(text, PYTHON.id)
        cfg = self.config
        entry = _FileWindows(stamp, _Windows(text, self._vocabulary, cfg.window_lines, cfg.stride), FileLines(text))
        self._files[key] = entry
        return entry

    def retrieve(self, current: Path, before: str, open_docs: dict[Path, tuple[int, str]],
                 root: Path | None) -> list[Snippet]:
        """Best snippets for a cursor whose preceding lines are ``before``.

        ``open_docs`` maps paths to (version, text) of documents open in the editor.
        """
        cfg = self.config
        query = identifiers("\n".join(before.split("\n")[-cfg.query_lines:]))
        if not query:
            return []
        # Every query name gets an id now: files read below (within this call) share it.
        vocabulary = self._vocabulary
        known = np.asarray(sorted(vocabulary.setdefault(name, len(vocabulary)) for name in query), dtype=np.int32)
        scored: list[tuple[float, str, int, _Windows]] = []
        for path, entry in self._sources(current, open_docs, root):
            found, scores = entry.windows.scores(known)
            for k, score in zip(found.tolist(), scores.tolist(), strict=True):
                if score >= cfg.min_score:
                    scored.append((score, path, k * cfg.stride, entry.windows))
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        picked: list[tuple[str, Snippet]] = []
        for score, path, start, windows in scored:
            if any(p == path and abs(s.start_line - start) < cfg.window_lines for p, s in picked):
                continue  # overlaps a better window: it would repeat its lines
            shown = os.path.relpath(path, root) if root else Path(path).name
            picked.append((path, Snippet(shown, start, windows.lines(start, cfg.window_lines), score)))
            if len(picked) >= cfg.top_k:
                break
        return [s for _, s in picked]

    def names_starting(self, start: str) -> list[str]:
        """The names starting with ``start`` (itself included) that the workspace files read
        so far use, or the documents' lines that asked for snippets."""
        return [name for name in self._vocabulary if name.startswith(start)]

    def file_lines(self, current: Path, open_docs: dict[Path, tuple[int, str]],
                   root: Path | None) -> Iterator[FileLines]:
        """The other files' lines, for line memory: the same sources and time cap."""
        for _, entry in self._sources(current, open_docs, root):
            yield entry.lines

    def warm(self, current: Path, root: Path | None, time_cap_s: float) -> bool:
        """Read ahead the workspace files that completions in ``current`` draw on.

        A completion reads only what fits in its time cap, so in a large workspace the
        first ones would see a few files only; reading the rest in short slices between
        them means they soon see everything.  True when nothing is left to read (the
        cache stays: later reads are of changed files only)."""
        if root is None:
            return True
        deadline = time.monotonic() + time_cap_s
        for _ in self._sources(current, {}, root, time_cap_s=time_cap_s):
            pass
        return time.monotonic() <= deadline

    def _sources(self, current: Path, open_docs: dict[Path, tuple[int, str]],
                 root: Path | None, time_cap_s: float | None = None) -> Iterator[tuple[str, _FileWindows]]:
        """Open documents, then workspace files, of the current file's language family,
        never the current file; stops at the time cap, keeping what was read for next time."""
        cfg = self.config
        deadline = time.monotonic() + (cfg.time_cap_s if time_cap_s is None else time_cap_s)
        family = family_of(current)
        current = current.resolve() if current.is_absolute() else current
        # Compare real paths: the crawl resolves them, editors may not.
        open_docs = {p.resolve() if p.is_absolute() else p: v for p, v in open_docs.items()}
        sources: list[tuple[Path, object, object]] = []
        for path, (version, text) in open_docs.items():
            # An open document over the size limit is skipped like such a file on disk:
            # cutting a 10 MB buffer into windows would hold up every completion.
            if path != current and family_of(path) == family and len(text) <= cfg.max_file_bytes:
                sources.append((path, ("open", version), lambda t=text: t))
        if root is not None and root.is_dir():
            for path in self._list(root, family):
                if path == current or path in open_docs:
                    continue
                sources.append((path, None, path))
        for path, stamp, reader in sources:
            if time.monotonic() > deadline:
                return
            if stamp is None:  # a file on disk: stamp by mtime and size
                try:
                    st = path.stat()
                except OSError:
                    continue
                if st.st_size > cfg.max_file_bytes:
                    continue
                stamp = (st.st_mtime_ns, st.st_size)
                reader = partial(_read, path, cfg.max_file_bytes)
            entry = self._file(str(path), stamp, reader)
            if entry is not None:
                yield str(path), entry


def _read(path: Path, max_bytes: int) -> str | None:
    try:
        return read_regular_text(path, max_bytes)
    except (OSError, UnicodeDecodeError):
        return None
