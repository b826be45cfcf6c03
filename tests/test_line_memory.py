"""Line memory: completing a line from lines the code base already has."""

from __future__ import annotations

from lsp_helpers import explain
from lsp_server.client import running_server
from lsp_server.line_memory import FileLines, LineMemory

memory = LineMemory()


def test_the_nearest_matching_line_of_the_document_wins():
    before = "    r = session.get(url, timeout=3)\n    b = 2\n    r = session.get(url, stream=True)\n    r = session.g"
    assert memory.suggest(before, "\n") == "et(url, stream=True)"
    # Lines after the cursor count too, and indentation does not matter.
    assert memory.suggest("x = 1\n  r = session.g", "\nr = session.get(url, verify=False)\n") == \
        "et(url, verify=False)"


def test_other_files_give_their_most_frequent_continuation():
    files = [FileLines("logger = logging.getLogger(__name__)\n"),
             FileLines("logger = logging.getLogger(__name__)\nlogger = logging.getLogger('x')\n")]
    assert memory.suggest("import logging\nlogger = logging.get", "\n", files) == "Logger(__name__)"


def test_the_line_above_the_cursor_chooses_among_equally_common_continuations():
    """``def `` under ``@property`` goes on like the other ``def`` lines under ``@property``."""
    files = [FileLines("class A:\n    @property\n    def name(self) -> str:\n        return self._name\n"),
             FileLines("class B:\n    @staticmethod\n    def build(**options) -> B:\n        return B()\n")]
    assert memory.suggest("class C:\n    @property\n    def ", "\n", files) == "name(self) -> str:"
    assert memory.suggest("class C:\n    @staticmethod\n    def ", "\n", files) == "build(**options) -> B:"


def test_an_empty_line_gets_what_follows_the_same_previous_line_elsewhere():
    files = [FileLines("def __init__(self):\n    super().__init__()\n"),
             FileLines("def __init__(self):\n\n    super().__init__()\n    self.x = 1\n")]
    assert memory.suggest("class A:\n    def __init__(self):\n        ", "\n", files) == "super().__init__()"


def test_the_line_below_the_cursor_chooses_among_equally_common_continuations():
    """Written into existing code, the line goes on like the occurrence that has the
    same line below it."""
    files = [FileLines("resp = session.get(url, timeout=5)\nassert resp.ok\n"),
             FileLines("resp = session.get(url, auth=auth)\nassert resp.status_code == 401\n")]
    typed = "def test():\n    resp = session.get(url, "
    assert memory.suggest(typed, "\n    assert resp.status_code == 401\n", files) == "auth=auth)"
    assert memory.suggest(typed, "\n    assert resp.ok\n", files) == "timeout=5)"


def test_an_empty_line_gets_what_came_before_the_same_next_line_elsewhere():
    """Nothing follows ``if expired(token):`` elsewhere, but ``return token`` comes after
    one line in another file: the line that goes above it."""
    files = [FileLines("def renew(token):\n    token = refresh(token)\n    return token\n")]
    prefix = "def check(token):\n    if expired(token):\n        "
    assert memory.suggest(prefix, "\n    return token\n", files) == "token = refresh(token)"


def test_between_sorted_imports_an_import_that_sorts_between_them():
    """Imports are kept sorted: an empty line between two of them gets an import from
    elsewhere in the workspace that sorts between the two, not one of the two again
    (``import sys`` follows ``import os`` more often elsewhere)."""
    files = [FileLines("import os\nimport sys\n"), FileLines("import os\nimport sys\n"),
             FileLines("import json\nimport shutil\nimport tempfile\n")]
    ranked = memory.candidates("import os\n", "\nimport sys\n", files)
    assert ranked[0].text == "import shutil"
    assert "import sys" in [c.text for c in ranked[1:]]
    assert memory.suggest("import re\n", "\nimport ssl\n", files) == "import shutil"
    assert memory.suggest("import tempfile\n", "\nimport zlib\n", files) is None  # none sorts between


