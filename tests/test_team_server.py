"""The team server (``ghostline serve --http``): tokens, limits, errors, the OpenAI shape,
streaming and batching -- in process through starlette's TestClient, and as a real
``ghostline serve --http`` on a loopback port driven by the official ``openai`` client."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import openai
import pytest
from starlette.testclient import TestClient

from lsp_server.settings import DEFAULT_MODEL_DIR
from lsp_server.team.app import TeamServer
from lsp_server.team.batcher import Job, plan_batches
from lsp_server.team.config import TeamServerConfig
from lsp_server.team.limits import RateLimiter
from lsp_server.team.process import team_server
from lsp_server.team.tokens import TokenStore, TokenStoreError, hash_token
from model.engine import BatchRequest, CompletionEngine, GenerationOptions, Sampling, shown_part
from model.prompt_format import completion_prompt, fitted_prompt

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "import os\n\n\ndef list_files(folder):\n    names = []\n    for name in os.listdir(folder):\n        "
SUFFIX = "\n    return names\n"


@pytest.fixture(scope="module")
def engine() -> CompletionEngine:
    return CompletionEngine(DEFAULT_MODEL_DIR, device="cpu")


def _ghostline(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, **kwargs)


# -- tokens ------------------------------------------------------------------------------

def test_a_token_is_shown_once_and_stored_only_as_a_hash(tmp_path):
    path = tmp_path / "conf" / "tokens.json"
    proc = _ghostline("tokens", "add", "alice", "--tokens", str(path))
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert re.fullmatch(r"gl_[A-Za-z0-9_-]{40,}", token)
    text = path.read_text()
    assert token not in text and hash_token(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = TokenStore(path)
    assert store.verify(token).name == "alice"
    assert store.verify(token + "x") is None and store.verify("") is None
    listed = _ghostline("tokens", "list", "--tokens", str(path)).stdout
    assert "alice" in listed and "never" in listed and token not in listed


def test_tokens_expire_and_revoke(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    soon = store.add("soon", expires_days=1)
    assert store.verify(soon) is not None
    data = json.loads(store.path.read_text())
    data["tokens"][0]["expires"] = "2000-01-01T00:00:00Z"
    store.path.write_text(json.dumps(data))
    store.reload()
    assert store.verify(soon) is None
    assert "(expired)" in _ghostline("tokens", "list", "--tokens", str(store.path)).stdout
    other = store.add("other")
    store.revoke("other")
    assert store.verify(other) is None and [r.name for r in TokenStore(store.path).records] == ["soon"]


def test_token_cli_mistakes_are_one_line_and_change_nothing(tmp_path):
    path = tmp_path / "tokens.json"
    assert _ghostline("tokens", "add", "bob", "--tokens", str(path)).returncode == 0
    before = path.read_text()
    for args in (["add", "bob"], ["add", "no spaces"], ["revoke", "carol"], ["add", "x", "--expires", "-1"]):
        proc = _ghostline("tokens", *args, "--tokens", str(path))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert path.read_text() == before
    path.write_text("{not json")
    proc = _ghostline("tokens", "list", "--tokens", str(path))
    assert proc.returncode == 2 and "not a ghostline tokens file" in proc.stderr
    with pytest.raises(TokenStoreError):
        TokenStore(path)


def test_the_rate_limit_allows_a_minute_of_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.allow("a") == 0 for _ in range(60))
    assert limiter.allow("a") == pytest.approx(1.0)
    assert limiter.allow("b") == 0  # each token has its own bucket
    now[0] += 2.0
    assert limiter.allow("a") == 0 and limiter.allow("a") == 0 and limiter.allow("a") > 0
    assert RateLimiter(0).allow("a") == 0


# -- prompts and batching ----------------------------------------------------------------

def test_prompts_fit_the_budget_keeping_the_prefix_end_and_the_suffix_start(engine):
    tok, sp = engine.tokenizer, engine.special
    prefix = "".join(f"line_{i} = {i}\n" for i in range(400)) + "last = "
    suffix = "\n" + "".join(f"after_{i} = {i}\n" for i in range(400))
    ids = fitted_prompt(tok, sp, "a.py", prefix, suffix, 120)
    text = tok.decode(ids, skip_special_tokens=False)
    assert len(ids) <= 120
    assert ids[-1] == sp.fim_middle and text.split("<|fim_prefix|>")[1].removesuffix("<|fim_middle|>").endswith(
        "last = ")
    assert "after_0 = 0" in text and "line_0 = 0" not in text and "after_399" not in text
    plain = fitted_prompt(tok, sp, "a.py", prefix, None, 50)
    assert len(plain) <= 50 and sp.fim_middle not in plain and tok.decode(plain).endswith("last = ")
    short = fitted_prompt(tok, sp, "a.py", "x = ", "", 200)  # "" is a suffix: the end of the file
    assert sp.fim_middle in short


def test_a_batch_gives_each_prompt_its_own_greedy_completion(engine):
    prompts = [completion_prompt(engine.tokenizer, engine.special, "m.py", p, "\n") for p in (
        PREFIX, "class Point:\n    def __init__(self, x, y):\n        self.", "for i in range(")]
    alone = [engine.complete(p, GenerationOptions(max_tokens=12, single_line=False, reuse_static_prompt=False))
             for p in prompts]
    batched = engine.complete_batch([BatchRequest(p.ids, 12) for p in prompts])
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [c.tokens for c in batched] == [c.tokens for c in alone]
    short = engine.complete_batch([BatchRequest(prompts[0].ids, 3), BatchRequest(prompts[1].ids, 12)])
    assert short[0].tokens <= 3 and short[1].text == alone[1].text


def test_stop_strings_cut_the_text_and_hold_back_what_could_become_one(engine):
    prompt = completion_prompt(engine.tokenizer, engine.special, "m.py", PREFIX, SUFFIX)
    full = engine.complete_batch([BatchRequest(prompt.ids, 24)])[0]
    at = next(k for k in range(2, len(full.text) - 1) if full.text.find(full.text[k:k + 2]) == k)
    stop = full.text[at:at + 2]  # first seen past the start: some text comes before it
    seen: list[str] = []
    cut = engine.complete_batch([BatchRequest(prompt.ids, 24, stop=(stop,), on_text=seen.append)])[0]
    assert cut.text == full.text[:full.text.find(stop)] and cut.stop_reason == "stop_string"
    assert all(stop not in s for s in seen) and seen[-1] == cut.text
    assert shown_part("abc\n", ("\n\n",)) == "abc" and shown_part("abc\nx", ("\n\n",)) == "abc\nx"


# The first word is one the model, asked from after the typed letters, does not finish
# (``ite`` + ``rnitems``): what healing is for.
HALF_TYPED = ("def total(items):\n    s = 0\n    for item in ite",
              "class Point:\n    def __init__(self, name):\n        self.na",
              "def wrap(text):\n    # helper for wrappin")


def test_a_batch_finishes_half_typed_words_as_the_editor_path_does(engine):
    """Team-server users get token healing too: each prompt of a batch is healed as the
    language server heals one (same text), with and without a suffix."""
    tok, sp = engine.tokenizer, engine.special
    prompts = [completion_prompt(tok, sp, "m.py", p, "\n") for p in HALF_TYPED]
    options = GenerationOptions(max_tokens=32, reuse_static_prompt=False, heal=True)  # to the end of the line
    alone = [engine.complete(p, options) for p in prompts]
    assert [c.text[:2] for c in alone] == ["ms", "me", "g "]
    batched = engine.complete_batch([BatchRequest(p.ids, 32, stop=("\n",), heal=True) for p in prompts])
    assert [c.text for c in batched] == [c.text for c in alone]
    unhealed = engine.complete_batch([BatchRequest(p.ids, 32, stop=("\n",)) for p in prompts])
    assert not unhealed[0].text.startswith("ms")  # what healing is for
    left_to_right = fitted_prompt(tok, sp, "m.py", HALF_TYPED[0], None, 200)  # no suffix: no FIM markers
    assert engine.complete_batch([BatchRequest(left_to_right, 8, heal=True)])[0].text.startswith("ms")


def test_the_api_does_not_glue_a_new_name_onto_one_the_prompt_uses(engine, tmp_path):
    """After ``class FlaskyStyle(Style`` the 2026-12-03 model went on with the name (``Stylet``),
    a name used nowhere, and a one-line answer is asked for again from the name's end, as the
    language server asks its own model (a streamed answer is sent as it grows and cannot be);
    the GPU-trained model writes ``):`` by itself.  No glued name either way, and a
    half-typed name is still finished."""
    prefix, suffix = "class Style:\n    pass\n\n\nclass FlaskyStyle(Style", "\n    pass\n"
    body = {"model": "ghostline", "prompt": prefix, "suffix": suffix, "max_tokens": 16, "stop": ["\n"],
            "path": "f.py"}
    with _client(engine, tmp_path / "none.json") as client:
        answer = client.post("/v1/completions", json=body).json()["choices"][0]["text"]
        assert answer and not (answer[0].isalnum() or answer[0] == "_"), answer
        half = client.post("/v1/completions", json={**body, "prompt": prefix[:-2]}).json()["choices"][0]["text"]
        assert half.startswith("le"), half


def test_a_block_at_column_0_is_indented_as_a_body(engine, tmp_path):
    """A multi-line request (no line-break stop) whose cursor is at column 0 of an empty
    body gets an indented block, as the editor path does (healed as a single line, the
    bare line break was forced and the model wrote nothing; left free, the shipped model
    starts module-level code there)."""
    prefix = "import os\n\n\ndef count_lines(path):\n"
    body = {"model": "ghostline", "prompt": prefix, "suffix": "\n", "max_tokens": 48, "path": "pkg/module.py"}
    with _client(engine, tmp_path / "none.json") as client:
        block = client.post("/v1/completions", json=body).json()["choices"][0]["text"]
        line = client.post("/v1/completions", json={**body, "stop": ["\n"]}).json()["choices"][0]["text"]
    first = block.split("\n", 1)[0]
    assert first.strip() and first.startswith("    "), block
    assert "\n" not in line  # a single line is asked for as such


def test_the_api_heals_unless_told_not_to(engine, tmp_path):
    body = {"model": "ghostline", "prompt": HALF_TYPED[0], "suffix": "\n", "max_tokens": 8}
    with _client(engine, tmp_path / "none.json") as client:
        assert client.post("/v1/completions", json=body).json()["choices"][0]["text"].startswith("ms")
    with _client(engine, tmp_path / "none.json", token_healing=False) as client:
        assert not client.post("/v1/completions", json=body).json()["choices"][0]["text"].startswith("ms")


def test_a_batch_is_split_by_sampling_and_by_prompt_lengths_far_apart():
    def job(length: int, temperature: float = 0.0, max_tokens: int = 16) -> Job:
        return Job(BatchRequest([1] * length, max_tokens), Sampling(temperature), future=None)

    jobs = [job(100), job(20), job(110), job(105, temperature=0.5), job(30)]
    batches = plan_batches(jobs, max_batch_size=32)
    assert sorted(sorted(len(j.request.ids) for j in b) for b in batches) == [[20, 30], [100, 110], [105]]
    assert [len(b) for b in plan_batches([job(10) for _ in range(5)], max_batch_size=2)] == [2, 2, 1]


# -- the HTTP API in process -------------------------------------------------------------

@pytest.fixture
def tokens(tmp_path) -> tuple[Path, str]:
    store = TokenStore(tmp_path / "tokens.json")
    return store.path, store.add("alice")


def _client(engine, tokens_file: Path, **overrides) -> TestClient:
    config = replace(TeamServerConfig(tokens_file=tokens_file), **overrides)
    app = TeamServer(config, engine, TokenStore(tokens_file)).app()
    return TestClient(app, raise_server_exceptions=False)


def _metric(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def _is_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["message"]
    assert "Traceback" not in response.text
    if code:
        assert error["code"] == code
    return error


BODY = {"model": "ghostline", "prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 8}


def test_wrong_missing_and_expired_tokens_get_401_and_no_generation(engine, tokens):
    path, token = tokens
    expiring = TokenStore(path)
    old = expiring.add("old", expires_days=1)
    data = json.loads(path.read_text())
    data["tokens"][1]["expires"] = "2001-01-01T00:00:00Z"
    path.write_text(json.dumps(data))
    with _client(engine, path) as client:
        for headers in ({}, {"Authorization": "Bearer gl_wrong"}, {"Authorization": f"Bearer {old}"},
                        {"Authorization": token}, {"Authorization": f"Basic {token}"}):
            response = client.post("/v1/completions", json=BODY, headers=headers)
            _is_error(response, 401, "invalid_api_key")
            assert response.headers["www-authenticate"].startswith("Bearer")
        _is_error(client.get("/v1/models"), 401)
        assert _metric(client, "ghostline_generated_tokens_total") == 0
        assert _metric(client, "ghostline_batch_size_count") == 0
        good = client.post("/v1/completions", json=BODY, headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200 and _metric(client, "ghostline_batch_size_count") == 1


def test_a_revoked_token_stops_working_without_a_restart(engine, tokens):
    path, token = tokens
    auth = {"Authorization": f"Bearer {token}"}
    with _client(engine, path) as client:
        assert client.get("/v1/models", headers=auth).status_code == 200
        TokenStore(path).revoke("alice")
        time.sleep(1.1)  # the file is looked at at most once a second
        _is_error(client.get("/v1/models", headers=auth), 401)


def test_limits_oversize_bodies_max_tokens_and_rate(engine, tokens):
    path, token = tokens
    auth = {"Authorization": f"Bearer {token}"}
    with _client(engine, path, max_body_bytes=2000, max_tokens_limit=32, rate_limit_per_minute=5) as client:
        big = {**BODY, "prompt": "x" * 5000}
        _is_error(client.post("/v1/completions", json=big, headers=auth), 413, "request_too_large")
        chunks = (b"x" * 500 for _ in range(10))  # no Content-Length: counted while read
        _is_error(client.post("/v1/completions", content=chunks, headers=auth), 413)
        _is_error(client.post("/v1/completions", json={**BODY, "max_tokens": 33}, headers=auth), 422)
        assert _metric(client, "ghostline_generated_tokens_total") == 0
        # Five a minute: the three refused above counted, two more go through, the next waits.
        assert [client.post("/v1/completions", json=BODY, headers=auth).status_code for _ in range(2)] == [200, 200]
        limited = client.post("/v1/completions", json=BODY, headers=auth)
        _is_error(limited, 429, "rate_limit_exceeded")
        assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize("method, url, body, status", [
    ("POST", "/v1/completions", b"{not json", 400),
    ("POST", "/v1/completions", b"[1, 2]", 400),
    ("POST", "/v1/completions", json.dumps({"max_tokens": 4}).encode(), 422),
    ("POST", "/v1/completions", json.dumps({"prompt": [1, 2, 3]}).encode(), 422),
    ("POST", "/v1/completions", json.dumps({**BODY, "temperature": "hot"}).encode(), 422),
    ("POST", "/v1/completions", json.dumps({**BODY, "stop": ["a", "b", "c", "d", "e"]}).encode(), 422),
    ("POST", "/v1/completions", json.dumps({**BODY, "n": 3}).encode(), 422),
    ("POST", "/v1/completions", json.dumps({**BODY, "max_tokens": True}).encode(), 422),
    ("GET", "/v1/completions", None, 405),
    ("GET", "/v2/nothing", None, 404),
])
def test_every_error_is_json_in_openais_shape(engine, tokens, method, url, body, status):
    path, token = tokens
    with _client(engine, path) as client:
        response = client.request(method, url, content=body, headers={"Authorization": f"Bearer {token}"})
        _is_error(response, status)


def test_a_failing_generation_is_a_json_500_and_the_server_goes_on(engine, tokens, monkeypatch):
    path, token = tokens
    auth = {"Authorization": f"Bearer {token}"}
    with _client(engine, path) as client:
        real = engine.complete_batch
        monkeypatch.setattr(engine, "complete_batch", lambda *a, **k: 1 / 0)
        _is_error(client.post("/v1/completions", json=BODY, headers=auth), 500, "server_error")
        monkeypatch.setattr(engine, "complete_batch", real)
        assert client.post("/v1/completions", json=BODY, headers=auth).status_code == 200


def test_on_loopback_without_tokens_the_api_is_open_and_health_and_metrics_answer(engine, tmp_path):
    with _client(engine, tmp_path / "none.json") as client:
        response = client.post("/v1/completions", json={**BODY, "prompt": [PREFIX, "for i in range("]})
        assert response.status_code == 200
        body = response.json()
        assert body["object"] == "text_completion" and [c["index"] for c in body["choices"]] == [0, 1]
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        assert client.get("/healthz").json()["status"] == "ok"
        metrics = client.get("/metrics").text
        assert 'ghostline_http_requests_total{route="/v1/completions",status="200"} 1.0' in metrics
        assert "process_resident_memory_bytes" in metrics


# -- a real server -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``ghostline serve --http`` on a loopback port with one token; (url, token)."""
    folder = tmp_path_factory.mktemp("team")
    token = TokenStore(folder / "tokens.json").add("ci")
    with team_server(["--tokens", str(folder / "tokens.json"), "--batch-window-ms", "200", "--cpu-threads", "2"],
                     folder / "server.log") as server:
        yield server, token


