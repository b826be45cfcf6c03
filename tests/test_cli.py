"""The ``ghostline`` command: one parser for both halves, one version, one location parser,
and the import rules between the halves (checked in fresh interpreters)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import model
from lsp_helpers import running_server
from lsp_server.cli import CliError, Location, parse_location
from lsp_server.settings import DEFAULT_MODEL_DIR
from training.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_version_is_defined_once_and_printed_by_ghostline_version():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "model.__version__"}
    proc = subprocess.run([sys.executable, "-m", "training.cli", "--version"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == f"ghostline {model.__version__}"
    from lsp_server.client import GhostlineClient
    from lsp_server.server import VERSION

    assert model.__version__ == VERSION and GhostlineClient().version == model.__version__


def test_one_parser_knows_every_command():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"train", "adapt", "export", "eval", "serve", "tokens", "complete", "index", "similar",
                                "stats"}


def test_the_serving_cli_never_imports_training_or_torch():
    proc = _fresh("import sys, lsp_server.cli, lsp_server.__main__; "
                  "bad = [m for m in sys.modules if m.split('.')[0] in ('training', 'torch', 'transformers')]; "
                  "print(bad); sys.exit(1 if bad else 0)")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_dispatcher_imports_no_torch_and_the_training_library_no_cli():
    proc = _fresh("import sys, training.cli; training.cli.build_parser(); "
                  "bad = [m for m in ('torch', 'transformers', 'training.train') if m in sys.modules]; "
                  "print(bad); sys.exit(1 if bad else 0)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _fresh("import sys, training.train; sys.exit(1 if 'training.cli' in sys.modules else 0)")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_serving_and_eval_arguments_get_one_line(tmp_path):
    cases = [
        (["similar", "tests/fixtures/demo.py:x"], "expected FILE:START-END (1-based lines), got"),
        (["similar", "tests/fixtures/demo.py:5-2"], "lines must satisfy 1 <= START <= END <= 18"),
        (["similar", "nofile.py:1-2"], "no such file: nofile.py"),
        (["index", str(tmp_path / "missing")], "not a folder"),
        (["eval", "clones", str(tmp_path / "none.jsonl")], "no such file"),
        (["eval", "fim", "model/default", "--examples", str(tmp_path / "none.jsonl")], "no such file"),
        (["eval", "lines", "x.jsonl", "--repos", ".", "--setting", "maxPrefixTokens=many"], "maxPrefixTokens"),
        (["eval", "lines", "x.jsonl", "--repos", ".", "--setting", "noSuchThing=1"], "unknown setting"),
        (["eval", "lines", "x.jsonl", "--repos", ".", "--setting", "tokenHealing"], "expected NAME=VALUE"),
        (["eval", "lines", "x.jsonl", "--repos", ".", "--curve", "0,1.5"], "confidences go from 0 to 1"),
        # a run folder instead of its export, and a dump with nowhere to go: refused before the run
        (["eval", "lines", "tests/fixtures/demo.py", "--repos", ".", "--model", str(tmp_path)], "model.bin is missing"),
        (["eval", "lines", "tests/fixtures/demo.py", "--repos", ".", "--dump", str(tmp_path / "no" / "d.jsonl")],
         "no such folder"),
        (["serve", "--model", str(tmp_path / "missing")], "not a folder"),
        (["export", "model/default", str(tmp_path / "out"), "--second-opinion-sure", "60"],
         "confidences go from 0 to 1"),
        (["bogus"], "invalid choice"),
    ]
    for argv, message in cases:
        proc = subprocess.run([sys.executable, "-m", "training.cli", *argv], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, (argv, proc.stderr)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "m.py"
    path.write_text("a = 1\nbb = 2\n\nccc = 3")
    return path


def test_a_file_line_column_location(source):
    assert parse_location(f"{source}:2:3", with_column=True) == Location(source, source.read_text(), 2, 2, 3)
    assert parse_location(f"{source}:4:8", with_column=True).column == 8  # just past the last character
    for spec in (f"{source}:5:1", f"{source}:0:1", f"{source}:2:8", f"{source}:1:0"):
        with pytest.raises(CliError, match=r"position outside the file \(4 lines\)"):
            parse_location(spec, with_column=True)
    for spec in (str(source), f"{source}:2", f"{source}:a:1"):
        with pytest.raises(CliError, match=r"expected FILE:LINE:COLUMN \(1-based line and column\), got"):
            parse_location(spec, with_column=True)


def test_a_file_start_end_location(source):
    assert parse_location(f"{source}:2-4", with_column=False) == Location(source, source.read_text(), 2, 4)
    assert parse_location(f"{source}:3", with_column=False) == Location(source, source.read_text(), 3, 3)
    for spec in (f"{source}:3-2", f"{source}:0-1", f"{source}:1-5"):
        with pytest.raises(CliError, match=r"lines must satisfy 1 <= START <= END <= 4"):
            parse_location(spec, with_column=False)
    for spec in (str(source), f"{source}:1-x", f"{source}:"):
        with pytest.raises(CliError, match=r"expected FILE:START-END \(1-based lines\), got"):
            parse_location(spec, with_column=False)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CliError, match="no such file: .*nope.py"):
        parse_location(f"{tmp_path / 'nope.py'}:1:1", with_column=True)


async def test_serve_model_is_the_model_when_the_client_leaves_model_path_empty(tmp_path, monkeypatch, workspace,
                                                                                 options):
    monkeypatch.delenv("GHOSTLINE_MODEL", raising=False)
    launched = tmp_path / "launched"
    shutil.copytree(DEFAULT_MODEL_DIR, launched)
    args = ("-m", "lsp_server", "--model", str(launched))
    async with running_server(workspace, {**options, "modelPath": ""}, server_args=args) as client:
        deadline = time.monotonic() + 60
        while client.status is None or getattr(client.status, "state", None) in (None, "loading"):
            assert time.monotonic() < deadline, client.status
            await asyncio.sleep(0.05)
        assert client.status.model == "launched" and client.status.state == "ready", client.status


def _eval_lines_demo(tmp_path: Path, cuts: list[tuple[int, int]]) -> Path:
    """A one-file repository under ``tmp_path/repos`` and its examples: (line number, cut column)."""
    import json

    repo = tmp_path / "repos" / "demo"
    repo.mkdir(parents=True)
    lines = [f"value_{i} = compute(value_{i - 1}, step={i})" for i in range(1, 30)]
    (repo / "mod.py").write_text("\n".join(lines) + "\n")
    examples = tmp_path / "lines.jsonl"
    examples.write_text("".join(json.dumps({"id": f"demo-{n}", "repo": "demo", "path": "mod.py", "line_no": n,
                                            "cut_col": cut, "gt": lines[n - 1][cut:]}) + "\n" for n, cut in cuts))
    return examples


def test_eval_lines_prints_the_precision_coverage_curve_one_run_per_point(tmp_path, tiny_model):
    """``--curve``: a run per minConfidence value, through the server; nothing is that sure
    at 1, everything that was suggested is shown at 0."""
    examples = _eval_lines_demo(tmp_path, [(10, len("value_10 = ")), (20, len("value_20 = "))])
    proc = subprocess.run([sys.executable, "-m", "training.cli", "eval", "lines", str(examples), "--repos",
                           str(tmp_path / "repos"), "--model", str(tiny_model), "--curve", "0,1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.split("precision/coverage", 1)[1].splitlines()[1:]
    assert [row.split(":")[0].strip() for row in rows] == ["0.00", "1.00"]
    assert "shown 0.0%" in rows[1] and "shown 0.0%" not in rows[0]


def test_eval_lines_dump_says_where_each_suggestion_came_from(tmp_path, tiny_model):
    """``--dump``: every row has the prediction, its source and its confidence, as the
    server reported them for what it showed."""
    import json

    examples = _eval_lines_demo(tmp_path, [(10, len("value_10 = ")), (20, len("value_20 = comp"))])
    dump = tmp_path / "dump.jsonl"
    proc = subprocess.run([sys.executable, "-m", "training.cli", "eval", "lines", str(examples), "--repos",
                           str(tmp_path / "repos"), "--model", str(tiny_model), "--dump", str(dump),
                           "--setting", "minConfidence=0"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["demo-10", "demo-20"]
    for row in rows:
        assert row["pred"], row  # minConfidence 0: something is shown
        assert row["source"] in ("line memory", "model") and 0 < row["confidence"] <= 1, row
    assert rows[1]["source"] == "line memory"  # ``comp`` begins every line's call


def test_eval_lines_mid_word_asks_from_inside_the_answers_first_word(tmp_path, tiny_model):
    """``--mid-word``: each answer that starts with a word of 3+ characters is asked for again
    with half the word typed (what a cursor meets while typing); other answers are left out."""
    import json

    cuts = [(10, len("value_10 = ")), (20, len("value_20 = compute(value_19, ")), (5, len("value_5 = compute(value_4"))]
    examples = _eval_lines_demo(tmp_path, cuts)
    dump = tmp_path / "dump.jsonl"
    proc = subprocess.run([sys.executable, "-m", "training.cli", "eval", "lines", str(examples), "--repos",
                           str(tmp_path / "repos"), "--model", str(tiny_model), "--dump", str(dump), "--mid-word",
                           "--setting", "minConfidence=0"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "cut inside words): 2 examples" in proc.stdout, proc.stdout
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [(r["id"], r["gt"]) for r in rows] == [("demo-10-mid-word", "pute(value_9, step=10)"),
                                                   ("demo-20-mid-word", "ep=20)")]
    # ``com`` typed: every other line goes on with ``pute(``, and so does the suggestion.
    assert rows[0]["pred"].startswith("pute("), rows[0]


def test_eval_fim_finds_the_true_lines_likelier_than_wrong_ones(tmp_path):
    """``eval fim``: the shipped model's likelihood of each example's line, filled in the
    middle; the file's own pattern scores far better than the same lines scrambled."""
    from training.eval_fim import line_likelihood
    from training.eval_lines import load_examples

    examples = load_examples(_eval_lines_demo(tmp_path, [(n, len(f"value_{n} = ")) for n in (8, 14, 22)]))
    right = line_likelihood(ROOT / "model" / "default", examples, tmp_path / "repos")
    for ex in examples:
        ex.gt = ex.gt[::-1]
    wrong = line_likelihood(ROOT / "model" / "default", examples, tmp_path / "repos")
    assert right.n == wrong.n == 3 and right.chars == wrong.chars
    assert right.nats_per_char < wrong.nats_per_char / 2, (right.line(), wrong.line())
    proc = subprocess.run([sys.executable, "-m", "training.cli", "eval", "fim", "model/default", "--examples",
                           str(tmp_path / "lines.jsonl"), "--repos", str(tmp_path / "repos")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and "3 lines:" in proc.stdout, proc.stderr
