"""Split files into the units people mean by "similar code": functions, methods, classes.

Python, JavaScript and TypeScript are parsed with tree-sitter, so a chunk is exactly one
definition however it is formatted; other text files fall back to overlapping line
windows.  Tiny definitions (``def f(): pass``) are dropped: everything looks like them, and
a duplicate hint on a one-liner is noise.  Classes are chunks too, but only up to a size:
past it the class is a module in disguise, and its methods carry the similarity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import tree_sitter

from lsp_server.languages import parser
from lsp_server.similarity.structure import FLOW_GRAMMARS, tree_patterns

_FUNCTIONS = frozenset(("function_definition", "function_declaration", "generator_function_declaration",
                        "method_definition", "function_expression", "arrow_function", "function"))
_CLASSES = frozenset(("class_definition", "class_declaration", "abstract_class_declaration", "class"))


@dataclass(frozen=True)
class ChunkConfig:
    min_lines: int = 3  # shorter definitions are not chunks
    min_chars: int = 40
    max_class_lines: int = 300  # bigger classes are searched through their methods only
    max_lines: int = 600  # longer functions are generated tables, not logic
    window_lines: int = 30  # line windows for files without a grammar
    window_stride: int = 15


@dataclass(frozen=True)
class Chunk:
    """One searchable unit: 0-based inclusive line span of its file, and its text."""

    kind: str  # "function" | "class" | "window"
    name: str
    start_line: int
    end_line: int
    text: str
    language: str


@dataclass(frozen=True)
class ChunkedText:
    """A file's chunks and the syntax tree they came from (None for line windows), which the
    tree signals read instead of parsing each chunk again."""

    text: str
    language: str
    chunks: list[Chunk]
    tree: tree_sitter.Tree | None
    captures: dict[str, list[tree_sitter.Node]] = field(default_factory=dict)  # ``structure.tree_patterns``'


def chunk_text(text: str, language: str, config: ChunkConfig | None = None) -> list[Chunk]:
    """Chunks of one file's text, in source order."""
    return chunk_file(text, language, config).chunks


def chunk_file(text: str, language: str, config: ChunkConfig | None = None) -> ChunkedText:
    """``chunk_text`` with the tree it parsed."""
    config = config or ChunkConfig()
    if language == "text":
        return ChunkedText(text, language, _windows(text, config), None)
    tree = parser(language).parse(text.encode("utf-8"))
    lines = text.split("\n")
    # Every definition at any depth (JavaScript's function-valued expressions included),
    # found by one query in C; sorted outer before inner as a walk of the tree meets them.
    captures = tree_sitter.QueryCursor(_query(language)).captures(tree.root_node)
    nodes = captures.pop("d", [])
    out: list[Chunk] = []
    for _, _, _, node in sorted((n.start_byte, -n.end_byte, i, n) for i, n in enumerate(nodes)):
        chunk = _chunk(node, "function" if node.type in _FUNCTIONS else "class", lines, language, config)
        if chunk is not None:
            out.append(chunk)
    out.sort(key=lambda c: (c.start_line, -c.end_line))
    return ChunkedText(text, language, out, tree, captures)


@cache
def _query(language: str) -> tree_sitter.Query:
    """Definitions (``@d``), and the nodes the tree signals read: one walk of the tree."""
    grammar = parser(language).language
    names = sorted(t for t in _FUNCTIONS | _CLASSES if grammar.id_for_node_kind(t, True) not in (None, 0))
    tree_signals = "\n" + tree_patterns(language) if language in FLOW_GRAMMARS else ""
    return tree_sitter.Query(grammar, "[" + " ".join(f"({t})" for t in names) + "] @d" + tree_signals)


def _chunk(node: tree_sitter.Node, kind: str, lines: list[str], language: str,
           config: ChunkConfig) -> Chunk | None:
    start, end = node.start_point.row, node.end_point.row
    if node.end_point.column == 0 and end > start:
        end -= 1
    n_lines = end - start + 1
    if n_lines < config.min_lines or n_lines > (config.max_class_lines if kind == "class" else config.max_lines):
        return None
    text = "\n".join(lines[start:end + 1])
    if len(text.strip()) < config.min_chars:
        return None
    return Chunk(kind, _name(node), start, end, text, language)


def _name(node: tree_sitter.Node) -> str:
    """The definition's name; for ``const f = () => ...`` the variable's name."""
    name = node.child_by_field_name("name")
    if name is None and node.parent is not None and node.parent.type in ("variable_declarator", "pair",
                                                                          "assignment_expression"):
        name = node.parent.child_by_field_name("name") or node.parent.child_by_field_name("key") \
            or node.parent.child_by_field_name("left")
    return name.text.decode("utf-8", "replace") if name is not None and name.text else "<anonymous>"


def _windows(text: str, config: ChunkConfig) -> list[Chunk]:
    lines = text.split("\n")
    out = []
    for start in range(0, max(1, len(lines) - config.window_lines + config.window_stride), config.window_stride):
        end = min(len(lines), start + config.window_lines) - 1
        body = "\n".join(lines[start:end + 1])
        if len(body.strip()) >= config.min_chars:
            out.append(Chunk("window", f"lines {start + 1}-{end + 1}", start, end, body, "text"))
    return out