def test_the_openai_client_parses_completions_and_streams(live):
    server, token = live
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
    result = client.completions.create(model="ghostline", prompt=PREFIX, suffix=SUFFIX, max_tokens=16,
                                       temperature=0)
    assert result.object == "text_completion" and len(result.choices) == 1
    choice = result.choices[0]
    assert isinstance(choice.text, str) and choice.text and choice.finish_reason in ("stop", "length")
    assert result.usage.completion_tokens >= 1 and result.usage.prompt_tokens > 10

    events = list(client.completions.create(model="ghostline", prompt=PREFIX, suffix=SUFFIX, max_tokens=16,
                                            temperature=0, stream=True))
    assert len(events) >= 2 and all(e.object == "text_completion" for e in events)
    assert "".join(e.choices[0].text for e in events) == choice.text  # greedy: the same text, in pieces
    assert [e.choices[0].finish_reason for e in events][-1] == choice.finish_reason
    assert all(e.choices[0].finish_reason is None for e in events[:-1])

    at = next(k for k in range(1, len(choice.text) - 1) if choice.text.find(choice.text[k:k + 2]) == k)
    stop = choice.text[at:at + 2]
    cut = client.completions.create(model="ghostline", prompt=PREFIX, suffix=SUFFIX, max_tokens=16, stop=[stop])
    assert cut.choices[0].text == choice.text[:choice.text.find(stop)] and cut.choices[0].finish_reason == "stop"

    models = client.models.list()
    assert [m.id for m in models.data] == ["ghostline"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="gl_nope", max_retries=0).completions.create(
            model="ghostline", prompt="x", max_tokens=4)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(live):
    server, token = live
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
    prompts = [PREFIX, "class Point:\n    def __init__(self, x, y):\n        self.", "for i in range(",
               "import sys\n\nif __name__ == ", "def add(a, b):\n    return ", "with open(path) as f:\n    "]

    def ask(prompt: str) -> str:
        return client.completions.create(model="ghostline", prompt=prompt, max_tokens=12).choices[0].text

    alone = [ask(p) for p in prompts]
    together: list[str | None] = [None] * len(prompts)
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, ask(prompts[i])))
               for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert together == alone
    metrics = _get(f"{server.url}/metrics")
    counts = {m.group(1): float(m.group(2)) for m in re.finditer(r'ghostline_batch_size_bucket\{le="([^"]+)"\} (\S+)',
                                                                  metrics)}
    assert counts["1.0"] < counts["+Inf"], "no batch held more than one request"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_a_stream_left_early_stops_its_generation(live):
    server, token = live
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
    whole = client.completions.create(model="ghostline", prompt=PREFIX, max_tokens=200)
    assert whole.usage.completion_tokens == 200  # left alone, this prompt runs to its limit
    before = float(re.search(r"^ghostline_generated_tokens_total (\S+)", _get(f"{server.url}/metrics"), re.M)[1])
    stream = client.completions.create(model="ghostline", prompt=PREFIX, max_tokens=200, stream=True)
    next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 30
    while True:
        after = float(re.search(r"^ghostline_generated_tokens_total (\S+)", _get(f"{server.url}/metrics"), re.M)[1])
        if after > before or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert before < after < before + 200


