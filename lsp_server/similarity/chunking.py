"""Split files into the units people mean by "similar code": functions, methods, classes.

Python, JavaScript and TypeScript are parsed with tree-sitter, so a chunk is exactly one
definition however it is formatted; other text files fall back to overlapping line
windows.  Tiny definitions (``def f(): pass``) are dropped: everything looks like them, and
a duplicate hint on a one-liner is noise.  Classes are chunks too, but only up to a size:
past it the class is a module in disguise, and its methods carry the similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from lsp_server.languages import parser

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


def chunk_text(text: str, language: str, config: ChunkConfig | None = None) -> list[Chunk]:
    """Chunks of one file's text, in source order."""
    config = config or ChunkConfig()
    if language == "text":
        return _windows(text, config)
    data = text.encode("utf-8")
    tree = parser(language).parse(data)
    lines = text.split("\n")
    out: list[Chunk] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = "function" if node.type in _FUNCTIONS else "class" if node.type in _CLASSES else None
        if kind is not None:
            chunk = _chunk(node, kind, lines, language, config)
            if chunk is not None:
                out.append(chunk)
        # Definitions live in statement lists; expressions below a body only matter for
        # JavaScript's function-valued expressions, which are found through the same walk.
        stack.extend(reversed(node.named_children))
    out.sort(key=lambda c: (c.start_line, -c.end_line))
    return out


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
