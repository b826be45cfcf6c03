from lsp_server.blocks import (
    BlockRequest,
    block_stop_rule,
    empty_block_at_cursor,
    starts_at_module_level,
    trim_to_valid,
)
from lsp_server.cache import TypeAheadCache
from lsp_server.postprocess import (
    balance_brackets,
    clean_block,
    clean_single_line,
    cut_repetition,
    extends_a_whole_name,
    known_name_for,
)


def test_repetition_loops_are_cut_but_code_is_not():
    assert cut_repetition("urllib3.2.2.2.2.2.2.2") == "urllib3.2"
    assert cut_repetition("x = [0, 0, 0, 0]") == "x = [0, 0, 0, 0]"
    assert cut_repetition("# ==========") == "# =========="
    assert cut_repetition("self.x = x") == "self.x = x"


def test_never_duplicates_the_rest_of_the_line():
    assert clean_single_line("a, b)", ")", "foo(") == "a, b"
    assert clean_single_line("path, 'r') as fh:", ") as fh:", "open(") == "path, 'r'"
    assert clean_single_line("x, y):", "):", "def f(") == "x, y"
    assert clean_single_line(")", ")", "f(") == ""


def test_brackets_balance_against_the_line():
    assert balance_brackets("a, b))", "foo(", "") == "a, b)"
    assert balance_brackets("x[0])", "f(", ")") == "x[0]"
    assert balance_brackets("(1, 2)", "x = ", "") == "(1, 2)"


def test_a_name_the_document_uses_is_not_glued_into_one_it_never_uses():
    source = "import pickle\n\n\ndef f(r):\n    result = r\n    pr = "
    assert extends_a_whole_name(source + "pickle", "\n", "t_response(r)")
    assert not extends_a_whole_name(source + "pickle", "\n", ".loads(r)")  # the name ends there
    assert not extends_a_whole_name(source + "pick", "\n", "le.loads(r)")  # a half-typed name is finished
    assert not extends_a_whole_name(source + "r", "\n", "esult")  # into a name the document uses
    assert not extends_a_whole_name(source + "r", "\n", "epr(r)")  # or a builtin
    assert not extends_a_whole_name("pr = pickle", "\n", "t_response(r)")  # a name used nowhere else
    assert extends_a_whole_name("pr = pickle", "\nprint(pickle)\n", "t_response(r)")  # after the cursor too


def test_a_half_typed_word_finished_into_a_name_used_nowhere_gets_a_name_the_code_base_uses():
    workspace = {"MaxRetryError", "MaxRetries", "Session", "SessionRedirectMixin", "get", "getLogger"}

    def names(start: str) -> list[str]:
        return sorted(n for n in workspace if n.startswith(start))

    def known(prefix: str, text: str, suffix: str = "\n") -> str | None:
        return known_name_for(prefix, suffix, text, names)

    # The workspace's names: the shortest that goes on from what is typed.
    assert known("    except MaxRet", "ailsError:") == "MaxRetries"
    assert known("s = requests.Sess", "r(url)") == "Session"
    assert known("s = requests.Sess", "(url)") == "Session"  # the typed part alone is no name either
    # The document's names come first, the one it uses most.
    assert known("try:\n    f()\nexcept MaxRetryError:\n    pass\nexcept MaxRet", "ailsError:") == "MaxRetryError"
    # Nothing to change: the model's name is known (to the workspace, the document, Python) ...
    assert known("    except MaxRet", "ryError:") is None
    assert known("log = logging.get", "Logger(__name__)") is None
    assert known("x = compute(1)\ny = comp", "ute(2)") is None
    assert known("    if isinst", "ance(x, int):") is None
    # ... nothing known goes on from the typed part, or too little is typed to tell ...
    assert known("    value = Zork", "le()") is None
    assert known("    value = S", "xyz()") is None
    # ... the typed part is a whole name the document uses (the word may be done) ...
    assert known("s = Sess\nt = Sess", "ionz") is None
    # ... the line defines the name: a new one ...
    assert known("def Sess", "ion_factory():") is None
    assert known("class MaxRet", "riesExceeded(Exception):") is None
    # ... or the word is in a comment or a string: a word, not a name.
    assert known("    # give up after MaxRet", "ails") is None
    assert known('    log("a Sess', 'r")') is None
    assert known('    s = f("x", Sess', "r)") == "Session"  # after a closed string: code again


def test_whitespace_only_is_never_returned():
    assert clean_single_line("   \t", "") == ""
    assert clean_block("\n\n   \n", "") == ""


def test_block_drops_lines_the_suffix_already_has():
    block = "    x = 1\n    return x\n\n\ndef main():"
    assert clean_block(block, "\n\ndef main():\n    pass\n") == "    x = 1\n    return x"


