"""ServerSettings and parse_settings, without a server; and the one check that the VS Code
extension's settings are the server's (names, defaults, limits)."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from lsp_server.settings import DEFAULT_MODEL_DIR, SETTINGS, ServerSettings, camel_case, parse_settings

CLIENT = Path(__file__).resolve().parent.parent / "vscode-client"


def test_nothing_given_means_the_defaults_and_no_warnings():
    assert parse_settings(None) == (ServerSettings(), [])
    assert parse_settings({}) == (ServerSettings(), [])
    defaults = ServerSettings()
    assert defaults.enabled and defaults.max_tokens == 48 and defaults.debounce_ms == 25
    assert defaults.device == "auto" and defaults.similarity_threshold == 0.8 and defaults.model_path == ""


def test_a_non_object_keeps_the_base_with_one_warning():
    base = ServerSettings(max_tokens=7)
    settings, warnings = parse_settings(["maxTokens", 12], base)
    assert settings == base
    assert warnings == ["ghostline settings must be an object, got list; using defaults"]


def test_camel_case_names_map_onto_the_fields():
    settings, warnings = parse_settings({
        "maxTokens": 12, "debounceMs": 0, "modelPath": "/models/x", "cpuThreads": 4, "lineMemory": False,
        "similarityHintsMaxFiles": 3, "staticPromptReuse": False, "cacheDir": "/tmp/c"})
    assert warnings == []
    assert (settings.max_tokens, settings.debounce_ms, settings.model_path, settings.cpu_threads) == (
        12, 0, "/models/x", 4)
    assert (settings.line_memory, settings.similarity_hints_max_files, settings.static_prompt_reuse) == (
        False, 3, False)
    assert settings.cache_dir == "/tmp/c"
    assert camel_case("similarity_hints_max_files") == "similarityHintsMaxFiles" and camel_case("enabled") == "enabled"


def test_every_setting_round_trips_under_its_camel_case_name():
    defaults = ServerSettings()
    for f in SETTINGS:
        settings, warnings = parse_settings({camel_case(f.name): getattr(defaults, f.name)},
                                            ServerSettings(enabled=False))
        assert warnings == [], f.name
        assert getattr(settings, f.name) == getattr(defaults, f.name), f.name


def test_snake_case_names_and_a_whole_configuration_tree_are_accepted():
    assert parse_settings({"max_tokens": 9}) == (ServerSettings(max_tokens=9), [])
    assert parse_settings({"ghostline": {"maxTokens": 9}, "editor": {"x": 1}}) == (ServerSettings(max_tokens=9), [])


def test_settings_merge_over_the_current_ones():
    base, _ = parse_settings({"maxTokens": 9, "device": "cpu"})
    settings, warnings = parse_settings({"debounceMs": 5}, base)
    assert warnings == [] and (settings.max_tokens, settings.device, settings.debounce_ms) == (9, "cpu", 5)


def test_an_unknown_key_is_ignored_with_a_warning_and_the_rest_applies():
    settings, warnings = parse_settings({"maxTokenz": 12, "maxTokens": 13})
    assert settings == ServerSettings(max_tokens=13)
    assert warnings == ["unknown setting ghostline.maxTokenz ignored"]


@pytest.mark.parametrize("key, value", [
    ("maxTokens", "12"), ("maxTokens", 12.0), ("maxTokens", True), ("enabled", 1), ("enabled", "true"),
    ("similarityThreshold", "0.5"), ("similarityThreshold", False), ("device", 3), ("cacheDir", None),
    ("modelPath", 5),
])
def test_a_wrong_type_keeps_the_current_value_with_a_warning(key, value):
    base = ServerSettings(max_tokens=7, enabled=False, similarity_threshold=0.5, device="cpu", cache_dir="/c",
                          model_path="/m")
    settings, warnings = parse_settings({key: value}, base)
    assert settings == base
    name = next(f.name for f in SETTINGS if camel_case(f.name) == key)
    assert warnings == [f"ghostline.{key} = {value!r} is invalid; keeping {getattr(base, name)!r}"]


def test_an_integer_is_a_number_and_a_null_model_path_means_the_default():
    settings, warnings = parse_settings({"similarityThreshold": 1, "modelPath": None}, ServerSettings(model_path="/m"))
    assert warnings == []
    assert settings.similarity_threshold == 1.0 and isinstance(settings.similarity_threshold, float)
    assert settings.model_path == ""


@pytest.mark.parametrize("key, low, high", [
    ("maxTokens", 1, 512), ("maxBlockTokens", 1, 1024), ("maxBlockLines", 1, 200), ("debounceMs", 0, 2000),
    ("cpuThreads", 0, 256), ("maxPrefixTokens", 16, 4096), ("maxSuffixTokens", 0, 2048),
    ("retrievalTokens", 0, 2048), ("similarityHintsMaxFiles", 0, 10_000_000),
    ("similarityMaxFiles", 1, 10_000_000), ("similarityThreshold", 0.0, 1.0),
])
def test_limits_are_inclusive_and_a_value_outside_them_is_refused_not_clamped(key, low, high):
    name = next(f.name for f in SETTINGS if camel_case(f.name) == key)
    for value in (low, high):
        settings, warnings = parse_settings({key: value})
        assert warnings == [] and getattr(settings, name) == value
    step = 0.01 if isinstance(low, float) else 1
    for value in (low - step, high + step):
        settings, warnings = parse_settings({key: value})
        assert settings == ServerSettings()
        assert warnings == [f"ghostline.{key} = {value!r} is invalid; keeping {getattr(ServerSettings(), name)!r}"]


def test_device_is_one_of_its_choices():
    for device in ("auto", "cpu", "cuda"):
        assert parse_settings({"device": device}) == (ServerSettings(device=device), [])
    settings, warnings = parse_settings({"device": "tpu"}, ServerSettings(device="cpu"))
    assert settings.device == "cpu" and warnings == ["ghostline.device = 'tpu' is invalid; keeping 'cpu'"]
    assert parse_settings({"device": "CPU"})[1], "choices are case-sensitive"


def test_the_launch_model_is_no_client_setting_and_the_client_model_path_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("GHOSTLINE_MODEL", raising=False)
    settings, warnings = parse_settings({"launchModelPath": "/x", "launch_model_path": "/x"})
    assert settings == ServerSettings() and len(warnings) == 2
    assert ServerSettings().resolved_model_path() == DEFAULT_MODEL_DIR
    monkeypatch.setenv("GHOSTLINE_MODEL", str(tmp_path / "env"))
    assert ServerSettings().resolved_model_path() == tmp_path / "env"
    launched = ServerSettings(launch_model_path=str(tmp_path / "launched"))
    assert launched.resolved_model_path() == tmp_path / "launched"
    after, _ = parse_settings({"modelPath": ""}, launched)  # what VS Code sends by default
    assert after.resolved_model_path() == tmp_path / "launched"
    after, _ = parse_settings({"modelPath": str(tmp_path / "chosen")}, launched)
    assert after.resolved_model_path() == tmp_path / "chosen"


def test_every_field_but_the_launch_model_and_workspace_is_a_client_setting():
    server_only = {f.name for f in fields(ServerSettings)} - {f.name for f in SETTINGS}
    assert server_only == {"launch_model_path", "workspace_root"}


def _client_only_names() -> set[str]:
    """``CLIENT_ONLY`` of vscode-client/src/config.ts: the settings the extension keeps."""
    source = (CLIENT / "src" / "config.ts").read_text()
    found = re.search(r"CLIENT_ONLY\b[^=]*= new Set\(\[([^\]]*)\]\)", source)
    assert found, "CLIENT_ONLY not found in config.ts"
    return set(re.findall(r"'([^']+)'", found.group(1)))


def test_the_vscode_settings_are_the_server_settings_with_the_same_defaults_and_limits():
    properties = json.loads((CLIENT / "package.json").read_text())["contributes"]["configuration"]["properties"]
    client_only = _client_only_names()
    assert client_only == {"pythonPath", "trace.server"}
    contributed = {key.removeprefix("ghostline."): value for key, value in properties.items()}
    assert all(key.startswith("ghostline.") for key in properties)
    server = {camel_case(f.name): f for f in SETTINGS}
    assert set(contributed) - client_only == set(server)
    json_type = {bool: "boolean", int: "integer", float: "number", str: "string"}
    for name, f in server.items():
        prop = contributed[name]
        assert prop["default"] == f.default and type(prop["default"]) is type(f.default) \
            or (isinstance(f.default, float) and isinstance(prop["default"], (int, float))), name
        assert prop["type"] == json_type[type(f.default)], name
        assert prop.get("minimum") == f.metadata.get("minimum"), f"minimum of ghostline.{name}"
        assert prop.get("maximum") == f.metadata.get("maximum"), f"maximum of ghostline.{name}"
        assert prop.get("enum") == (list(f.metadata["choices"]) if "choices" in f.metadata else None), name


async def test_a_burst_of_bad_settings_is_one_message(tmp_path):
    import asyncio

    from lsp_helpers import running_server, until

    bad = {name: "not a value" for name in ("maxTokens", "debounceMs", "cpuThreads", "maxBlockLines",
                                            "retrievalTokens")}
    async with running_server(tmp_path, {**bad, "noSuchSetting": 1}) as client:
        await until(lambda: client.messages)
        await asyncio.sleep(0.5)  # anything else would have arrived with the first
        assert len(client.messages) == 1, client.messages
        assert "6 settings ignored" in client.messages[0] and "see the log" in client.messages[0]


def test_cpu_threads_0_leaves_a_core_for_the_servers_own_work(monkeypatch):
    """``cpuThreads`` 0 gives the model every core but one (at most 4): on 2 cores, one thread
    (two made the first key of a line wait for the server's own work); a number is kept."""
    from lsp_server import models

    assert models.inference_threads(3) == 3
    for cores, threads in ((1, 1), (2, 1), (4, 3), (16, 4)):
        monkeypatch.setattr(models.os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)), raising=False)
        assert models.inference_threads(0) == threads
