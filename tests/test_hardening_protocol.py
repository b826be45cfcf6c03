"""Protocol fuzzing: whatever arrives on stdin, the real server answers it or ignores it, and
keeps serving.

One server process (``python -m lsp_server``, the shipped model) serves the whole module; the
tests speak to it in bytes through ``RawServer``, a small framed reader/writer, because a
well-behaved LSP client cannot send broken frames.  Hypothesis makes the broken inputs:
frames with bad or lying ``Content-Length`` headers, bodies that are not JSON or not JSON-RPC,
unknown methods, parameters of the wrong shape, positions and edits outside the document,
stale versions and documents never opened.  After every example a normal inline completion
on a normal open document must still get a result (``assert_serving``), and after every test
the model must still generate and the process must still be alive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from lsp_helpers import running_server
from lsp_server.jsonrpc import MAX_MESSAGE_BYTES
from lsp_server.telemetry import ACCEPTED_COMMAND, EVENT_METHOD

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[1]
SOURCE = "import os\n\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n    return \n"
INLINE, COMPLETION = types.TEXT_DOCUMENT_INLINE_COMPLETION, types.TEXT_DOCUMENT_COMPLETION
EXPLAIN, FIND_SIMILAR = "ghostline/explainPrompt", "ghostline/findSimilar"
KNOWN_METHODS = set(types.METHOD_TO_TYPES) | {EXPLAIN, FIND_SIMILAR, EVENT_METHOD, "ghostline/status"}
INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND = -32602, -32600, -32601
MISSING = object()  # a field left out of a message
FRESH = itertools.count()  # numbers documents so that no completion of theirs is cached

fuzz = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    """The real server on stdio, spoken to in bytes: a tiny framed writer and reader."""

    def __init__(self, proc: asyncio.subprocess.Process, root: Path) -> None:
        self.proc = proc
        self.root = root
        self.unmatched: list[dict] = []  # answers whose id no request of ours carries (null, ...)
        self.stderr_tail = b""
        self._waiting: dict[str | int, asyncio.Future] = {}
        self._ids = itertools.count()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._drain())]

    @classmethod
    async def start(cls, root: Path, cache_dir: Path, initialize: bool = True) -> RawServer:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lsp_server", cwd=REPO, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        server = cls(proc, root)
        if not initialize:
            return server
        await server.request("initialize", {
            "processId": None, "rootUri": root.as_uri(), "capabilities": {},
            "initializationOptions": {"debounceMs": 0, "cacheDir": str(cache_dir)}})
        server.notify("initialized", {})
        return server

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)

    def send(self, message: object) -> None:
        self.write(frame(json.dumps(message).encode()))

    def notify(self, method: str, params: object) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def send_request(self, method: str, params: object, /, **envelope: object) -> asyncio.Future:
        """Send a request (``envelope`` replaces fields, MISSING drops them); its answer's future."""
        msg_id = f"req-{next(self._ids)}"
        self._waiting[msg_id] = answer = asyncio.get_running_loop().create_future()
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params} | envelope
        self.send({key: value for key, value in message.items() if value is not MISSING})
        return answer

    async def request(self, method: str, params: object, timeout: float = 20) -> dict:
        try:
            return await asyncio.wait_for(self.send_request(method, params), timeout)
        except TimeoutError:
            alive = "alive" if self.proc.returncode is None else f"exited {self.proc.returncode}"
            raise AssertionError(f"no answer to {method} within {timeout}s (server {alive}); stderr:\n"
                                 + self.stderr_tail.decode(errors="replace")[-3000:]) from None

    def open(self, name: str, text: str, version: int = 1) -> str:
        uri = (self.root / name).as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": version, "text": text}})
        return uri

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.request("shutdown", None, timeout=10)
                self.notify("exit", None)
                await asyncio.wait_for(self.proc.wait(), 10)
            except (TimeoutError, AssertionError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
        for task in self._tasks:
            task.cancel()

    async def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while (line := await out.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if not line:
                return
            message = json.loads(await out.readexactly(length))
            msg_id = message.get("id")
            if "method" in message:
                if "id" in message:  # a request from the server (progress, registration): say yes
                    self.send({"jsonrpc": "2.0", "id": msg_id, "result": None})
            elif isinstance(msg_id, (str, int)) and msg_id in self._waiting:
                self._waiting.pop(msg_id).set_result(message)
            else:
                self.unmatched.append(message)

    async def _drain(self) -> None:
        while chunk := await self.proc.stderr.read(65536):
            self.stderr_tail = (self.stderr_tail + chunk)[-65536:]


def inline_params(uri: str, line: int = 5, character: int = 11) -> dict:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}}