def test_an_empty_line_gets_the_lines_written_most_often_that_fit_its_indentation():
    """``try:`` goes where the next line is indented under the cursor's, ``return None``
    where it is not; comments and argument lines (``self,``) are never offered so."""
    body = ("def a(x):\n    try:\n        return x.y\n    except AttributeError:\n        return None\n"
            "    # look it up\n    # look it up\n    call(\n        self,\n    )\n    call(\n        self,\n    )\n"
            "def b(x):\n    try:\n        return x.z\n    except KeyError:\n        return None\n")
    opener = memory.candidates(body + "def c(x):\n    ", "\n        value = x.w\n    except KeyError:\n        pass\n")
    common = {c.text for c in opener if c.kind == "common"}
    assert "try:" in common and "return None" not in common
    statement = memory.candidates(body + "def c(x):\n    if x is None:\n        ", "\n    return x\n")
    common = {c.text for c in statement if c.kind == "common"}
    assert "return None" in common and "try:" not in common
    assert not common & {"# look it up", "self,", ")"}
    # Lines written often across the workspace count too, each file's tally summed.
    files = [FileLines("raise NotImplementedError()\n" * 3), FileLines("raise NotImplementedError()\n" * 2)]
    found = {c.text: c for c in memory.candidates("def f():\n    ", "\n", files)}
    assert found["raise NotImplementedError()"].kind == "common"
    assert found["raise NotImplementedError()"].ws_count == 5


def test_the_line_after_the_cursor_is_not_an_example_of_what_follows():
    """The document's own pair (previous line -> the line after the cursor) spans the
    cursor: it says nothing about what is typed here."""
    assert memory.suggest("    response = send(request)\n    ", "\n    return response\n") is None


def test_the_last_tokens_typed_are_found_inside_other_lines():
    """No line starts like this one, but another line holds its last tokens and goes on."""
    before = "    resp = self.session.get(url, timeout=self.timeout)\n    data = client.get(url, "
    assert memory.suggest(before, "\n") == "timeout=self.timeout)"
    files = [FileLines("x = requests.get(url, allow_redirects=False)\n")]
    assert memory.suggest("y = 1\nr = session.get(url, allow", "\n", files) == "_redirects=False)"


def test_a_continuation_naming_what_is_around_the_cursor_wins():
    """Other files continue the line two ways, equally often; the one using names from
    around the cursor (here the function's own parameter) is the likelier."""
    files = [FileLines("result = call(timeout=timeout)\n"), FileLines("result = call(retries=retries)\n")]
    before = "def fetch(session, retries):\n    result = call("
    assert memory.suggest(before, "\n", files) == "retries=retries)"
    assert memory.suggest(before.replace("retries", "timeout"), "\n", files) == "timeout=timeout)"


def test_every_candidate_has_a_confidence_and_the_best_comes_first():
    files = [FileLines("logger = logging.getLogger(__name__)\n" * 3 + "logger = logging.getLogger('app')\n")]
    ranked = memory.candidates("import logging\nlogger = logging.get", "\n", files)
    assert [c.text for c in ranked] == ["Logger(__name__)", "Logger('app')"]
    assert all(0.0 < c.confidence < 1.0 for c in ranked)
    assert ranked[0].score > ranked[1].score and ranked[0].ws_count == 3


def test_the_line_written_just_above_is_not_crowded_out_by_lines_common_elsewhere():
    """A large workspace has dozens of ways to go on after ``return self.``, each more
    frequent than the document's own line: the document's nearest lines still compete."""
    common = "".join(f"    return self.field_{i}\n" for i in range(40))
    files = [FileLines(common) for _ in range(3)]
    prefix = ("    def __eq__(self, other):\n        return self.value == other.value\n\n"
              "    def same(self, other):\n        return self.")
    ranked = memory.candidates(prefix, "\n", files)
    assert ranked[0].text == "value == other.value"


def test_a_tail_found_just_above_is_not_crowded_out_either():
    """No line starts like the cursor's, so the last tokens typed are looked for inside
    lines; the document's own occurrence competes with the workspace's common ones."""
    common = "".join(f"    other_{i} = self.cache.get_{i}(key)\n" * 3 for i in range(12))
    files = [FileLines(common) for _ in range(3)]
    prefix = "    found = self.cache.lookup(key, default=None)\n    value = self.cache."
    texts = [c.text for c in memory.candidates(prefix, "\n", files)]
    assert "lookup(key, default=None)" in texts


def test_nothing_to_copy_gives_none():
    assert memory.suggest("x = 1\nvalue = compute_", "\n") is None
    assert memory.suggest("x=1\n", "\n", [FileLines("x=1\ny = 2\n")]) is None  # "x=1" says too little
    assert memory.suggest("y = 2\nx = 1", "\n") is None  # a line already complete has nothing to add


