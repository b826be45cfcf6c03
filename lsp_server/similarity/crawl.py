"""Find the files of a workspace worth indexing, the way git sees the workspace.

``.gitignore`` files are honoured at every level (the rules people actually write:
globs, ``**``, anchored and directory-only patterns, ``!`` re-includes; later rules win),
along with ``.git/info/exclude``.  Version-control and environment folders are always
skipped, big files are skipped (generated or vendored, not written by anyone), symlinked
folders are followed once (a symlink loop ends at the second visit of the same real
folder), and the crawl stops at ``max_files``.

``build/`` and ``dist/`` at the workspace's top are ignored too, as if a lowest-priority
``.gitignore`` said so: they hold build output (``setup.py build`` copies every module to
``build/lib``), which sorts before ``src/`` and would fill ``max_files`` with copies, and
turn every function into a "duplicate".  A workspace that keeps sources there re-includes
them with ``!/build/`` in ``.gitignore`` or ``.git/info/exclude``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lsp_server.files import read_regular_text
from lsp_server.languages import language_of

MAX_IGNORE_FILE_BYTES = 1_000_000
MAX_IGNORE_FILE_BYTES = 1_000_000
OUTPUT_FOLDERS = "/build/\n/dist/\n"  # ignore rules for the workspace's top, overridable
ALWAYS_SKIPPED = frozenset((".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox",
                            ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", ".ghostline"))


@dataclass(frozen=True)
class CrawlConfig:
    max_files: int = 20_000
    max_file_bytes: int = 400_000


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern
    negate: bool
    dir_only: bool
    anchored: bool  # matched against the path relative to the .gitignore's folder, else the name


def _glob_to_regex(glob: str) -> str:
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1:j]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j
        elif c == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse_gitignore(text: str) -> list[_Rule]:
    rules = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if line:
            rules.append(_Rule(re.compile(_glob_to_regex(line) + r"\Z"), negate, dir_only, anchored))
    return rules


class IgnoreRules:
    """The stack of ``.gitignore`` rule sets that apply inside one folder."""

    def __init__(self, layers: tuple[tuple[Path, list[_Rule]], ...] = ()) -> None:
        self.layers = layers

    def enter(self, folder: Path) -> IgnoreRules:
        try:
            text = read_regular_text(folder / ".gitignore", MAX_IGNORE_FILE_BYTES, errors="replace")
        except OSError:
            return self
        rules = parse_gitignore(text)
        return IgnoreRules(self.layers + ((folder, rules),)) if rules else self

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, rules in self.layers:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            for rule in rules:
                if rule.dir_only and not is_dir:
                    continue
                if (rule.regex.match(rel) if rule.anchored else rule.regex.match(path.name)):
                    verdict = not rule.negate
        return verdict


def crawl(root: Path, config: CrawlConfig | None = None, stats: dict[str, int] | None = None) -> Iterator[Path]:
    """Indexable files under ``root`` in a stable order, ignored and oversized ones left out."""
    config = config or CrawlConfig()
    stats = stats if stats is not None else {}
    root = root.resolve()
    rules = IgnoreRules(((root, parse_gitignore(OUTPUT_FOLDERS)),))
    try:
        exclude = parse_gitignore(read_regular_text(root / ".git" / "info" / "exclude", MAX_IGNORE_FILE_BYTES,
                                                    errors="replace"))
        rules = IgnoreRules(rules.layers + ((root, exclude),))
    except OSError:
        pass
    seen_dirs: set[tuple[int, int]] = set()
    count = 0
    stack: list[tuple[Path, IgnoreRules]] = [(root, rules)]
    while stack:
        folder, rules = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            stats["symlink_loops"] = stats.get("symlink_loops", 0) + 1
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        rules = rules.enter(folder)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        subdirs = []
        for name in names:
            path = folder / name
            try:
                is_dir = path.is_dir()
            except OSError:
                continue
            if is_dir:
                if name in ALWAYS_SKIPPED or rules.ignored(path, True):
                    stats["ignored"] = stats.get("ignored", 0) + 1
                else:
                    subdirs.append(path)
                continue
            if language_of(path) is None:
                continue
            if rules.ignored(path, False):
                stats["ignored"] = stats.get("ignored", 0) + 1
                continue
            try:
                if path.stat().st_size > config.max_file_bytes:
                    stats["too_big"] = stats.get("too_big", 0) + 1
                    continue
            except OSError:
                continue
            count += 1
            if count > config.max_files:
                stats["over_limit"] = stats.get("over_limit", 0) + 1
                return
            yield path
        stack.extend((d, rules) for d in reversed(subdirs))
