"""Meaning-preserving rewrites of Python functions: the positives of contrastive training.

Each rewrite changes how a function reads but not what it computes, which is exactly what
the code encoder must learn to look through (``training/encoder_train.py``):

* rename bound identifiers (arguments, locals, loop variables, the function's own name)
  consistently, to names in another style or borrowed from other code;
* drop docstrings; drop or add comments;
* swap adjacent independent statements (neither reads nor writes what the other writes);
* turn ``xs = []; for x in it: xs.append(f(x))`` into ``xs = [f(x) for x in it]`` and back;
* reformat (``ast.unparse`` normalises spacing and quotes; indentation width varies);
* anonymise (``anonymise``) as the anonymised clone set does: the outermost functions or
  methods become ``method0``, ``method1``... everywhere they are named, numbered classes
  (``Solution2``) lose their number.

Built on the standard library's ``ast`` (``ast.unparse`` is the reformatter and drops
comments for free), so no extra dependency; code that does not parse is left as it is.
"""

from __future__ import annotations

import ast
import builtins
import random
import re
import textwrap
from dataclasses import dataclass

_KEEP = frozenset(dir(builtins)) | {"self", "cls", "__class__"}


@dataclass(frozen=True)
class RewriteConfig:
    rename_prob: float = 0.7  # rename some identifiers at all
    rename_share: float = 0.7  # share of bound names renamed when renaming
    drop_doc_prob: float = 0.5
    swap_prob: float = 0.5  # per independent adjacent pair
    loop_form_prob: float = 0.7  # per loop/comprehension that can change form
    add_comment_prob: float = 0.2
    indent_choices: tuple[int, ...] = (4, 4, 2)


def _bound_names(tree: ast.AST) -> list[str]:
    """Names the code binds itself (so renaming them everywhere keeps the meaning)."""
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, ast.arg):
            names[node.arg] = None
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names[node.id] = None
    return [n for n in names if n not in _KEEP and not n.startswith("__")]


def _styles(name: str, rng: random.Random, pool: list[str], index: int) -> str:
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)] or [name.lower()]
    choice = rng.random()
    if choice < 0.3 and pool:
        return rng.choice(pool)
    if choice < 0.45:
        return words[0] + "".join(w.title() for w in words[1:])  # camelCase
    if choice < 0.6:
        return "_".join(words)  # snake_case
    if choice < 0.75:
        return words[0][:1] + (str(index) if rng.random() < 0.5 else "")  # terse
    return f"{rng.choice(('var', 'v', 'x', 'tmp', 'val'))}{index}"


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast visitor naming


def rename(tree: ast.AST, rng: random.Random, pool: list[str], share: float) -> None:
    names = _bound_names(tree)
    taken = set(names)
    mapping = {}
    for i, name in enumerate(names):
        if rng.random() >= share:
            continue
        new = _styles(name, rng, pool, i)
        if new in taken or not new.isidentifier() or new in _KEEP:
            new = f"{new}_{i}"
        taken.add(new)
        mapping[name] = new
    _Renamer(mapping).visit(tree)


def drop_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]


def _reads_writes(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    reads, writes = set(), set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name):
            (writes if isinstance(node.ctx, (ast.Store, ast.Del)) else reads).add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            writes.add(ast.unparse(node))
    return reads, writes


def _independent(a: ast.stmt, b: ast.stmt) -> bool:
    simple = (ast.Assign, ast.AnnAssign, ast.AugAssign)
    if not (isinstance(a, simple) and isinstance(b, simple)):
        return False
    if any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.NamedExpr)) for s in (a, b) for n in ast.walk(s)):
        return False  # a call may have effects the names do not show
    ra, wa = _reads_writes(a)
    rb, wb = _reads_writes(b)
    return not (wa & (rb | wb) or wb & ra)


def swap_statements(tree: ast.AST, rng: random.Random, prob: float) -> None:
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            i = 0
            while i + 1 < len(body):
                if _independent(body[i], body[i + 1]) and rng.random() < prob:
                    body[i], body[i + 1] = body[i + 1], body[i]
                    i += 2
                else:
                    i += 1


def _append_loop(init: ast.stmt, loop: ast.stmt) -> ast.Assign | None:
    """``xs = []`` + ``for t in it: [if c:] xs.append(e)`` -> ``xs = [e for t in it if c]``."""
    if not (isinstance(init, ast.Assign) and len(init.targets) == 1 and isinstance(init.targets[0], ast.Name)
            and isinstance(init.value, ast.List) and not init.value.elts):
        return None
    if not (isinstance(loop, ast.For) and not loop.orelse and len(loop.body) == 1):
        return None
    name, body, conds = init.targets[0].id, loop.body[0], []
    if isinstance(body, ast.If) and not body.orelse and len(body.body) == 1:
        conds, body = [body.test], body.body[0]
    if not (isinstance(body, ast.Expr) and isinstance(body.value, ast.Call)
            and isinstance(body.value.func, ast.Attribute) and body.value.func.attr == "append"
            and isinstance(body.value.func.value, ast.Name) and body.value.func.value.id == name
            and len(body.value.args) == 1 and not body.value.keywords):
        return None
    if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(loop.iter)):
        return None
    comp = ast.ListComp(body.value.args[0], [ast.comprehension(loop.target, loop.iter, conds, 0)])
    return ast.Assign([ast.Name(name, ast.Store())], comp, lineno=init.lineno)