async def test_line_memory_through_the_server_uses_other_files_but_never_the_saved_copy(tmp_path, tiny_model):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "adapters.py").write_text(
        "def mount_all(session):\n    session.mount('https://', HTTPAdapter(max_retries=3))\n")
    # The edited file's saved copy holds a different, unsaved-away line: it must not leak.
    (ws / "app.py").write_text("session = Session()\nsession.mount('http://', LegacyAdapter())\n")
    text = "session = Session()\nsession.mou\n"
    uri = (ws / "app.py").as_uri()
    async with running_server(ws, {"modelPath": str(tiny_model), "debounceMs": 0,
                                   "cacheDir": str(tmp_path / "cache")}) as client:
        client.open(uri, text)
        assert await client.inline(uri, 1, 11) == "nt('https://', HTTPAdapter(max_retries=3))"
    async with running_server(ws, {"modelPath": str(tiny_model), "debounceMs": 0, "lineMemory": False,
                                   "cacheDir": str(tmp_path / "cache")}) as client:
        client.open(uri, text)
        assert await client.inline(uri, 1, 11) != "nt('https://', HTTPAdapter(max_retries=3))"


async def test_the_line_above_is_never_offered_again(tmp_path, tiny_model):
    """Elsewhere ``self.retries = retries`` is followed by itself (a copy-paste slip) and by
    ``self.timeout = timeout``: under that line the cursor gets the other one, and the
    repeat is not even a candidate, on an empty line or half typed."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("    self.retries = retries\n    self.retries = retries\n" * 2
                             + "    self.retries = retries\n    self.timeout = timeout\n")
    uri = (ws / "b.py").as_uri()
    text = "class Client:\n    def __init__(self, retries, timeout):\n        self.retries = retries\n        \n"
    async with running_server(ws, {"modelPath": str(tiny_model), "debounceMs": 0, "minConfidence": 0.0,
                                   "cacheDir": str(tmp_path / "cache")}) as client:
        client.open(uri, text)
        assert await client.inline(uri, 3, 8) == "self.timeout = timeout"
        assert "self.retries = retries" not in [c.text for c in (await explain(client, uri, 3, 8)).candidates]
        client.open(uri, text.replace("        \n", "        self.\n"))
        assert await client.inline(uri, 3, 13) == "timeout = timeout"


async def test_an_empty_body_gets_line_memorys_line_where_it_is_sure(tmp_path, tiny_model):
    """Under ``if jar is None:`` the model would write a block; this workspace always
    writes ``return None`` there, and line memory is sure enough of it to be shown instead.
    Where it knows nothing the model's block comes as before."""
    ws = tmp_path / "ws"
    ws.mkdir()
    guard = "def {name}(jar):\n    if jar is None:\n        return None\n    return jar.{name}\n\n\n"
    (ws / "jars.py").write_text("".join(guard.format(name=n) for n in ("keys", "values", "items", "copy")))
    uri = (ws / "more.py").as_uri()
    text = guard.format(name="clear") + "def get(jar):\n    if jar is None:\n        \n    return jar.get\n"
    options = {"modelPath": str(tiny_model), "debounceMs": 0, "cacheDir": str(tmp_path / "cache")}
    async with running_server(ws, options) as client:
        client.open(uri, text)
        shown = await explain(client, uri, 8, 8)
        assert shown.mode == "block" and shown.lineMemory == "return None" and shown.confidence >= 0.5
        assert await client.inline(uri, 8, 8) == "return None"
        other = text.replace("if jar is None:\n        \n", "while jar.busy():\n        \n")
        client.open(uri, other)
        assert (await explain(client, uri, 8, 8)).lineMemory is None  # nothing follows that elsewhere


async def test_a_lone_closing_bracket_is_left_to_the_model(tmp_path, tiny_model):
    """Copying the rest of ``compute(a)`` here would suggest just ``)``: a suggestion of one
    character is rarely what comes next, so line memory stays out and the model answers."""
    ws = tmp_path / "ws"
    ws.mkdir()
    text = "result = compute(a)\nvalue = compute(a\n"
    uri = (ws / "app.py").as_uri()
    # Every copied line shown, however unsure: the rule under test is about brackets.
    async with running_server(ws, {"modelPath": str(tiny_model), "debounceMs": 0, "minConfidence": 0.0}) as client:
        client.open(uri, text)
        explained = await explain(client, uri, 1, 17)
        assert explained.lineMemory is None
        assert all(len(c.text.strip()) >= 2 for c in explained.candidates)
        # Lines that continue with more than a bracket are still copied.
        client.open((ws / "more.py").as_uri(), "result = compute(a, retries=3)\nvalue = compute(a\n")
        assert await client.inline((ws / "more.py").as_uri(), 1, 17) == ", retries=3)"