def test_empty_body_detection_by_syntax():
    pre = "import os\n\n\ndef read(path):\n    "
    assert empty_block_at_cursor(pre, "\n\n\ndef main():\n    pass\n", "python") == BlockRequest(0, "    ")
    # A body that already has statements is not empty: single-line completion there.
    assert empty_block_at_cursor(pre, "\n    return 1\n", "python") is None
    # Mid-line, or a line that does not follow a block opener: no block.
    assert empty_block_at_cursor("x = 1\n", "\n", "python") is None
    assert empty_block_at_cursor("def f():\n    ret", "\n", "python") is None
    js = "function f(a) {\n  "
    assert empty_block_at_cursor(js, "\n}\n", "javascript") is not None
    assert empty_block_at_cursor(js, "\n  return a;\n}\n", "javascript") is None


def test_block_stop_rule_ends_at_the_dedent():
    stop = block_stop_rule(BlockRequest(0, "    "), max_lines=12)
    text = "x = 1\n    return x\n\ndef other():\n"
    cut = stop(text)
    assert text[:cut] == "x = 1\n    return x\n"
    assert stop("x = 1\n    y = 2") is None  # still inside the body, last line growing
    assert block_stop_rule(BlockRequest(0, "    "), max_lines=2)("a\n    b\n    c\n") == len("a\n    b")


def test_trim_to_valid_drops_broken_tail_lines():
    pre, suf = "def f(x):\n    ", "\n\n\ndef g():\n    pass\n"
    assert trim_to_valid(pre, "y = x + 1\n    return y", suf, "python") == "y = x + 1\n    return y"
    assert trim_to_valid(pre, "y = x + 1\n    return (y", suf, "python") == "y = x + 1"


def test_type_ahead_cache_serves_typed_through_suggestions():
    cache = TypeAheadCache(capacity=2)
    cache.put("a", "x = os.", "\n", "path.join(a, b)")
    assert cache.get("a", "x = os.", "\n") == "path.join(a, b)"
    assert cache.get("a", "x = os.pa", "\n") == "th.join(a, b)"
    assert cache.get("a", "x = os.pe", "\n") is None  # typed something else
    assert cache.get("a", "x = os.pa", "\nmore") is None  # the suffix changed
    assert cache.get("b", "x = os.pa", "\n") is None
    cache.put("a", "1", "", "x")
    cache.put("a", "2", "", "y")
    assert cache.get("a", "x = os.", "\n") is None  # evicted (LRU)


def test_an_unfinished_docstring_is_closed_at_the_body_indent():
    pre, suf = "def read(path):\n    ", "\n\n\ndef g():\n    pass\n"
    assert trim_to_valid(pre, '"""Read a file.\n    Returns its lines.', suf, "python") == \
        '"""Read a file.\n    Returns its lines.\n    """'


def test_deeply_nested_code_around_a_block_is_trimmed_without_recursing():
    """Thousands of nested brackets or blocks with an error deep inside: the parse tree is
    that deep, and a recursive walk over it overflowed Python's stack."""
    for depth in (600, 5000):
        suffix = "\nx = " + "(" * depth + "1 + " + ")" * depth + "\n"
        assert trim_to_valid("def f():\n    ", "return 1\n", suffix, "python") == "return 1\n"
        prefix = "function f() {\n" + "if (a) {\n" * depth
        assert trim_to_valid(prefix, "x = ;\n", "\n" + "}\n" * depth + "}\n", "javascript") == ""


def test_a_blank_line_at_module_level_takes_no_indentation():
    """Where Python allows no indentation (column 0, after column-0 code that opens no block,
    in no bracket or string), a suggestion must start with code, not blanks."""
    assert starts_at_module_level("", "\nimport os\n", "python")
    assert starts_at_module_level('__version__ = "1.0"\n', '\n__author__ = "Ada"\n', "python")
    assert starts_at_module_level("x = 1\n# a note\n\n", "\n", "python")
    assert starts_at_module_level("@overload\n", "\n", "python")
    for prefix, suffix in [
        ("def f():\n", "\n"),  # the body comes next
        ("def f():\n    x = 1\n", "\n    return x\n"),  # the user may continue the block
        ("X = [\n1,\n", "\n]\n"),  # inside brackets
        ('"""Notes\nmore\n', '\n"""\n'),  # inside a string
        ("x = 1\nimp", "\n"),  # the line has text already
        ("x = 1\n", "y\n"),  # ... after the cursor too
    ]:
        assert not starts_at_module_level(prefix, suffix, "python"), (prefix, suffix)
    assert not starts_at_module_level("", "\n", "javascript")