def params_for(method: str, uri: str, line: int = 5, character: int = 11) -> dict:
    """Well-formed parameters for each request under test, at ``line``:``character``."""
    position = {"line": line, "character": character}
    if method == INLINE:
        return inline_params(uri, line, character)
    if method == FIND_SIMILAR:
        return {"textDocument": {"uri": uri}, "range": {"start": position, "end": position}, "limit": 5}
    return {"textDocument": {"uri": uri}, "position": position}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    (root / "app.py").write_text(SOURCE)
    (root / "util.py").write_text("def join(parts):\n    return '/'.join(parts)\n")
    server = await RawServer.start(root, tmp_path_factory.mktemp("cache"))
    server.app = server.open("app.py", SOURCE)
    answer = await server.request(INLINE, inline_params(server.app))
    assert answer["result"]["items"], answer  # the shipped model completes the probe position
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def fuzzed(server):
    """The server, checked after the test: the model still generates and the process lives."""
    yield server
    await assert_generates(server)


async def assert_serving(server: RawServer) -> None:
    """The key property: a normal inline completion on the open document still gets a result.

    The probe repeats one position, so the type-ahead cache answers it: this checks the whole
    request path but the model; ``assert_generates`` checks the model too.
    """
    answer = await server.request(INLINE, inline_params(server.app), timeout=10)
    assert "result" in answer and answer["result"]["items"], answer
    assert server.proc.returncode is None


async def assert_generates(server: RawServer) -> None:
    """A completion the cache cannot answer: the pipeline, retrieval and model still work."""
    fresh = server.open("fresh.py", f"# {next(FRESH)}\n" + SOURCE)
    answer = await server.request(INLINE, inline_params(fresh, 6, 11))
    assert isinstance(answer.get("result", {}).get("items"), list), answer
    assert server.proc.returncode is None


def assert_lsp_error(answer: dict, *codes: int) -> None:
    """An error the client can show: one of ``codes``, never an internal error with a traceback."""
    assert "error" in answer, answer
    assert answer["error"]["code"] in codes, answer
    assert "traceback" not in json.dumps(answer["error"]).lower(), answer


# -- strategies ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


@st.composite
def mangled(draw, value):
    """``value`` with one part (possibly the whole) replaced by something of another shape."""
    if not isinstance(value, dict) or not value or draw(st.integers(0, 5)) == 0:
        return draw(json_values.filter(lambda v: v != value))
    key = draw(st.sampled_from(sorted(value)))
    out = dict(value)
    if draw(st.booleans()):
        del out[key]
    else:
        out[key] = draw(mangled(value[key]))
    return out


not_json = st.binary(min_size=1, max_size=40).filter(lambda b: _parses(b) is None)
non_object_json = json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode())


