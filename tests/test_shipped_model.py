"""The model shipped in model/default: present, small, documented, and writing Python."""

import ast
import json

import pytest

from lsp_helpers import explain
from lsp_server.blocks import trim_to_valid
from lsp_server.client import running_server
from lsp_server.completion import repeated_lines
from lsp_server.settings import DEFAULT_MODEL_DIR
from model.config import MODEL_CONFIG_FILE
from model.engine import CompletionEngine, GenerationOptions, ModelLoadError
from model.prompt_format import completion_prompt

PROMPTS = [
    "import os\n\n\ndef list_python_files(folder):\n    return [name for name in os.listdir(folder) if name.",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.",
    "def read_text(path):\n    with open(path, encoding='utf-8') as fh:\n        return fh.",
    "import sys\n\n\ndef main(argv=None):\n    argv = sys.argv[1:] if argv is None else argv\n"
    "    if not argv:\n        print(",
    "def mean(values):\n    if not values:\n        raise ValueError('empty')\n    return sum(values) / ",
    "result = {}\nfor key, value in pairs:\n    result[key] = ",
    "import json\n\n\ndef save(path, data):\n    with open(path, 'w') as fh:\n        json.",
    "def is_even(n):\n    return n % 2 ",
]


def test_shipped_model_is_complete_small_and_documented():
    for name in ("model.bin", "config.json", "vocabulary.json", "tokenizer.json", "ghostline_model.json",
                 "MODEL_CARD.md"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    size = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.iterdir())
    assert size <= 60 * 1024 * 1024
    card = (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()
    for fact in ("tokens seen", "validation loss", "command", "excluded"):
        assert fact in card


def _compiles(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def test_completions_of_ordinary_python_look_like_python():
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    good = 0
    for prefix in PROMPTS:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
        text = engine.complete(prompt, GenerationOptions(max_tokens=32)).text
        # The completed line closes the statement: the file parses as Python.
        if text.strip() and _compiles(prefix + text + "\n"):
            good += 1
    assert good >= len(PROMPTS) // 2, f"only {good}/{len(PROMPTS)} completions made valid Python"


SOURCE = "import os\n\n\ndef count_lines(path):\n    \n\n\ndef main():\n    print(count_lines('x'))\n"


async def test_multiline_on_an_empty_function_body_returns_a_block_ending_at_the_body(workspace, options):
    uri = (workspace / "lines.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, SOURCE)
        explained = await explain(client, uri, 4, 4)
        assert explained.mode == "block"
        text = await client.inline(uri, 4, 4)
        assert text.strip()
        lines = text.split("\n")
        # Every following line stays inside the body: nothing dedents to the def's level.
        assert all(not row.strip() or len(row) - len(row.lstrip()) > 0 for row in lines[1:])
        prefix, suffix = SOURCE[: SOURCE.index("    \n") + 4], SOURCE[SOURCE.index("    \n") + 4:]
        assert trim_to_valid(prefix, text, suffix, "python") == text
        # Mid-line, the same server stays single-line.
        single = await client.protocol.send_request_async(
            "ghostline/explainPrompt", {"textDocument": {"uri": uri}, "position": {"line": 8, "character": 10}})
        assert single.mode == "line"


HALF_TYPED = [  # (text before the cursor, how the word the cursor is in must go on)
    ("def bump(x):\n    y = x + 1\n    ret", "urn"),
    ("class User:\n    def __init__(self, name):\n        self.na", "me"),
    # No one token finishes ``wrappin`` (`` w`` + ``rapp`` + ``in``): written again token by token.
    ("def wrap(text):\n    # helper for wrappin", "g"),
    # `` enumer`` is a token of its own, and after ``for i, item in`` the model ranks
    # `` enumerate`` 194th among all tokens, but 5.4 nats above `` enumer`` standing alone.
    ("def show(items):\n    for i, item in enumer", "ate("),
    ("def check(value):\n    return isinst", "ance("),
    # ``NotImplem`` is ``Not`` + ``Im`` + ``plem``: ``ented`` beats ``plem`` as typed, though
    # the likeliest tokens after ``Im`` alone make ``NotImplection``.
    ("def f(a):\n    raise NotImplem", "entedError"),
    ("def f(x):\n    prin", "t("),
]


def test_a_half_typed_word_is_finished_not_restarted():
    """With the cursor inside a word the tokenizer splits (``ret`` is ``re`` + ``t``), the
    model continues the word (``urn ...``) instead of starting a new one after it (``rett``)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    for prefix, rest in HALF_TYPED:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
        healed = engine.complete(prompt, GenerationOptions(max_tokens=16, heal=True))
        assert healed.text.startswith(rest), (prefix, healed.text)
        assert 0 < healed.confidence <= 1


def test_the_typed_half_of_a_word_does_not_count_against_the_confidence():
    """What the user typed is not the model's guess: a word the model finishes with
    certainty among the tokens that write the typed characters leaves the line's confidence
    to the rest of it (before, `` enumerate``'s 0.05 % of all the model's belief after
    ``for i, item in`` put the line at 0.16, near where ``minConfidence`` hides it)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    for prefix, rest in HALF_TYPED[3:5]:  # words finished with certainty, lines the model is sure of
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
        for beams in (1, 2):
            healed = engine.complete(prompt, GenerationOptions(max_tokens=16, heal=True, beam_size=beams))
            assert healed.text.startswith(rest) and healed.confidence > 0.5, (prefix, beams, healed)


def test_beam_search_gives_one_whole_line_and_still_finishes_the_word():
    """Beam search for single lines: each hypothesis ends at its line break, the answer is
    one line, its confidence is a probability, and a half-typed word is still finished."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    for prefix in PROMPTS:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
        beam = engine.complete(prompt, GenerationOptions(max_tokens=32, heal=True, beam_size=4))
        assert "\n" not in beam.text and beam.stop_reason in ("eol", "eot", "max_tokens"), (prefix, beam)
        assert 0 < beam.confidence <= 1 and 0 < beam.tokens <= 32
    for prefix, rest in HALF_TYPED:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
        assert engine.complete(prompt, GenerationOptions(max_tokens=16, heal=True, beam_size=2)).text.startswith(rest)
    # A budget of one token is the healed token alone, not an error.
    prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", HALF_TYPED[0][0], "\n")
    assert engine.complete(prompt, GenerationOptions(max_tokens=1, heal=True, beam_size=2)).text == "urn"


def test_a_line_ruled_out_is_replaced_by_the_next_best_beam():
    """A small model with nothing better to say writes the line above once more; the server
    rules that line out (``not_lines``) and beam search answers with its next best line,
    still one line, the half-typed word still finished."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    setup = "import requests\n\n\ndef setup():\n    session = requests.Session()\n    "
    for prefix in [setup, *PROMPTS[:4], setup + "session = req"]:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
        for beams in (2, 1):  # one beam: the greedy line the server asks for at ``beamSize: 1``
            first = engine.complete(prompt, GenerationOptions(max_tokens=32, heal=True, beam_size=beams)).text
            other = engine.complete(prompt, GenerationOptions(max_tokens=32, heal=True, beam_size=beams,
                                                              not_lines=(first.strip(),))).text
            assert other.strip() and other.strip() != first.strip() and "\n" not in other, (prefix, first, other)
            if prefix.endswith("req"):
                assert other.startswith("uests"), other
    above = "x = 1\n    session = requests.Session()\n\n"
    assert repeated_lines(above + "    session = req", "\n") == ("uests.Session()",)
    assert repeated_lines(above + "    other", "\n") == ()  # the typed text starts neither
    assert repeated_lines(above + "    ", "\n\n    session.close()\n") == ("session = requests.Session()",
                                                                         "session.close()")
    assert repeated_lines("call(\n    a,\n    ),\n    ", "\n") == ()  # brackets repeat: only lines with words count


def test_a_beam_line_stops_at_end_of_text():
    """The model may end the middle of a fill-in-the-middle prompt with end-of-text; the
    line stops there (beam search once ran on into a file separator and a path)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    mean = PROMPTS[4].split("\n")
    cases = [("import os\n\n\n", "\n"), ("\n".join(mean[:2]) + "\n", "\n" + "\n".join(mean[2:]) + "len(values)\n")]
    for prefix, suffix in cases:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, suffix)
        beam = engine.complete(prompt, GenerationOptions(max_tokens=48, heal=True, beam_size=2))
        assert "<|" not in beam.text and "site-packages" not in beam.text, (prefix, beam.text)
        assert beam.text.strip() and beam.stop_reason in ("eot", "eol")


def test_healing_leaves_a_cursor_at_the_start_of_a_line_alone():
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    prefix = PROMPTS[2].rsplit("\n", 1)[0] + "\n"
    prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
    plain = engine.complete(prompt, GenerationOptions(max_tokens=16))
    healed = engine.complete(prompt, GenerationOptions(max_tokens=16, heal=True))
    assert (healed.text, healed.tokens) == (plain.text, plain.tokens)


@pytest.mark.parametrize("beam_size", [1, 2])
async def test_the_server_finishes_the_word_at_the_cursor(workspace, options, beam_size):
    uri = (workspace / "bump.py").as_uri()
    source = "def bump(x):\n    y = x + 1\n    ret\n"
    async with running_server(workspace, {**options, "lineMemory": False, "beamSize": beam_size}) as client:
        client.open(uri, source)
        shown = await client.inline(uri, 2, 7)
        assert shown.startswith("urn")
        last = (await explain(client, uri, 2, 7)).suggestion  # explainPrompt says whose and how sure
        assert (last.text, last.source) == (shown, "model") and 0 < last.confidence <= 1


INDENTED = [
    ("class Pool:\n    def get(self, key):\n        conn = self.pools.get(\n            key,\n            None,\n"
     "        )\n        ", "\n\n    def put(self, key, conn):\n        self.pools[key] = conn\n"),
    ("def parse(text):\n    try:\n        value = int(text)\n    ", "\n        return None\n    return value\n"),
    ("import os\n\n\ndef walk(root):\n    for dirpath, dirnames, filenames in os.walk(root):\n        ", "\n"),
]


@pytest.mark.parametrize("beam_size", [1, 2])
def test_a_line_after_its_indentation_starts_with_code(beam_size):
    """With the cursor after a line's indentation, the model writes code at that
    indentation: not more blanks, not a closing bracket (it did both when the prompt
    ended in the indentation's token, which in training mostly came cut inside a longer
    run of blanks)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    for prefix, suffix in INDENTED:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, suffix)
        line = engine.complete(prompt, GenerationOptions(max_tokens=48, heal=True, beam_size=beam_size)).text
        assert line.strip() and not line[0].isspace() and line[0] not in ")]}", (prefix, line)


TRY_BODIES = [
    ("import os\n\ntry:\n    import simplejson as json\n",
     "\n    import json\n\n\ndef load(path):\n    return json.load(open(path))\n"),
    ("import os\n\ntry:\n    from lxml import etree\n", "\n    etree = None\n"),
]


@pytest.mark.parametrize("beam_size", [1, 2])
def test_a_line_at_column_0_fits_the_code_around_it(beam_size):
    """The cursor at column 0 under a ``try`` body, an indented block below: the line the
    model writes there starts at column 0 and the file parses (an ``except``, not another
    import or an indented ``def``)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    for prefix, suffix in TRY_BODIES:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, suffix)
        line = engine.complete(prompt, GenerationOptions(max_tokens=48, heal=True, beam_size=beam_size)).text
        assert line.strip() and not line[0].isspace() and _compiles(prefix + line + suffix), (prefix, line)


def test_an_empty_body_at_column_0_gets_an_indented_block():
    """An empty function body with the cursor at column 0 (an editor that does not indent):
    the block the model writes is indented as a body, not a blank line and a nested ``def``
    (it was, when the bare line break was forced as for a single line), nor module-level
    code (the shipped model's likeliest start there: the server asks for an indented one)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    prefix = "import os\n\n\ndef count_lines(path):\n"
    prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, "\n")
    block = engine.complete(prompt, GenerationOptions(max_tokens=64, single_line=False, heal=True,
                                                      indented=True)).text
    first = block.split("\n", 1)[0]
    assert first.strip() and first.startswith("    "), block


@pytest.mark.parametrize("beam_size", [1, 2])
def test_an_unindented_line_starts_with_code(beam_size):
    """``unindented``: the first token is the likeliest that starts with something other
    than a blank (the shipped model otherwise often indents a new module's first line)."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    for prefix, suffix in [("", "\nimport os\n\n\ndef main():\n    pass\n"),
                           ("import os\nimport sys\n\n", "\n\ndef main():\n    return 0\n")]:
        prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", prefix, suffix)
        line = engine.complete(prompt, GenerationOptions(max_tokens=48, heal=True, beam_size=beam_size,
                                                         unindented=True)).text
        assert line.strip() and not line[0].isspace(), (prefix, line)


async def test_the_server_does_not_indent_a_line_at_module_level(workspace, options):
    """A new module's first line, and the line after its imports, start at column 0 (the
    shipped model alone indents both)."""
    async with running_server(workspace, {**options, "lineMemory": False}) as client:
        for name, source, line in [("tool.py", "\nimport os\n\n\ndef main():\n    pass\n", 0),
                                   ("paths.py", "import os\n\n\n", 3)]:
            uri = (workspace / name).as_uri()
            client.open(uri, source)
            shown = await client.inline(uri, line, 0)
            assert shown.strip() and not shown[0].isspace(), (name, shown)


def test_a_middle_is_scored_only_when_the_model_sees_it_whole():
    from model.scoring import score_middles

    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    prompt = completion_prompt(engine.tokenizer, engine.special, "pkg/module.py", "def total(values):\n", "\n")
    valid, garbled = score_middles(engine, prompt.ids, ["    return sum(values)", "    return values sum ) ("],
                                   max_len=engine.max_seq_len)
    assert valid.logprob > garbled.logprob and valid.tokens > 1
    assert score_middles(engine, prompt.ids, ["    x = [" + "1, " * 2000 + "]"], max_len=engine.max_seq_len) == []


PRAGMA_SOURCE = "import os\n\n\ndef f(x):\n    y = cast(int, g(x))  \n    return y\n"


async def test_the_server_offers_code_where_the_model_writes_a_pragma(workspace, options):
    """After ``y = cast(int, g(x))  `` the shipped model's likeliest line is a type-ignore pragma, which
    annotates nothing there: the server asks again for code (``no_comments``)."""
    from lsp_server.postprocess import has_pragma

    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    prefix, suffix = PRAGMA_SOURCE.split("\n    return y")
    prompt = completion_prompt(engine.tokenizer, engine.special, "f.py", prefix, "\n    return y" + suffix)
    written = engine.complete(prompt, GenerationOptions(heal=True, beam_size=2)).text
    assert has_pragma(written), written
    without = engine.complete(prompt, GenerationOptions(heal=True, beam_size=2, no_comments=True)).text
    assert without.strip() and "#" not in without
    uri = (workspace / "f.py").as_uri()
    async with running_server(workspace, {**options, "lineMemory": False}) as client:
        client.open(uri, PRAGMA_SOURCE)
        shown = await client.inline(uri, 4, len("    y = cast(int, g(x))  "))
    assert shown.strip() and "#" not in shown, shown


STYLE_SOURCE = "class Style:\n    pass\n\n\nclass FlaskyStyle(Style\n    pass\n"


async def test_the_server_does_not_glue_a_new_name_onto_one_the_document_uses(workspace, options):
    """After ``class FlaskyStyle(Style`` the 2026-12-03 model went on with the name (``Stylet``),
    a name used nowhere, and the server asks again for what follows the whole name; the
    GPU-trained model writes ``):`` by itself.  Asked for what follows a whole word, the
    engine never continues it, and the server shows no glued name; a half-typed name is
    still finished."""
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    line = "class FlaskyStyle(Style"
    prefix, suffix = STYLE_SOURCE.split("(Style\n")
    prefix += "(Style"
    prompt = completion_prompt(engine.tokenizer, engine.special, "f.py", prefix, "\n" + suffix)
    after = engine.complete(prompt, GenerationOptions(heal=True, beam_size=2, word_ended=True)).text
    assert after and not (after[0].isalnum() or after[0] == "_"), after
    uri = (workspace / "f.py").as_uri()
    async with running_server(workspace, {**options, "lineMemory": False}) as client:
        client.open(uri, STYLE_SOURCE)
        shown = await client.inline(uri, 4, len(line))
        assert shown and not (shown[0].isalnum() or shown[0] == "_"), shown
        client.open(uri, STYLE_SOURCE.replace("(Style\n", "(Sty\n"))
        assert (await client.inline(uri, 4, len("class FlaskyStyle(Sty"))).startswith("le")


NET_SOURCE = '''import requests


def open_session(retries):
    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retries))
    return session
'''


async def test_a_half_typed_word_is_finished_into_a_name_the_workspace_uses(workspace, options):
    """After ``requests.adapters.HTTPAd`` the shipped model writes ``e`` (``HTTPAde``, a
    name used nowhere); another file of the workspace uses ``HTTPAdapter``, and the server
    asks the model again with that name written: the line goes on after it."""
    (workspace / "net.py").write_text(NET_SOURCE)
    line = "    adapter = requests.adapters.HTTPAd"
    source = f"import requests\n\n\ndef fetch(url, retries):\n{line}"
    engine = CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")
    prompt = completion_prompt(engine.tokenizer, engine.special, "client.py", source, "\n")
    written = engine.complete(prompt, GenerationOptions(heal=True, beam_size=2, word="HTTPAdapter"))
    assert written.text.startswith("apter") and 0 < written.confidence <= 1, written
    # A name that does not go on from the typed part is no start: the model's own line.
    assert engine.complete(prompt, GenerationOptions(heal=True, beam_size=2, word="Session")).text == \
        engine.complete(prompt, GenerationOptions(heal=True, beam_size=2)).text
    uri = (workspace / "client.py").as_uri()
    async with running_server(workspace, {**options, "lineMemory": False}) as client:
        client.open(uri, source + "\n")
        assert (await client.inline(uri, 4, len(line))).startswith("apter")


async def test_the_models_sure_line_replaces_line_memorys_unsure_one(workspace, options):
    """Line memory's only candidate for ``port: `` comes from another class's method and it
    is unsure of it; the model, sure of its own line, is shown instead (``secondOpinionBelow``
    0 keeps line memory's)."""
    (workspace / "server.py").write_text(
        "class Server:\n    def listen(self, port: Port, backlog: Backlog) -> None:\n        pass\n")
    uri = (workspace / "client.py").as_uri()
    line = "    def connect(self, host: str, port: "
    source = f"class Client:\n{line}\n"
    shown = {}
    for below in (0.2, 0.0):
        async with running_server(workspace, {**options, "secondOpinionBelow": below}) as client:
            client.open(uri, source)
            shown[below] = await client.inline(uri, 1, len(line))
            explained = await explain(client, uri, 1, len(line))
            assert explained.lineMemory == "Port, backlog: Backlog) -> None:"
            assert explained.secondOpinion == (below > 0)
            assert (explained.suggestion.source, explained.suggestion.text) == \
                (("model", shown[below]) if below else ("line memory", explained.lineMemory))
    assert shown[0.0] == "Port, backlog: Backlog) -> None:"
    assert shown[0.2] != shown[0.0] and shown[0.2].endswith(") -> None:"), shown


def _shipped_model_with(tmp_path, **fields):
    """The shipped model's files (linked) with these fields changed in its ghostline_model.json."""
    model = tmp_path / "model"
    model.mkdir()
    for f in DEFAULT_MODEL_DIR.iterdir():
        if f.name != MODEL_CONFIG_FILE:
            (model / f.name).symlink_to(f)
    config = json.loads((DEFAULT_MODEL_DIR / MODEL_CONFIG_FILE).read_text())
    (model / MODEL_CONFIG_FILE).write_text(json.dumps({**config, **fields}))
    return model


async def test_a_model_sure_only_from_a_higher_confidence_leaves_line_memorys_line(workspace, options, tmp_path):
    """How sure the model must be to replace line memory's unsure line comes with the model
    (``second_opinion_sure`` in its ghostline_model.json): the same model asking for full
    certainty leaves line memory's line where the shipped setting shows the model's."""
    model = _shipped_model_with(tmp_path, second_opinion_sure=1.0)
    (workspace / "server.py").write_text(
        "class Server:\n    def listen(self, port: Port, backlog: Backlog) -> None:\n        pass\n")
    uri = (workspace / "client.py").as_uri()
    line = "    def connect(self, host: str, port: "
    async with running_server(workspace, {**options, "modelPath": str(model)}) as client:
        client.open(uri, f"class Client:\n{line}\n")
        shown = await client.inline(uri, 1, len(line))
        explained = await explain(client, uri, 1, len(line))
    assert explained.secondOpinion  # the model was asked, and was not sure enough
    assert (explained.suggestion.source, shown) == ("line memory", "Port, backlog: Backlog) -> None:")


def test_a_model_folder_with_an_unusable_second_opinion_threshold_is_refused(tmp_path):
    model = _shipped_model_with(tmp_path, second_opinion_sure=5)
    with pytest.raises(ModelLoadError, match="second_opinion_sure 5"):
        CompletionEngine(model, device="cpu")
