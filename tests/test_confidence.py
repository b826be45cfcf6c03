"""Knowing when to stay quiet: confidences, ``minConfidence``, and languages the model
was never trained on -- through a real LSP client."""

from __future__ import annotations

from lsprotocol import types

from lsp_helpers import explain as _explain
from lsp_helpers import running_server, status, until


def _field(obj, name):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


SESSION = ("session = make_session()\nsession.mount('https://', adapter)\nsession.headers.update(HEADERS)\n"
           "response = session.get(url, timeout=5)\nsession.close()\nsession.")


async def test_a_copied_line_carries_its_confidence_and_min_confidence_silences_it(tmp_path, tiny_model):
    uri = (tmp_path / "client.py").as_uri()
    line, col = 5, len("session.")
    options = {"modelPath": str(tiny_model), "debounceMs": 0, "minConfidence": 0.0}  # show everything
    async with running_server(tmp_path, options) as client:
        client.open(uri, SESSION + "\n")
        shown = await client.inline(uri, line, col)
        explained = await _explain(client, uri, line, col)
        assert explained.lineMemory == shown and shown  # line memory answered ...
        assert 0.0 < explained.confidence < 1.0  # ... with a confidence,
        last = explained.suggestion  # the suggestion shown there, as the editor got it
        assert (_field(last, "text"), _field(last, "source")) == (shown, "line memory")
        assert _field(last, "confidence") == explained.confidence
        texts = [_field(c, "text") for c in explained.candidates]
        assert shown == texts[0] and len(texts) >= 2  # the best of every copy it could make
        assert "close()" not in texts  # (but not the line above again)
        confidence = explained.confidence
    # Above the shown suggestion's confidence, line memory stays quiet (the model, asked
    # instead, may still answer: it has its own confidence).
    async with running_server(tmp_path, {**options, "minConfidence": min(1.0, confidence + 0.01)}) as client:
        client.open(uri, SESSION + "\n")
        assert await client.inline(uri, line, col) != shown
        assert (await _explain(client, uri, line, col)).lineMemory is None
    async with running_server(tmp_path, {**options, "minConfidence": 1.0}) as client:
        client.open(uri, SESSION + "\n")
        assert await client.inline(uri, line, col) == ""  # nothing is that sure


async def test_a_language_the_model_does_not_know_gets_line_memory_and_no_guesses(tmp_path, tiny_model):
    uri = (tmp_path / "app.js").as_uri()
    text = "const fs = require('fs');\nconst path = require('path');\nfunction load(name) {\n  return fs.\n}\n"
    options = {"modelPath": str(tiny_model), "debounceMs": 0, "minConfidence": 0.0}  # show every copied line
    async with running_server(tmp_path, options) as client:
        client.open(uri, text, language="javascript")
        assert await client.inline(uri, 3, len("  return fs.")) == ""  # no model guess
        await until(lambda: "line memory" in (status(client, "message") or ""), timeout=30)
        assert "javascript" in status(client, "message")
        # Later status updates (here the settings applied again) keep saying why.
        client.status = None
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostline": options}))
        await until(lambda: client.status is not None)
        assert "javascript" in (status(client, "message") or "")
        # Line memory still works: a line that exists in the document is copied.
        other = (tmp_path / "other.js").as_uri()
        client.open(other, "const os = require('os');\nconst p2 = req\n", language="javascript")
        assert await client.inline(other, 1, len("const p2 = req")) == "uire('os');"
        explained = await _explain(client, uri, 3, len("  return fs."))
        assert "javascript" in explained.languageNote