def _parses(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


# -- framing ---------------------------------------------------------------------------------

@fuzz
@given(body=not_json | non_object_json | st.sampled_from([
    b'{"jsonrpc": "2.0", "params": {}}',  # no method, no id
    b'{"jsonrpc": "1.0", "method": "textDocument/didOpen", "params": {}}',
    b'{"method": "textDocument/didClose", "params": {}}',  # no "jsonrpc"
    b'{"jsonrpc": "2.0", "id": "nobody-asked", "result": 1}',  # an answer to nothing
    b'[' * 5000 + b']' * 5000,  # deeper than the JSON decoder recurses
]))
async def test_unreadable_bodies_are_ignored(fuzzed, body):
    fuzzed.write(frame(body))
    await assert_serving(fuzzed)


length_values = st.one_of(
    st.sampled_from([b"", b"abc", b"-5", b"0", b"1e3", b"12 34", b"9" * 5000]),
    st.integers(MAX_MESSAGE_BYTES + 1, 10**15).map(lambda n: b"%d" % n),  # MemoryError or a wait forever
)


@fuzz
@given(header=st.one_of(
    length_values.map(lambda v: b"Content-Length: " + v + b"\r\n"),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"ength" not in b.lower()).map(lambda b: b + b"\r\n"),
    st.just(b""),  # no header at all
), body=st.sampled_from([b"{}", b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}']))
@example(header=b"Content-Length: %d\r\n" % 10**12, body=b"{}")  # must not be allocated up front
@example(header=b"Content-Length: %d\r\n" % (MAX_MESSAGE_BYTES + 1), body=b"{}")  # must not wait for bytes never sent
@example(header=b"Content-Length: abc\r\n", body=b"{}")  # the next header, glued to "{}", is still found
async def test_frames_without_a_usable_length_cost_at_most_the_next_message(fuzzed, header, body):
    """A server cannot know where such a body ends; it must find the next header, not go deaf."""
    fuzzed.write(header + b"\r\n" + body)
    lost = fuzzed.send_request(INLINE, inline_params(fuzzed.app))  # may be swallowed
    await assert_serving(fuzzed)
    lost.cancel()


@fuzz
@given(body=st.sampled_from([b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}', b"{}"]),
       missing=st.integers(1, 64))
async def test_truncated_frames_cost_at_most_the_next_message(fuzzed, body, missing):
    """A body shorter than its Content-Length swallows the start of the next message."""
    fuzzed.write(b"Content-Length: %d\r\n\r\n" % (len(body) + missing) + body)
    lost = fuzzed.send_request(INLINE, inline_params(fuzzed.app))
    await assert_serving(fuzzed)
    lost.cancel()


# -- envelopes and methods -------------------------------------------------------------------

@fuzz
@given(envelope=st.one_of(
    st.fixed_dictionaries({"jsonrpc": st.sampled_from(["1.0", "", "2", None]) | st.integers()}),
    st.just({"jsonrpc": MISSING}),
    st.fixed_dictionaries({"method": st.integers() | st.lists(st.text(), max_size=2) | st.none()}),
))
async def test_requests_in_a_broken_envelope_get_invalid_request(fuzzed, envelope):
    answer = fuzzed.send_request(INLINE, inline_params(fuzzed.app), **envelope)
    assert_lsp_error(await asyncio.wait_for(answer, 10), INVALID_REQUEST)
    await assert_serving(fuzzed)


@fuzz
@given(msg_id=st.none() | st.floats(allow_nan=False) | st.booleans() | st.lists(st.integers(), max_size=2)
       | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
async def test_requests_with_an_unusable_id_get_an_answer_with_a_null_id(fuzzed, msg_id):
    seen = len(fuzzed.unmatched)
    fuzzed.send({"jsonrpc": "2.0", "id": msg_id, "method": INLINE, "params": inline_params(fuzzed.app)})
    await assert_serving(fuzzed)  # answered in order: any answer to the bad id came first
    answers = fuzzed.unmatched[seen:]
    assert answers and all(a["id"] is None and a["error"]["code"] == INVALID_REQUEST for a in answers), answers


method_names = st.one_of(st.text(max_size=30), st.text(max_size=20).map(lambda s: "$/" + s),
                         st.sampled_from(["textDocument/inline", "ghostline/find", "workspace/executeCommand2"]))


@fuzz
@given(method=method_names.filter(lambda m: m not in KNOWN_METHODS), params=json_values)
async def test_unknown_methods(fuzzed, method, params):
    """Requests get MethodNotFound ($/ ones too, says the spec); notifications are ignored."""
    fuzzed.notify(method, params)
    assert_lsp_error(await fuzzed.request(method, params), METHOD_NOT_FOUND)
    await assert_serving(fuzzed)


# -- parameters and positions ----------------------------------------------------------------

@fuzz
@given(method=st.sampled_from([INLINE, COMPLETION, EXPLAIN, FIND_SIMILAR]), data=st.data())
async def test_wrong_parameter_types_get_invalid_params(fuzzed, method, data):
    params = data.draw(st.just(MISSING) | mangled(params_for(method, fuzzed.app)))
    answer = await fuzzed.request(method, params)
    if "error" in answer:
        assert_lsp_error(answer, INVALID_PARAMS)
    await assert_serving(fuzzed)


@pytest.mark.parametrize("uri, line", [(5, 0), ({"path": "/x"}, 0), ("APP", float("inf")), ("APP", "2")])
async def test_explain_prompt_checks_what_it_reads_by_hand(fuzzed, uri, line):
    """explainPrompt's params are untyped, so it checks them itself: a number as uri or a line
    of Infinity (Python's JSON reads it) is an LSP error, not a traceback from deep inside."""
    params = {"textDocument": {"uri": fuzzed.app if uri == "APP" else uri}, "position": {"line": line, "character": 0}}
    answer = await fuzzed.request(EXPLAIN, params)
    if line == "2":  # a numeric string is read as the number
        assert "prompt" in answer["result"], answer
    else:
        assert_lsp_error(answer, INVALID_PARAMS)
    await assert_serving(fuzzed)


@fuzz
@given(method=st.sampled_from(["textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
                               "textDocument/didSave", "workspace/didChangeConfiguration",
                               "workspace/didChangeWatchedFiles", "$/setTrace"]), data=st.data())
async def test_notifications_with_wrong_parameter_types_are_ignored(fuzzed, method, data):
    uri = (fuzzed.root / "scratch.py").as_uri()
    valid_settings = {"debounceMs": 0, "maxTokens": 48}
    valid = {
        "textDocument/didOpen": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}},
        "textDocument/didChange": {"textDocument": {"uri": uri, "version": 2},
                                   "contentChanges": [{"range": {"start": {"line": 0, "character": 0},
                                                                 "end": {"line": 0, "character": 0}}, "text": "#"}]},
        "workspace/didChangeConfiguration": {"settings": {"ghostline": valid_settings}},
        "workspace/didChangeWatchedFiles": {"changes": [{"uri": uri, "type": 2}]},
        "$/setTrace": {"value": "off"},
    }.get(method, {"textDocument": {"uri": uri}})
    try:
        fuzzed.notify(method, data.draw(mangled(valid)))
        await assert_serving(fuzzed)
    finally:
        fuzzed.notify("workspace/didChangeConfiguration", {"settings": {"ghostline": valid_settings}})
        fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


@fuzz
@given(data=st.data())
async def test_suggestion_events_and_accepts_of_any_shape(fuzzed, data):
    """Local telemetry: a broken ``ghostline/suggestionEvent`` is dropped, a broken accept
    command gets InvalidParams; the id is a real one, so only the mangled part is wrong."""
    probe = await fuzzed.request(INLINE, inline_params(fuzzed.app))
    suggestion_id = probe["result"]["items"][0]["command"]["arguments"][0]
    fuzzed.notify(EVENT_METHOD, data.draw(mangled({"id": suggestion_id, "event": "partial", "acceptedChars": 3})))
    arguments = data.draw(mangled([suggestion_id, 3]))
    answer = await fuzzed.request("workspace/executeCommand", {"command": ACCEPTED_COMMAND, "arguments": arguments})
    if "error" in answer:
        assert_lsp_error(answer, INVALID_PARAMS)
    await assert_serving(fuzzed)


coordinates = st.one_of(st.integers(-3, 12), st.integers(-2**40, 2**40))


@fuzz
@given(method=st.sampled_from([INLINE, COMPLETION, EXPLAIN, FIND_SIMILAR]), line=coordinates, character=coordinates)
async def test_positions_outside_the_document(fuzzed, method, line, character):
    answer = await fuzzed.request(method, params_for(method, fuzzed.app, line, character))
    fits = 0 <= line <= SOURCE.count("\n") and 0 <= character < 2**31
    if method == FIND_SIMILAR:  # a selection is clamped to the document
        fits = line >= 0
    if fits:
        assert "result" in answer, answer
    else:
        assert_lsp_error(answer, INVALID_PARAMS)
    await assert_serving(fuzzed)


# -- documents -------------------------------------------------------------------------------

uris = st.one_of(st.text(max_size=20), st.text(max_size=12).map(lambda s: "file:///nowhere/" + s),
                 st.sampled_from(["untitled:Untitled-1", "file:///", "file://host/x.py", "file:///%00.py"]))


@fuzz
@given(uri=uris, method=st.sampled_from([INLINE, COMPLETION, EXPLAIN, FIND_SIMILAR]))
async def test_requests_for_documents_never_opened(fuzzed, uri, method):
    # Other tests share this server and mangle didOpen params, which can open any URI (even
    # ""): close it first, so that the document really is not open.
    fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    answer = await fuzzed.request(method, params_for(method, uri, 0, 0))
    assert_lsp_error(answer, INVALID_PARAMS)
    await assert_serving(fuzzed)


@fuzz
@given(uri=uris, text=st.text(max_size=40), method=st.sampled_from([INLINE, COMPLETION, EXPLAIN, FIND_SIMILAR]))
async def test_documents_with_odd_uris(fuzzed, uri, text, method):
    fuzzed.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": text}})
    try:
        answer = await fuzzed.request(method, params_for(method, uri, 0, 0))
        if "error" in answer:
            assert_lsp_error(answer, INVALID_PARAMS, INVALID_REQUEST)
        await assert_generates(fuzzed)  # retrieval reads every open document: this one too
    finally:
        fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    await assert_serving(fuzzed)


async def test_an_open_document_no_file_can_have_breaks_nothing_else(fuzzed):
    """A NUL in a file URI's path makes every filesystem call raise ValueError: such an open
    document must break neither retrieval for other completions nor the server."""
    odd = fuzzed.root.as_uri() + "/a%00b.py"
    fuzzed.notify("textDocument/didOpen", {"textDocument": {"uri": odd, "languageId": "python", "version": 1,
                                                             "text": SOURCE}})
    try:
        await assert_generates(fuzzed)
        assert_lsp_error(await fuzzed.request(FIND_SIMILAR, params_for(FIND_SIMILAR, odd)), INVALID_PARAMS)
    finally:
        fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": odd}})


async def test_find_similar_reads_an_open_document_whose_uri_has_escapes(fuzzed):
    """pygls keys documents by the unquoted URI, so findSimilar looks them up that way: an
    unsaved editor buffer at a path with a space (``%20``) is found."""
    unsaved = fuzzed.open("not saved yet.py", SOURCE)
    try:
        answer = await fuzzed.request(FIND_SIMILAR, params_for(FIND_SIMILAR, unsaved, 4, 4))
        assert isinstance(answer.get("result", {}).get("items"), list), answer
    finally:
        fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": unsaved}})


versions = st.integers(-2**40, 2**40) | st.integers(-2, 3)


@fuzz
@given(data=st.data(), events=st.lists(st.sampled_from(["open", "change", "close", "save"]), min_size=1, max_size=5))
async def test_stale_versions_and_out_of_order_events(fuzzed, data, events):
    uri = (fuzzed.root / "scratch.py").as_uri()
    for event in events:
        doc = {"uri": uri, "version": data.draw(versions)}
        if event == "open":
            fuzzed.notify("textDocument/didOpen", {"textDocument": doc | {"languageId": "python", "text": SOURCE}})
        elif event == "change":
            fuzzed.notify("textDocument/didChange", {"textDocument": doc, "contentChanges": [{"text": SOURCE}]})
        else:
            fuzzed.notify(f"textDocument/did{event.capitalize()}", {"textDocument": {"uri": uri}})
    answer = await fuzzed.request(INLINE, inline_params(uri))
    if "error" in answer:
        assert_lsp_error(answer, INVALID_PARAMS)
    fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    await assert_serving(fuzzed)


@fuzz
@given(start=st.tuples(coordinates, coordinates), end=st.tuples(coordinates, coordinates), text=st.text(max_size=10))
async def test_edits_that_do_not_fit_the_document(fuzzed, start, end, text):
    uri = fuzzed.open("edited.py", SOURCE)
    rng = {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}}
    fuzzed.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"range": rng, "text": text}]})
    answer = await fuzzed.request(INLINE, inline_params(uri, 0, 0))
    if "error" in answer:
        assert_lsp_error(answer, INVALID_PARAMS)
    # Whatever the edit did, a full update puts the document right again.
    fuzzed.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                             "contentChanges": [{"text": "# marker\n" + SOURCE}]})
    prompt = (await fuzzed.request(EXPLAIN, params_for(EXPLAIN, uri, 1, 0)))["result"]["prompt"]
    assert "# marker" in prompt
    fuzzed.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    await assert_serving(fuzzed)