async def test_the_model_judges_line_memorys_candidates(tmp_path):
    """The cheap ranking prefers the more frequent of two lines; scored by the shipped model
    as the fill of the cursor's line, the sum that ``pair_sum`` wants wins over a chain of
    subscripts (both parse)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    odd = "    result = values[0][1][2][3][4]\n"
    (ws / "a.py").write_text("def first(values):\n" + odd * 3)
    # (followed by another line than the cursor's: the line below would favour it too)
    (ws / "b.py").write_text("def second(values):\n    result = values[0] + values[1]\n    print(result)\n")
    uri = (ws / "pairs.py").as_uri()
    source = "def pair_sum(values):\n    result = \n    return result\n"
    ranked = {}
    for scored in (0, 3):
        async with running_server(ws, {"debounceMs": 0, "minConfidence": 0.0, "scoreCandidates": scored,
                                       "secondOpinionBelow": 0.0, "cacheDir": str(tmp_path / "cache")}) as client:
            # Reading the other files has a 50 ms cap per request (what was read is kept):
            # on a loaded machine the first request may see only one of them, so a request
            # elsewhere reads them first (the same request again would be answered from the
            # type-ahead cache).
            warm = (ws / "warm.py").as_uri()
            client.open(warm, "def warm():\n    pass\n")
            await client.inline(warm, 1, 4)
            client.open(uri, source)
            shown = await client.inline(uri, 1, 13)
            ranked[scored] = [c.text for c in (await explain(client, uri, 1, 13)).candidates]
            assert shown == ranked[scored][0]
    assert ranked[0][:2] == ["values[0][1][2][3][4]", "values[0] + values[1]"]
    assert ranked[3][0] == "values[0] + values[1]"


async def test_a_line_too_long_for_the_model_keeps_the_cheap_ranking(tmp_path):
    """A minified line longer than the model's context cannot be scored whole: line memory
    still answers, ranked as without the model."""
    ws = tmp_path / "ws"
    ws.mkdir()
    long_line = "data = [" + ", ".join(f"'item{i}'" for i in range(900)) + "]"
    (ws / "a.py").write_text(long_line + "\n")
    uri = (ws / "b.py").as_uri()
    options = {"debounceMs": 0, "minConfidence": 0.0, "cacheDir": str(tmp_path / "cache")}
    async with running_server(ws, options) as client:
        client.open(uri, "data = \n")
        shown = await client.inline(uri, 0, 7)
    assert shown == long_line[len("data = "):]


async def test_a_copied_line_that_would_break_the_code_is_not_offered(tmp_path):
    """The most frequent continuation does not parse where the cursor is: line memory
    offers the one that does (tree-sitter), with or without the model's judgement."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("def first(values):\n" + "    result = values[0] values[1] + +\n" * 3)
    (ws / "b.py").write_text("def second(values):\n    result = values[0] + values[1]\n")
    uri = (ws / "pairs.py").as_uri()
    for scored in (0, 3):
        async with running_server(ws, {"debounceMs": 0, "minConfidence": 0.0, "scoreCandidates": scored,
                                       "cacheDir": str(tmp_path / "cache")}) as client:
            client.open(uri, "def pair_sum(values):\n    result = \n    return result\n")
            candidates = [c.text for c in (await explain(client, uri, 1, 13)).candidates]
            assert candidates == ["values[0] + values[1]"], candidates


