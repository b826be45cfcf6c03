"""What a chunk's syntax tree says when its names say nothing: its interface and its structure.

Two bags of features from tree-sitter, beside the token bags of ``fingerprint.py``:

- ``interface``: the parameters of every function in the chunk -- their names, their count,
  their types and the return type, from annotations and from Sphinx docstring fields
  (``:type nums: List[int]``), so ``def f(self, nums: List[int]) -> int`` and a docstring-typed
  ``def g(self, nums)`` agree.  Two implementations of one contract (an interface, a
  callback, a LeetCode problem) share it even when every local name differs.
- ``structure``: the control flow and expression skeleton -- each loop, branch, return,
  comprehension, call or operator node with its two nearest enclosing such nodes
  (``for_statement>if_statement>return_statement``), and 3-node runs of them in source
  order.  A function rewritten with other names keeps exactly these.

On the LeetCode clone set both lift MAP@R on held-out problems, most where method names are
anonymised (docs/similarity.md).  Nodes are found with one tree-sitter query per grammar
(C speed); nesting comes from their byte ranges, not from walking parents.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from functools import cache
from operator import attrgetter

import numpy as np
import tree_sitter

from lsp_server.languages import parser
from lsp_server.similarity.features import feature_ids, hash_feature

# Control flow and expression nodes, per grammar; anything else in the tree is glue.
_FLOW = {
    "python": ("for_statement", "while_statement", "if_statement", "elif_clause", "else_clause",
               "return_statement", "try_statement", "with_statement", "list_comprehension",
               "dictionary_comprehension", "set_comprehension", "generator_expression", "lambda", "yield",
               "break_statement", "continue_statement", "augmented_assignment", "subscript", "binary_operator",
               "comparison_operator", "boolean_operator", "call"),
    "javascript": ("for_statement", "for_in_statement", "while_statement", "do_statement", "if_statement",
                   "else_clause", "return_statement", "try_statement", "switch_statement", "arrow_function",
                   "yield_expression", "break_statement", "continue_statement", "augmented_assignment_expression",
                   "subscript_expression", "binary_expression", "ternary_expression", "call_expression"),
}
_FLOW["typescript"] = _FLOW["tsx"] = _FLOW["javascript"]
FLOW_GRAMMARS = frozenset(_FLOW)  # grammars with tree features
_FUNCTIONS = ("function_definition", "function_declaration", "method_definition", "arrow_function",
              "function_expression", "generator_function_declaration")
_SPHINX_TYPE = re.compile(r":type\s+(\w+)\s*:\s*([^\n]+)")
_SPHINX_RTYPE = re.compile(r":rtype\s*:\s*([^\n]+)")
_SELF = frozenset(("self", "cls"))
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tree_patterns(grammar: str) -> str:
    """Query patterns capturing the flow nodes (``@n``) and functions (``@f``) of ``grammar``;
    the chunker runs them in its own query, so the tree is walked once for both."""
    language = parser(grammar).language
    functions = sorted(t for t in _FUNCTIONS if _has_node_type(language, t))
    return ("[" + " ".join(f"({t})" for t in _FLOW[grammar]) + "] @n\n"
            "[" + " ".join(f"({t})" for t in functions) + "] @f")


@cache
def _query(grammar: str) -> tree_sitter.Query:
    return tree_sitter.Query(parser(grammar).language, tree_patterns(grammar))


def _has_node_type(language: tree_sitter.Language, name: str) -> bool:
    return language.id_for_node_kind(name, True) not in (None, 0)


def _type_text(text: str) -> str:
    """``Optional[List[int]]`` and ``typing.List[ int ]`` read alike: ``list int``."""
    text = text.replace("typing.", "").replace("Optional[", "")
    return " ".join(_IDENTIFIER.findall(text)).lower()


def structure_ids(code: str, grammar: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``interface`` and ``structure`` feature ids (multisets) of ``code`` parsed alone;
    empty for text without a grammar."""
    if grammar not in _FLOW:
        return _NO_IDS, _NO_IDS
    data = code.encode("utf-8")
    return TreeFeatures.of_tree(parser(grammar).parse(data), grammar).chunk_ids([(0, len(data), code)])[0]


