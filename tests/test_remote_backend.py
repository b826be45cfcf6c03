"""The language server's ``backend: "remote"``: completions through a real ``ghostline serve
--http``, the local model when that server is gone (said once), and the token never shown."""

from __future__ import annotations

import re
import urllib.request

import pytest

from lsp_helpers import running_server, until
from lsp_server.remote import completions_url, shown_url
from lsp_server.settings import ServerSettings, parse_settings
from lsp_server.team.process import team_server
from lsp_server.team.tokens import TokenStore

SOURCE = "import os\n\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n    return \n"


@pytest.fixture
def workspace(workspace):
    (workspace / "app.py").write_text(SOURCE)
    return workspace


def _served_completions(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        found = re.search(r'^ghostline_http_requests_total\{route="/v1/completions",status="200"\} (\S+)$',
                          response.read().decode(), re.M)
    return float(found[1]) if found else 0.0


async def test_remote_completions_then_the_local_model_when_the_server_stops(workspace, options, tmp_path):
    token = TokenStore(tmp_path / "tokens.json").add("editor")
    uri = (workspace / "app.py").as_uri()
    with team_server(["--tokens", str(tmp_path / "tokens.json")], tmp_path / "server.log") as http:
        settings = {**options, "backend": "remote", "remoteUrl": f"{http.url}/v1", "remoteToken": token,
                    "lineMemory": False}
        async with running_server(workspace, settings) as client:
            client.open(uri, SOURCE)
            text = await client.inline(uri, 5, 11)
            assert text.strip() and "\n" not in text
            assert _served_completions(http.url) == 1
            assert any("remote completion app.py" in m for m in client.logs), client.logs
            assert client.messages == []

            http.stop()
            fallback = await client.inline(uri, 4, 11)  # another position: no cache
            assert fallback.strip()
            await client.inline(uri, 3, 13)
            await until(lambda: client.messages)
            assert len(client.messages) == 1, client.messages
            assert "cannot be used" in client.messages[0] and "local model" in client.messages[0]
            assert sum("completion app.py" in m and "remote" not in m for m in client.logs) == 2, client.logs
            everything = "\n".join([*client.logs, *client.messages, client.stderr_tail])
            assert token not in everything


async def test_a_refused_token_falls_back_too_and_is_not_repeated(workspace, options, tmp_path):
    TokenStore(tmp_path / "tokens.json").add("someone")
    uri = (workspace / "app.py").as_uri()
    with team_server(["--tokens", str(tmp_path / "tokens.json")], tmp_path / "server.log") as http:
        wrong = "gl_not-the-token"
        settings = {**options, "backend": "remote", "remoteUrl": http.url, "remoteToken": wrong, "lineMemory": False}
        async with running_server(workspace, settings) as client:
            client.open(uri, SOURCE)
            assert (await client.inline(uri, 5, 11)).strip()  # the local model answered
            await until(lambda: client.messages)
            assert "HTTP 401" in client.messages[0]
            assert _served_completions(http.url) == 0
            assert wrong not in "\n".join([*client.logs, *client.messages, client.stderr_tail])


def test_the_token_is_kept_out_of_warnings_and_repr():
    settings, _ = parse_settings({"remoteToken": "gl_secret"})
    assert settings.remote_token == "gl_secret" and "gl_secret" not in repr(settings)
    _, warnings = parse_settings({"remoteToken": 12345}, settings)
    assert warnings and not any("12345" in w or "gl_secret" in w for w in warnings)
    assert parse_settings({"backend": "cloud"})[0] == ServerSettings()


def test_remote_urls():
    assert completions_url("http://h:8000") == "http://h:8000/v1/completions"
    assert completions_url("http://h:8000/v1/") == "http://h:8000/v1/completions"
    assert completions_url("https://h/api/v1/completions") == "https://h/api/v1/completions"
    assert shown_url("http://user:pw@h:8000/v1") == "http://h:8000/v1"
