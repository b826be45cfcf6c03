"""Acceptance telemetry: the server's local event log and ``ghostline stats``.

Through a real LSP client and the shipped model: inline completions carry an id in their
command, the client's events (and the command, as VS Code runs it on a whole accept) become
JSON lines in the cache folder with no code in them, ``ghostline stats`` counts them, nothing
is written with ``telemetry`` off, and broken events leave the server serving.  The log's
rotation and the folding of events into suggestions are tested without a server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_helpers import running_server, until
from lsp_server.client import inline_params
from lsp_server.settings import ServerSettings
from lsp_server.stats import load, read_suggestions, report, summarize
from lsp_server.telemetry import ACCEPTED_COMMAND, EVENT_METHOD, FIELDS, EventLog, Origin, Telemetry, log_path

ROOT = Path(__file__).resolve().parent.parent
# Lines 9 and 10 start like lines 4 and 5: line memory completes them from there.
SOURCE = ("import os\n\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n    return path\n\n\n"
          "def other(argv):\n    path = os.pa\n    return \n")
LINE_MEMORY_AT = (9, 16)
RETURN_AT = (10, 11)  # after "    return "


@pytest.fixture
def workspace(workspace):
    (workspace / "app.py").write_text(SOURCE)
    return workspace


async def inline_item(client, uri: str, line: int, character: int) -> types.InlineCompletionItem:
    result = await client.text_document_inline_completion_async(inline_params(uri, line, character))
    assert result.items, "the server made no suggestion"
    return result.items[0]


def event(client, suggestion_id, kind: str, chars: int | None = None) -> None:
    params = {"id": suggestion_id, "event": kind} | ({"acceptedChars": chars} if chars is not None else {})
    client.protocol.notify(EVENT_METHOD, params)


async def accept(client, item: types.InlineCompletionItem):
    """What VS Code does after inserting a whole suggestion: run the item's command, which the
    language client sends to the server as workspace/executeCommand."""
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=item.command.command, arguments=list(item.command.arguments)))


def read_log(cache: Path) -> list[dict]:
    path = log_path(cache)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ghostline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


async def test_events_are_logged_without_code_and_stats_counts_them(workspace, options, tmp_path):
    cache = Path(options["cacheDir"])
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, SOURCE)
        shown = await inline_item(client, uri, *LINE_MEMORY_AT)
        assert shown.insert_text == "th.join(argv[0], 'x')"
        suggestion_id, length = shown.command.arguments
        assert shown.command.command == ACCEPTED_COMMAND and length == len(shown.insert_text)
        event(client, suggestion_id, "shown")
        client.change(uri, 2, (9, 16), (9, 16), "t")  # typing the suggestion's first character
        rest = await inline_item(client, uri, 9, 17)
        assert rest.insert_text == "h.join(argv[0], 'x')" and list(rest.command.arguments) == [suggestion_id, 20]
        event(client, suggestion_id, "shown")  # the same suggestion: logged as shown once
        event(client, suggestion_id, "partial", 7)  # a word of it ("h.join(", Ctrl+Right)
        client.change(uri, 3, (9, 17), (9, 17), "h.join(")
        last = await inline_item(client, uri, 9, 24)
        assert last.insert_text == "argv[0], 'x')" and list(last.command.arguments) == [suggestion_id, 13]
        assert await accept(client, last) is None  # then the rest (Tab)

        other = await inline_item(client, uri, *RETURN_AT)
        assert other.insert_text == "path" and other.command.arguments[0] != suggestion_id
        event(client, other.command.arguments[0], "shown")
        event(client, other.command.arguments[0], "typedOver")
        event(client, "0123456789abcdef", "shown")  # an id this server never gave: ignored
        await until(lambda: len(read_log(cache)) == 5)

    lines = read_log(cache)
    assert [(e["event"], e["id"]) for e in lines] == [
        ("shown", suggestion_id), ("partial", suggestion_id), ("accepted", suggestion_id),
        ("shown", other.command.arguments[0]), ("typedOver", other.command.arguments[0])]
    first = lines[0]
    assert set(first) == set(FIELDS) - {"text"}
    assert first["source"] == "line memory" and first["language"] == "python" and first["model"] is None
    assert first["shownChars"] == 21 and 0 < first["confidence"] <= 1 and first["latencyMs"] > 0
    assert [e["acceptedChars"] for e in lines] == [0, 7, 13, 0, 0]
    raw = log_path(cache).read_text()
    assert "join" not in raw and "argv" not in raw and "path" not in raw, "code text in the log"

    proc = ghostline("stats", "--log", str(log_path(cache)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 suggestions shown, 1 taken (50.0 %): 1 whole, 0 in part; 1 typed over; "
                                  "20 characters accepted"), proc.stdout
    assert any(row.split()[:4] == ["line", "memory", "2", "1"] for row in proc.stdout.splitlines()), proc.stdout
    assert ghostline("stats", "--cache-dir", str(cache)).stdout == proc.stdout  # the same default file


async def test_model_suggestions_name_the_model_and_text_is_logged_only_when_asked(workspace, options):
    cache = Path(options["cacheDir"])
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, {**options, "lineMemory": False, "telemetryIncludeText": True}) as client:
        client.open(uri, SOURCE)
        item = await inline_item(client, uri, *RETURN_AT)
        event(client, item.command.arguments[0], "shown")
        await until(lambda: read_log(cache))
    (line,) = read_log(cache)
    assert line["source"] == "model" and line["model"] == "default" and line["text"] == item.insert_text


async def test_telemetry_off_gives_no_ids_and_writes_nothing(workspace, options):
    cache = Path(options["cacheDir"])
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, SOURCE)
        item = await inline_item(client, uri, *LINE_MEMORY_AT)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"ghostline": {"telemetry": False}}))
        event(client, item.command.arguments[0], "shown")  # an id from before: still nothing
        assert await accept(client, item) is None
        client.change(uri, 2, (9, 16), (9, 16), "t")
        quiet = await inline_item(client, uri, 9, 17)
        assert quiet.insert_text and quiet.command is None
        await asyncio.sleep(0.5)  # whatever the server would write has been written by now
    assert not log_path(cache).exists()
    proc = ghostline("stats", "--cache-dir", str(cache))
    assert proc.returncode == 0 and proc.stdout.startswith("no suggestions recorded yet"), proc.stdout


MALFORMED = [
    None, [1, 2], "shown", 7, {}, {"id": "x"}, {"event": "shown"}, {"id": 5, "event": "shown"},
    {"id": "x" * 65, "event": "shown"}, {"id": "ID", "event": "clicked"}, {"id": "ID", "event": ["shown"]},
    {"id": "ID", "event": "partial", "acceptedChars": -1}, {"id": "ID", "event": "partial", "acceptedChars": "3"},
    {"id": "ID", "event": "partial", "acceptedChars": 2.5}, {"id": "ID", "event": "partial", "acceptedChars": True},
]


async def test_malformed_events_are_dropped_and_the_server_keeps_serving(workspace, options):
    cache = Path(options["cacheDir"])
    uri = (workspace / "app.py").as_uri()
    async with running_server(workspace, options) as client:
        client.open(uri, SOURCE)
        item = await inline_item(client, uri, *LINE_MEMORY_AT)
        suggestion_id = item.command.arguments[0]
        for params in MALFORMED:  # "ID": the real id, so that only the broken field is wrong
            if isinstance(params, dict) and params.get("id") == "ID":
                params = {**params, "id": suggestion_id}
            client.protocol.notify(EVENT_METHOD, params)
        for arguments in ([], [suggestion_id], [7, 3], [suggestion_id, -3], [suggestion_id, "3"], None):
            with pytest.raises(Exception, match="suggestion id|arguments|must be an integer"):
                await client.workspace_execute_command_async(types.ExecuteCommandParams(
                    command=ACCEPTED_COMMAND, arguments=arguments))
        assert (await inline_item(client, uri, *LINE_MEMORY_AT)).insert_text == item.insert_text
        await until(lambda: sum("ignored a ghostline/suggestionEvent" in m for m in client.logs) == len(MALFORMED))
        assert client.messages == []  # log lines, never a popup
    assert not log_path(cache).exists()


def _origin(source: str = "model", language: str = "python") -> Origin:
    return Origin.new(source, language, 0.5, "default")


def test_the_log_rotates_and_stats_reads_both_files(tmp_path):
    settings = ServerSettings(cache_dir=str(tmp_path))
    telemetry = Telemetry(lambda: settings, events=EventLog(max_bytes=2000))
    ids = [telemetry.offer(_origin(), "x = 1", 12.0) for _ in range(12)]
    for i in ids:
        assert telemetry.record(i, "shown")
    path = log_path(tmp_path)
    rotated = path.with_name("events.1.jsonl")
    assert rotated.exists() and path.stat().st_size <= 2000 and rotated.stat().st_size <= 2000
    assert len(path.read_text().splitlines()) + len(rotated.read_text().splitlines()) == 12
    assert load(path).total.shown == 12


def test_old_ids_are_forgotten_and_unknown_events_refused(tmp_path):
    settings = ServerSettings(cache_dir=str(tmp_path))
    telemetry = Telemetry(lambda: settings, capacity=2)
    first, second, third = (telemetry.offer(_origin(), "y", 1.0) for _ in range(3))
    assert not telemetry.record(first, "shown")  # pushed out by the third
    assert telemetry.record(second, "shown") and telemetry.record(third, "accepted", 1)
    with pytest.raises(ValueError):
        telemetry.record(second, "clicked")


def test_accepted_characters_never_exceed_the_suggestion(tmp_path):
    settings = ServerSettings(cache_dir=str(tmp_path))
    telemetry = Telemetry(lambda: settings)
    sid = telemetry.offer(_origin(), "return total", 5.0)
    telemetry.record(sid, "partial", 7)  # "return "
    telemetry.record(sid, "accepted", 12)  # the command of the item first shown: 12 characters, 5 of them new
    assert [e["acceptedChars"] for e in map(json.loads, log_path(tmp_path).read_text().splitlines())] == [7, 5]


def test_an_unwritable_cache_folder_is_reported_once_and_loses_only_the_events(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("lsp_server"), "propagate", True)  # a server in this process stops it
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = ServerSettings(cache_dir=str(blocker))
    telemetry = Telemetry(lambda: settings)
    ids = [telemetry.offer(_origin(), "z", 1.0) for _ in range(2)]
    assert not telemetry.record(ids[0], "shown") and not telemetry.record(ids[1], "shown")
    assert len([r for r in caplog.records if "cannot write" in r.message]) == 1


def _line(t: datetime, kind: str, sid: str, source="model", language="python", latency=30.0, chars=0) -> str:
    return json.dumps({"time": t.isoformat(), "event": kind, "id": sid, "source": source, "language": language,
                       "latencyMs": latency, "acceptedChars": chars})


def test_stats_fold_events_into_suggestions_by_source_language_and_latency():
    now = datetime.now(UTC)
    lines = [
        _line(now, "shown", "a", latency=20), _line(now, "typedOver", "a", latency=20),
        _line(now, "accepted", "a", chars=12, latency=20),  # typed over, then accepted: accepted
        _line(now, "shown", "b", "line memory", latency=70), _line(now, "partial", "b", "line memory", chars=4),
        _line(now, "partial", "b", "line memory", latency=70, chars=5),
        _line(now, "shown", "c", "adapted model", "typescript", latency=650),
        _line(now, "shown", "d", latency=120), _line(now, "typedOver", "d", latency=120),
        "not json", json.dumps({"event": "shown"}), json.dumps(["shown"]),
        _line(now, "clicked", "e"),
    ]
    suggestions, skipped = read_suggestions(lines)
    stats = summarize(suggestions, skipped)
    assert skipped == 4
    t = stats.total
    assert (t.shown, t.accepted, t.partial, t.typed_over, t.accepted_chars) == (4, 1, 1, 1, 21)
    assert t.rate == 0.5
    assert list(stats.by_source) == ["model", "line memory", "adapted model"]  # most shown first
    assert stats.by_source["line memory"].accepted_chars == 9 and stats.by_source["line memory"].rate == 1.0
    assert {k: r.shown for k, r in stats.by_language.items()} == {"python": 3, "typescript": 1}
    assert {k: (r.shown, r.taken) for k, r in stats.by_latency.items()} == {
        "<50 ms": (1, 1), "50-100 ms": (1, 1), "100-200 ms": (1, 0), ">=500 ms": (1, 0)}
    text = report(stats, Path("events.jsonl"))
    assert text.startswith("4 suggestions shown, 2 taken (50.0 %)") and "4 lines were not events" in text


def test_stats_since_keeps_the_last_days_only(tmp_path):
    now = datetime.now(UTC)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([_line(now - timedelta(days=10), "shown", "old"),
                               _line(now - timedelta(hours=2), "shown", "new"),
                               _line(now - timedelta(hours=1), "accepted", "new", chars=3)]) + "\n")
    assert load(path).total.shown == 2
    recent = load(path, since_days=1, now=now).total
    assert (recent.shown, recent.accepted, recent.accepted_chars) == (1, 1, 3)
    proc = ghostline("stats", "--log", str(path), "--since", "0.01")
    assert proc.returncode == 0 and proc.stdout.strip() == f"no suggestions recorded in the last 0.01 days in {path}"


def test_stats_plots_a_png_and_says_so_in_one_line_without_matplotlib(tmp_path):
    now = datetime.now(UTC)
    path = tmp_path / "events.jsonl"
    path.write_text(_line(now, "shown", "a") + "\n" + _line(now, "accepted", "a", chars=4) + "\n")
    out = tmp_path / "img" / "stats.png"
    proc = ghostline("stats", "--log", str(path), "--plot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {out}" in proc.stdout
    code = ("import sys; sys.modules['matplotlib'] = None; from training.cli import main; "
            f"main(['stats', '--log', {str(path)!r}, '--plot', {str(tmp_path / 'no.png')!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip() == "ghostline: --plot needs matplotlib: pip install matplotlib"


def test_stats_arguments_and_a_missing_log_get_one_line(tmp_path):
    for argv, message in [(["--since", "0"], "must be a positive number"), (["--since", "x"], "not a number"),
                          (["--log", str(tmp_path / "none.jsonl")], "no such file")]:
        proc = ghostline("stats", *argv)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, (
            argv, proc.stderr)