async def test_a_copied_line_closes_brackets_opened_on_lines_above(tmp_path):
    """After a signature's last parameter, line memory offers the closing line another
    function has there; where the code below already closes the bracket, it does not."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("def connect(\n    host: str,\n    port: int,\n) -> None:\n    pass\n")
    head = "def listen(\n    host: str,\n    port: int,\n"
    options = {"debounceMs": 0, "minConfidence": 0.0, "cacheDir": str(tmp_path / "cache")}
    async with running_server(ws, options) as client:
        open_uri, closed_uri = (ws / "open.py").as_uri(), (ws / "closed.py").as_uri()
        client.open(open_uri, head + "\n    pass\n")
        client.open(closed_uri, head + "\n) -> None:\n    pass\n")
        assert (await explain(client, open_uri, 3, 0)).lineMemory == ") -> None:"
        assert (await explain(client, closed_uri, 3, 0)).lineMemory != ") -> None:"


def test_the_workspace_is_read_ahead_in_slices_until_every_file_is_seen(tmp_path, monkeypatch):
    """A completion reads other files only within its time cap, so in a large workspace the
    first ones see few; reading ahead in short slices (between completions) leaves every
    file ready for line memory, with nothing more to read."""
    from lsp_server import retrieval
    from lsp_server.retrieval import RetrievalConfig, Retriever

    for i in range(40):
        (tmp_path / f"mod{i:02d}.py").write_text("".join(f"value_{i}_{j} = compute({j})\n" for j in range(300)))
    current = tmp_path / "main.py"
    current.write_text("import os\n")
    retriever = Retriever(RetrievalConfig(time_cap_s=-1.0))  # past its deadline before the first file
    assert list(retriever.file_lines(current, {}, tmp_path)) == []  # no time to read: nothing seen
    slices = 1
    while not retriever.warm(current, tmp_path, time_cap_s=0.0005):
        slices += 1
        assert slices < 10_000
    assert slices > 1
    retriever.config = RetrievalConfig()
    reads = []
    monkeypatch.setattr(retrieval, "_read", lambda path, max_bytes: reads.append(path))
    seen = list(retriever.file_lines(current, {}, tmp_path))
    assert reads == []
    assert len(seen) == 40
    assert memory.suggest("value_39_7 = comp", "\n", seen) == "ute(7)"


def test_an_unsure_common_line_makes_way_for_the_line_found_for_its_neighbours():
    """A line written everywhere (``try:``) says little about this place: unless the
    ranking is sure of it, the next candidate is shown, or the model writes the line."""
    from lsp_server.candidates import Candidate
    from lsp_server.completion import COMMON_SURE, _shown
    from lsp_server.settings import ServerSettings

    settings = ServerSettings()
    common = Candidate(text="try:", kind="common", confidence=COMMON_SURE - 0.1)
    follow = Candidate(text="else:", kind="follow", confidence=0.3)
    assert _shown([common, follow], settings) is follow
    assert _shown([common], settings) is None  # the model answers
    common.confidence = COMMON_SURE
    assert _shown([common, follow], settings) is common


async def test_a_common_line_is_not_offered_inside_a_docstring(tmp_path):
    """``return None`` is written all over the workspace, and offered on an empty line of
    a function's code, but not on an empty line of its docstring."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("".join(f"def f{i}(x):\n    if x:\n        return None\n    return x\n" for i in range(4)))
    uri = (ws / "doc.py").as_uri()
    text = 'def g(x):\n    """Return x.\n    \n    More words.\n    """\n    if not x:\n        \n    return x\n'
    async with running_server(ws, {"debounceMs": 0, "minConfidence": 0.0, "scoreCandidates": 0,
                                   "cacheDir": str(tmp_path / "cache")}) as client:
        client.open(uri, text)
        in_code = [c.text for c in (await explain(client, uri, 6, 8)).candidates]
        assert "return None" in in_code, in_code
        in_docstring = [c.text for c in (await explain(client, uri, 2, 4)).candidates]
        assert "return None" not in in_docstring, in_docstring


async def test_a_line_another_file_was_saved_with_half_written_is_neither_copied_nor_shown_as_context(tmp_path):
    """An editor saves the file being edited with the line being typed cut where the cursor
    stood; in another file, line memory does not offer that line's rest and the retrieved
    snippets leave it out, while the rest of that file still serves both."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "other.py").write_text(
        "import requests\n\n\ndef send(session, url, payload):\n    response = session.post(url, json=\n"
        "    return response.json()\n\n\ndef fetch(session, url):\n    response = session.get(url, timeout=10)\n"
        "    return response.json()\n")
    options = {"debounceMs": 0, "minConfidence": 0.0, "cacheDir": str(tmp_path / "cache")}
    async with running_server(ws, options) as client:
        uri = (ws / "main.py").as_uri()
        client.open(uri, "import requests\n\n\ndef upload(session, url, payload):\n    response = session.\n")
        found = await explain(client, uri, 4, len("    response = session."))
        offered = [c.text for c in found.candidates]
        assert "get(url, timeout=10)" in offered
        assert not any("json=" in text for text in offered)
        # The snippet keeps the file's lines where they were, the half-written one emptied.
        assert "def send(session, url, payload):\n\n    return response.json()\n" in found.prompt
        assert "json=" not in found.prompt
        assert [(c.path, c.startLine) for c in found.context] == [("other.py", 0)]