class TreeFeatures:
    """The flow and function nodes of one parsed file, found once, so that each chunk's
    features are read from the chunker's tree instead of a second parse of the chunk's text.

    A chunk's features are those of the nodes inside its byte range.  Parsed alone, its text
    gives the same nodes (a definition does not parse differently out of context; checked
    on every chunk of sqlalchemy), so indexed chunks and queries agree.

    ``counts`` is the plain definition of a chunk's features; ``chunk_ids`` gives the same
    features hashed, for all of a file's chunks at once.  Each flow node's ancestors are
    found once for the file; a node's two nearest enclosing flow nodes within a chunk are
    its file's ones that start inside the chunk (a class repeats its methods' nodes: they
    are not walked again), so a chunk's ``structure`` ids are a few numpy gathers."""

    def __init__(self, captures: dict[str, list[tree_sitter.Node]], grammar: str) -> None:
        """``captures``: what the ``tree_patterns`` of ``grammar`` captured in the file."""
        self.grammar = grammar
        nodes = captures.get("n", [])
        n = len(nodes)
        starts = np.fromiter(map(_START, nodes), np.int64, n)
        ends = np.fromiter(map(_END, nodes), np.int64, n)
        kinds = np.fromiter(map(_kind_index(grammar).__getitem__, map(_TYPE, nodes)), np.int64, n)
        order = np.lexsort((-ends, starts))  # outer before inner; nodes with one range keep the query's order
        self._flow_start, self._flow_end, self._kinds = starts[order], ends[order], kinds[order]
        # Each node's nearest enclosing flow node (-1: none): ``_structure``'s walk, once.
        parent = [-1] * n
        open_nodes: list[int] = []
        open_ends: list[int] = []
        for x, (start, end) in enumerate(zip(self._flow_start.tolist(), self._flow_end.tolist(), strict=True)):
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
                open_nodes.pop()
            if open_nodes:
                parent[x] = open_nodes[-1]
            open_nodes.append(x)
            open_ends.append(end)
        self._parent = np.array(parent, np.int64)
        self._grandparent = np.where(self._parent >= 0, self._parent[self._parent], -1) if n else self._parent
        # Every node's path id with 0, 1 and 2 enclosing nodes, then the file's 3-node runs:
        # ``chunk_ids`` picks from these by index.
        k = self._kinds
        kp = np.where(self._parent >= 0, k[self._parent], -1) if n else k
        kg = np.where(self._grandparent >= 0, k[self._grandparent], -1) if n else k
        paths, runs = _path_ids(grammar), _run_ids(grammar)
        self._candidates = np.concatenate([paths[0, 0, k], paths[0, kp + 1, k], paths[kg + 1, kp + 1, k],
                                           runs[k[:-2], k[1:-1], k[2:]]])
        self._flow: list[tuple[int, int, str]] | None = None  # (start, end, type) for ``counts``
        functions = sorted(captures.get("f", []), key=lambda n: (n.start_byte, -n.end_byte))
        self._function_start = [n.start_byte for n in functions]
        self._function_end = [n.end_byte for n in functions]
        self._functions = functions
        self._interfaces: dict[int, Counter] = {}  # function index -> its features (a class holds its methods)
        self._interface_ids: dict[int, np.ndarray] = {}

    @staticmethod
    def of_tree(tree: tree_sitter.Tree, grammar: str) -> TreeFeatures:
        return TreeFeatures(tree_sitter.QueryCursor(_query(grammar)).captures(tree.root_node), grammar)

    def counts(self, start: int, end: int, code: str) -> tuple[Counter, Counter]:
        """The ``interface`` and ``structure`` counters of the bytes ``start:end``, whose text is ``code``."""
        if self._flow is None:
            names = _FLOW[self.grammar]
            self._flow = list(zip(self._flow_start.tolist(), self._flow_end.tolist(),
                                  map(names.__getitem__, self._kinds.tolist()), strict=True))
        i, j = np.searchsorted(self._flow_start, [start, end]).tolist()
        structure = _structure([node for node in self._flow[i:j] if node[1] <= end])
        interface: Counter = Counter()
        for k in self._functions_in(start, end):
            interface.update(self._interface(k))
        interface.update(_sphinx(code, self.grammar))
        return interface, structure

    def chunk_ids(self, spans: list[tuple[int, int, str]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``interface`` and ``structure`` feature ids (multisets, hashed as
        ``feature_ids(counts(...), "i:")`` and ``"x:"``) of each span (start byte, end byte, its text)."""
        m = len(spans)
        lo = np.fromiter((s[0] for s in spans), np.int64, m)
        hi = np.fromiter((s[1] for s in spans), np.int64, m)
        first, last = np.searchsorted(self._flow_start, lo), np.searchsorted(self._flow_start, hi)
        n_nodes = last - first
        n_runs = np.maximum(n_nodes - 2, 0)
        # One segment per span: its nodes' path ids, then its runs' ids.
        size = n_nodes + n_runs
        offsets = np.zeros(m + 1, np.int64)
        np.cumsum(size, out=offsets[1:])
        at = np.arange(offsets[-1]) - np.repeat(offsets[:-1], size)  # position in the segment
        top, count = np.repeat(first, size), np.repeat(n_nodes, size)
        path = at < count
        node = top + np.where(path, at, at - count)
        depth = (self._parent[node] >= top).astype(np.int64) + (self._grandparent[node] >= top)
        n = len(self._flow_start)
        ids = self._candidates[np.where(path, depth * n + node, 3 * n + node)]
        # A node that starts inside a span but ends past it (a call around a JavaScript
        # callback) is left out of it: such a span's ancestors are not a prefix, so it takes
        # the plain path.
        crossing = self._flow_end[node[path]] > np.repeat(hi, n_nodes)
        plain = set(np.repeat(np.arange(m), n_nodes)[crossing].tolist())
        out = []
        for c, (start, end, code) in enumerate(spans):
            if c in plain:
                interface, structure = self.counts(start, end, code)
                out.append((feature_ids(interface, "i:"), feature_ids(structure, "x:")))
                continue
            parts = [self._function_ids(k) for k in self._functions_in(start, end)]
            sphinx = _sphinx(code, self.grammar)
            if sphinx:
                parts.append(feature_ids(sphinx, "i:"))
            interface = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else _NO_IDS
            out.append((interface, ids[offsets[c]:offsets[c + 1]]))
        return out

    def _functions_in(self, start: int, end: int) -> list[int]:
        """Indexes of the functions within the bytes ``start:end``."""
        return [k for k in range(bisect_left(self._function_start, start), bisect_left(self._function_start, end))
                if self._function_end[k] <= end]

    def _interface(self, k: int) -> Counter:
        counts = self._interfaces.get(k)
        if counts is None:
            function = self._functions[k]
            counts = self._interfaces[k] = _interface(function.child_by_field_name("parameters"),
                                                      function.child_by_field_name("return_type"))
        return counts

    def _function_ids(self, k: int) -> np.ndarray:
        """``_interface(k)`` hashed.  Remembered by the parameters' and return type's text:
        most signatures recur (``(self)``, ``(self, other)``), and the same text parses to
        the same nodes (unless it needed error recovery)."""
        ids = self._interface_ids.get(k)
        if ids is None:
            function = self._functions[k]
            params, returns = function.child_by_field_name("parameters"), function.child_by_field_name("return_type")
            key = None if function.has_error else (self.grammar, params and params.text, returns and returns.text)
            ids = _signatures.get(key) if key is not None else None
            if ids is None:
                counts = self._interfaces.get(k) or _interface(params, returns)
                ids = feature_ids(counts, "i:")
                if key is not None:
                    if len(_signatures) >= _SIGNATURES:
                        _signatures.clear()
                    _signatures[key] = ids
            self._interface_ids[k] = ids
        return ids


_NO_IDS = np.zeros(0, np.uint32)
_SIGNATURES = 100_000
_signatures: dict[tuple[str, bytes | None, bytes | None], np.ndarray] = {}  # see ``_function_ids``
_START, _END, _TYPE = attrgetter("start_byte"), attrgetter("end_byte"), attrgetter("type")


@cache
def _kind_index(grammar: str) -> dict[str, int]:
    return {name: i for i, name in enumerate(_FLOW[grammar])}


@cache
def _path_ids(grammar: str) -> np.ndarray:
    """``[g + 1, p + 1, k]``: the id of the path feature of a node of type ``k`` under a
    ``p`` under a ``g`` (indexes into the grammar's flow types; -1: no such node)."""
    names = _FLOW[grammar]
    m = len(names)
    table = np.zeros((m + 1, m + 1, m), np.uint32)
    for g, p, k in np.ndindex(*table.shape):
        outer = [names[i - 1] for i in (g, p) if i > 0]
        table[g, p, k] = hash_feature("x:p:" + ">".join((*outer, names[k])))
    return table


@cache
def _run_ids(grammar: str) -> np.ndarray:
    """``[a, b, c]``: the id of the run feature of three flow nodes of types ``a b c`` in a row."""
    names = _FLOW[grammar]
    m = len(names)
    table = np.zeros((m, m, m), np.uint32)
    for a, b, c in np.ndindex(*table.shape):
        table[a, b, c] = hash_feature(f"x:s:{names[a]} {names[b]} {names[c]}")
    return table


def _sphinx(code: str, grammar: str) -> Counter:
    """The parameter and return types a Python docstring gives in Sphinx fields."""
    counts: Counter = Counter()
    if grammar == "python":
        for name, type_text in _SPHINX_TYPE.findall(code):
            counts[f"t:{name}:{_type_text(type_text)}"] += 1
        for type_text in _SPHINX_RTYPE.findall(code):
            counts["r:" + _type_text(type_text)] += 1
    return counts


def _structure(nodes: list[tuple[int, int, str]]) -> Counter:
    """``nodes``: (start byte, end byte, type), sorted by start, outer before inner."""
    counts: Counter = Counter()
    open_ends: list[int] = []  # end bytes of the enclosing flow nodes, outermost first
    open_types: list[str] = []
    sequence: list[str] = []
    for start, end, kind in nodes:
        while open_ends and open_ends[-1] <= start:
            open_ends.pop()
            open_types.pop()
        counts["p:" + ">".join((*open_types[-2:], kind))] += 1
        sequence.append(kind)
        open_ends.append(end)
        open_types.append(kind)
    for i in range(len(sequence) - 2):
        counts["s:" + " ".join(sequence[i:i + 3])] += 1
    return counts


def _interface(params: tree_sitter.Node | None, returns: tree_sitter.Node | None) -> Counter:
    """The ``interface`` features of one function, from its parameters and return type nodes."""
    counts: Counter = Counter()
    names = []
    for param in params.named_children if params is not None else ():
        name_node, type_node = _parameter_parts(param)
        if name_node is None:
            continue
        name = name_node.text.decode("utf-8", "replace")
        if name in _SELF:
            continue
        names.append(name)
        counts["n:" + name] += 1
        if type_node is not None:
            counts[f"t:{name}:{_type_text(type_node.text.decode('utf-8', 'replace'))}"] += 1
    counts[f"c:{len(names)}"] += 1
    if returns is not None:
        counts["r:" + _type_text(returns.text.decode("utf-8", "replace"))] += 1
    return counts


def _parameter_parts(param: tree_sitter.Node) -> tuple[tree_sitter.Node | None, tree_sitter.Node | None]:
    """(name, type) of one parameter node, in any of the grammars' spellings."""
    if param.type == "identifier":
        return param, None
    name = param.child_by_field_name("name") or param.child_by_field_name("pattern")
    if name is None:  # Python's typed_parameter has its name as the first child, unlabelled
        name = next((c for c in param.named_children if c.type == "identifier"), None)
    if name is not None and name.type != "identifier":
        name = None  # a destructuring pattern or *args: no single name to compare
    type_node = param.child_by_field_name("type")
    if type_node is not None and type_node.type == "type_annotation":  # TypeScript wraps ": T"
        type_node = type_node.named_children[0] if type_node.named_children else None
    return name, type_node