@fuzz
@given(params=json_values | st.fixed_dictionaries({"id": json_values}))
async def test_cancel_notifications_for_anything(fuzzed, params):
    fuzzed.notify("$/cancelRequest", params)
    await assert_serving(fuzzed)


async def test_requests_after_shutdown_get_invalid_request(tmp_path):
    """The spec: after ``shutdown`` requests error with InvalidRequest; pygls left them unanswered."""
    (tmp_path / "root").mkdir()
    server = await RawServer.start(tmp_path / "root", tmp_path / "cache")
    try:
        uri = server.open("app.py", SOURCE)
        assert (await server.request("shutdown", None))["result"] is None
        assert_lsp_error(await server.request(INLINE, inline_params(uri), timeout=10), INVALID_REQUEST)
        server.notify("exit", None)
        assert await asyncio.wait_for(server.proc.wait(), 10) == 0
    finally:
        await server.stop()


async def test_an_edit_to_a_document_never_opened_pops_up_nothing(tmp_path, options):
    """An editor that loses track of a document must not get an "Error in server" popup."""
    async with running_server(tmp_path, options) as client:
        uri = (tmp_path / "ghost.py").as_uri()
        client.change(uri, 2, (0, 0), (0, 0), "x")
        client.open((tmp_path / "app.py").as_uri(), SOURCE)
        assert isinstance(await client.inline((tmp_path / "app.py").as_uri(), 0, 0), str)
        assert client.messages == []
        assert any("not open" in line for line in client.logs)


async def test_requests_before_initialize_get_32002_and_a_second_initialize_is_refused(tmp_path):
    server = await RawServer.start(tmp_path, tmp_path / "cache", initialize=False)
    try:
        answer = await server.request("textDocument/inlineCompletion", inline_params((tmp_path / "a.py").as_uri()))
        assert_lsp_error(answer, -32002)
        server.open("a.py", "import os\n")  # a notification before initialize: dropped, not fatal
        init = {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
                "initializationOptions": {"debounceMs": 0, "cacheDir": str(tmp_path / "cache")}}
        assert "result" in await server.request("initialize", init)
        server.notify("initialized", {})
        uri = server.open("b.py", "import os\nos.")
        assert_lsp_error(await server.request("initialize", init), -32600)
        # The open document survived the refused second initialize.
        answer = await server.request("ghostline/explainPrompt", {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 3}})
        assert "result" in answer and "import os" in answer["result"]["prompt"]
    finally:
        await server.stop()