def _comprehension_loop(stmt: ast.stmt) -> list[ast.stmt] | None:
    """``xs = [e for t in it if c]`` -> the loop form (one generator only)."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.ListComp) and len(stmt.value.generators) == 1
            and not stmt.value.generators[0].is_async):
        return None
    name, gen = stmt.targets[0].id, stmt.value.generators[0]
    append: ast.stmt = ast.Expr(ast.Call(ast.Attribute(ast.Name(name, ast.Load()), "append", ast.Load()),
                                         [stmt.value.elt], []))
    for cond in reversed(gen.ifs):
        append = ast.If(cond, [append], [])
    return [ast.Assign([ast.Name(name, ast.Store())], ast.List([], ast.Load()), lineno=stmt.lineno),
            ast.For(gen.target, gen.iter, [append], [], lineno=stmt.lineno)]


def swap_loop_forms(tree: ast.AST, rng: random.Random, prob: float) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        out, i = [], 0
        while i < len(body):
            if i + 1 < len(body) and (comp := _append_loop(body[i], body[i + 1])) is not None and rng.random() < prob:
                out.append(comp)
                i += 2
                continue
            if (loop := _comprehension_loop(body[i])) is not None and rng.random() < prob:
                out.extend(loop)
            else:
                out.append(body[i])
            i += 1
        node.body = out


def _reindent(text: str, width: int) -> str:
    if width == 4:
        return text
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        out.append(" " * ((len(line) - len(stripped)) // 4 * width) + stripped)
    return "\n".join(out)


_COMMENTS = ("# edge case", "# main loop", "# update the result", "# TODO: simplify", "# check bounds",
             "# base case", "# keep track of what we have seen", "# done")


def _add_comments(text: str, rng: random.Random) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if stripped and rng.random() < 0.15 and not stripped.startswith(("def ", "class ", "@")):
            out.append(" " * (len(line) - len(stripped)) + rng.choice(_COMMENTS))
        out.append(line)
    return "\n".join(out)


def rewrite(code: str, rng: random.Random, pool: list[str], cfg: RewriteConfig | None = None) -> str:
    """A random meaning-preserving rewrite of ``code`` (or ``code`` itself if it does not parse)."""
    cfg = cfg or RewriteConfig()
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError, RecursionError):
        return code
    try:
        if rng.random() < cfg.rename_prob:
            rename(tree, rng, pool, cfg.rename_share)
        if rng.random() < cfg.drop_doc_prob:
            drop_docstrings(tree)
        swap_statements(tree, rng, cfg.swap_prob)
        swap_loop_forms(tree, rng, cfg.loop_form_prob)
        text = ast.unparse(ast.fix_missing_locations(tree))
    except (RecursionError, ValueError, AttributeError, TypeError):
        return code
    if rng.random() < cfg.add_comment_prob:
        text = _add_comments(text, rng)
    return _reindent(text, rng.choice(cfg.indent_choices))


_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)(?=\([^\n])", re.M)
_NUMBERED_CLASS = re.compile(r"^([ \t]*class[ \t]+[A-Za-z_]*[A-Za-z_])\d+\b", re.M)


def anonymise(code: str) -> str:
    """Rename as ``leetcode_dev.anon.jsonl`` does, text for text (formatting kept): the
    functions defined at the outermost ``def`` level (a class's methods, or a lone function)
    become ``method0``, ``method1``... in order of definition, every use of the name
    included (``self.helper(...)``); like the clone set's anonymiser, a ``def`` whose
    parameters start on the next line keeps its name; nested functions and private
    (``_x``) or dunder methods keep theirs;
    ``class Solution2`` becomes ``class Solution``.  The named and anonymised rows of the
    clone set differ in exactly this, so training on both views teaches the encoder to read
    the body rather than the problem's given method name."""
    defs = [(len(m.group(1).expandtabs()), m.group(2)) for m in _DEF.finditer(code)]
    if defs:
        outer = min(indent for indent, _ in defs)
        mapping: dict[str, str] = {}
        for indent, name in defs:
            if indent == outer and name not in mapping and not name.startswith("_"):
                mapping[name] = f"method{len(mapping)}"
        if mapping:
            code = re.sub(r"\b(" + "|".join(map(re.escape, mapping)) + r")\b", lambda m: mapping[m.group(1)], code)
    return _NUMBERED_CLASS.sub(r"\1", code)