def test_a_non_loopback_address_without_tokens_refuses_to_start(tmp_path):
    (tmp_path / "tokens.json").write_text('{"tokens": []}')
    proc = _ghostline("serve", "--http", "0.0.0.0:8765", "--tokens", str(tmp_path / "tokens.json"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "without tokens" in proc.stderr, proc.stderr
    for bad in (["--http", "nowhere"], ["--http", "127.0.0.1:99999"], ["--http", "127.0.0.1:1", "--tcp", "x:2"],
                ["--http", "127.0.0.1:1", "--max-batch-size", "0"]):
        proc = _ghostline("serve", *bad, "--tokens", str(tmp_path / "tokens.json"))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (bad, proc.stderr)


def test_the_server_stops_cleanly_on_sigterm(tmp_path):
    with team_server(["--tokens", str(tmp_path / "none.json")], tmp_path / "server.log") as server:
        request = urllib.request.Request(f"{server.url}/v1/completions", data=json.dumps(BODY).encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.loads(response.read())["choices"]
        code = server.stop()
    log = (tmp_path / "server.log").read_text()
    # uvicorn shuts down, then ends by the signal it got (systemd counts that as a clean stop);
    # not by an abort (CTranslate2 freeing a batch callback while Python exits: -6)
    assert code in (0, -15) and "Application shutdown complete" in log, (code, log[-2000:])
    assert "Traceback" not in log and "terminate called" not in log


def test_the_language_server_never_loads_the_http_stack():
    code = ("import sys, lsp_server.server, lsp_server.__main__, lsp_server.cli, training.cli; "
            "lsp_server.server.create_server(); training.cli.build_parser(); "
            "bad = [m for m in ('starlette', 'uvicorn', 'prometheus_client') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
