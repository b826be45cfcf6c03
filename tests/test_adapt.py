"""``ghostline adapt``: a model fine-tuned on the workspace, found by the server on its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lsp_helpers import RecordingClient, insert, running_server, status, until
from model.adapted import adapted_dir, read_adapted
from model.config import ModelConfig
from training.adapt import AdaptConfig, adapt, workspace_files

pytestmark = pytest.mark.slow

MODULE = '''"""Orders for the bakery."""

from dataclasses import dataclass


@dataclass
class Order:
    customer: str
    loaves: int

    def total(self, price_per_loaf: float) -> float:
        return self.loaves * price_per_loaf


def parse_order(line: str) -> Order:
    customer, loaves = line.split(",")
    return Order(customer=customer.strip(), loaves=int(loaves))
'''


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "bakery"
    (ws / "bakery").mkdir(parents=True)
    for i in range(4):
        (ws / "bakery" / f"orders_{i}.py").write_text(MODULE.replace("Order", f"Order{i}"))
    (ws / "build").mkdir()
    (ws / "build" / "generated.py").write_text(MODULE)  # an output folder: never learnt from
    (ws / ".gitignore").write_text("secret_*.py\n")
    (ws / "secret_keys.py").write_text(MODULE.replace("Order", "Secret"))
    return ws


def test_adapt_learns_only_what_the_workspace_keeps(workspace):
    files, _ = workspace_files(workspace, ("python",), 10_000_000)
    assert sorted(p for p, _ in files) == [f"bakery/orders_{i}.py" for i in range(4)]


def test_lines_being_written_are_left_out_of_what_adaptation_learns(workspace):
    """A file saved mid-edit holds lines cut where the cursor stood: learnt as they are,
    they teach the model that the code ends there.  Those lines are left out; every
    finished line stays, in its order."""
    editing = (MODULE.replace("        return self.loaves * price_per_loaf\n", "        \n")
               .replace("    customer, loaves = line.split(\",\")\n",
                        "    customer, loaves = line.split(\n    fields = \n    items = line.\n")
               + "x = 1   \n")
    (workspace / "bakery" / "orders_0.py").write_text(editing)
    files, stats = workspace_files(workspace, ("python",), 10_000_000)
    kept = dict(files)["bakery/orders_0.py"].split("\n")
    cut = {"        ", "    customer, loaves = line.split(", "    fields = ", "    items = line.", "x = 1   "}
    assert [line for line in editing.split("\n") if line not in cut] == kept
    assert stats["unfinished lines"] == 5


FINISHED = '''from os.path import *


class Stub:
    def read(self) -> bytes: ...


def total(order, price):
    if (order.loaves > 0 and
            price > 0):
        pass
    names = (order.first +
             order.last)
    return order.loaves * price_per_loaf(
        price,
    )


RATE = 20.
HELP = dict(name="total", doc=
            """Adds up
    an order (with its loaves)""")


def price_per_loaf(
    price,
) -> float:
    """price"""
    return price
'''


def test_finished_code_is_learnt_whole():
    """Brackets left open for the lines below, a condition broken after ``and``, a star
    import and a stub's ellipsis are finished code."""
    from lsp_server.unfinished import unfinished_lines

    assert unfinished_lines(FINISHED, "python") == {}
    cut = FINISHED.replace("    names = (order.first +\n             order.last)\n", "    names = order.first +\n")
    assert unfinished_lines(cut, "python") == {11: "ends mid-expression"}


def test_statements_cut_where_no_finished_code_stops_are_unfinished():
    """A signature cut before its body (the body is indented as arguments would be but
    never closes the bracket), a header without its colon, a name alone, ``from x`` without
    its import, an argument cut after its dot: each is left out, and nothing else."""
    from lsp_server.unfinished import unfinished_lines

    cut = (FINISHED.replace("def total(order, price):", "def total(order")
           .replace("    if (order.loaves > 0 and\n            price > 0):", "    if order.loaves > 0")
           .replace("    names = (order.first +\n             order.last)", "    names")
           .replace("from os.path import *", "from os.path")
           .replace("        price,\n", "        price.\n"))
    assert unfinished_lines(cut, "python") == {
        0: "ends mid-expression", 7: "open bracket", 8: "header without its colon", 10: "a name alone",
        12: "ends mid-expression"}


def test_only_trailing_blanks_mark_a_line_outside_python():
    """The bracket and operator signs are Python's grammar; in another language a line is
    left out only for its trailing blanks."""
    from lsp_server.unfinished import unfinished_lines

    js = "const x = foo(\nlet y = 2;  \n"
    assert unfinished_lines(js, "javascript") == {1: "blanks at its end"}
    assert unfinished_lines(js, "python") == {0: "open bracket", 1: "blanks at its end"}


def test_each_pass_over_a_small_repository_brings_new_completions(workspace, tmp_path):
    """The step budget covers a small repository several times over: each pass has its own
    fill-in-the-middle cuts, so the later passes are not the first one again."""
    import numpy as np

    from lsp_server.settings import DEFAULT_MODEL_DIR
    from model.tokenizer import TOKENIZER_FILE
    from training.adapt import _write_draws
    from training.data import DataConfig

    files, _ = workspace_files(workspace, ("python",), 10_000_000)
    shards = {}
    for draws in (1, 3):
        d = tmp_path / f"draws{draws}"
        d.mkdir()
        (d / TOKENIZER_FILE).write_bytes((DEFAULT_MODEL_DIR / TOKENIZER_FILE).read_bytes())
        counts = _write_draws(files, d, DataConfig(fim_rate=1.0), draws)
        shards[draws] = np.fromfile(d / "train.bin", dtype=np.uint16)
        assert len(counts) == draws and len(shards[draws]) == sum(counts)
    one, three = shards[1], shards[3]
    assert np.array_equal(three[: len(one)], one)  # the first pass is the one a single draw makes
    rest = three[len(one):]
    assert len(rest) > len(one)
    assert not np.array_equal(rest[: len(one)], one)


def test_adaptation_learns_from_whole_examples_that_fit_its_window():
    """Each piece of a module is one fill-in-the-middle example short enough that a
    training window holds all of it, the middle with the code on both sides: a window over
    a long example mostly holds code far from its middle."""
    import json.decoder
    import random
    from itertools import pairwise

    from lsp_server.settings import DEFAULT_MODEL_DIR
    from model.tokenizer import load_tokenizer, special_ids
    from training.adapt import data_config
    from training.data import document_ids

    config = AdaptConfig()
    tok = load_tokenizer(DEFAULT_MODEL_DIR)
    sp = special_ids(tok)
    text = Path(json.decoder.__file__).read_text()
    assert len(text) > 10_000
    ids = document_ids(tok, "json/decoder.py", text, data_config(config), random.Random(0))
    starts = [i for i, t in enumerate(ids) if t == sp.file_sep] + [len(ids)]
    examples = [ids[a:b] for a, b in pairwise(starts)]
    assert len(examples) >= 5
    assert all(sp.fim_middle in example for example in examples)
    fitting = sum(len(example) <= config.window for example in examples)
    assert fitting >= 0.9 * len(examples)


async def _status(client: RecordingClient) -> dict:
    """The status once the model has loaded (or failed to)."""
    await until(lambda: status(client, "state") in ("ready", "error"), timeout=120)
    return {key: status(client, key) for key in ("state", "model", "message")}


async def test_the_server_uses_the_adapted_model_says_so_and_forgets_it_when_removed(workspace, tiny_model, tmp_path):
    cache = tmp_path / "cache"
    info = adapt(workspace, tiny_model, cache, AdaptConfig(steps=3, batch_size=2, window=64))
    folder, record = read_adapted(workspace, cache)
    assert (folder / "model.bin").is_file() and (folder / "model.safetensors").is_file()
    assert record.steps == 3 and record.files == 4 and info.created == record.created
    # Trained on short windows (cheap steps), the adapted model keeps the base's context.
    assert record.tokens_seen == 3 * 2 * 64
    assert ModelConfig.load(folder).max_seq_len == ModelConfig.load(tiny_model).max_seq_len > 64
    assert not any(p.name in ("model.bin", "adapted.json") for p in workspace.rglob("*"))  # nothing in the tree

    options = {"debounceMs": 0, "cacheDir": str(cache)}
    async with running_server(workspace, options) as client:
        status = await _status(client)
        assert status["model"] == f"adapted {record.date}", status
        uri = (workspace / "bakery" / "new.py").as_uri()
        client.open(uri, "def parse(line):\n    return ")
        await client.inline(uri, 1, 11)  # answered by the adapted model, no error
        assert not client.messages

    # Naming a model wins over the adaptation.
    async with running_server(workspace, {**options, "modelPath": str(tiny_model)}) as client:
        assert (await _status(client))["model"] == tiny_model.name

    cli = [sys.executable, "-m", "training.cli", "adapt", str(workspace), "--cache-dir", str(cache)]
    out = subprocess.run([*cli, "--status"], capture_output=True, text=True, check=True).stdout
    assert f"adapted {record.created}" in out and "3 steps" in out
    out = subprocess.run([*cli, "--remove"], capture_output=True, text=True, check=True).stdout
    assert "removed" in out and not adapted_dir(workspace, cache).exists()
    async with running_server(workspace, options) as client:
        assert (await _status(client))["model"] == "default"


async def test_a_broken_adapted_model_falls_back_to_the_default_with_one_message(workspace, tiny_model, tmp_path):
    cache = tmp_path / "cache"
    adapt(workspace, tiny_model, cache, AdaptConfig(steps=2, batch_size=2))
    folder, _ = read_adapted(workspace, cache)
    (folder / "model.bin").write_bytes(b"not a model")
    async with running_server(workspace, {"debounceMs": 0, "cacheDir": str(cache)}) as client:
        uri = (workspace / "bakery" / "new.py").as_uri()
        client.open(uri, "import os\nx = os.")
        for _ in range(3):
            await client.inline(uri, 1, 7)
        status = await _status(client)
        assert status["state"] == "ready" and status["model"] == "default"
        assert len([m for m in client.messages if "adapted model" in m]) == 1, client.messages


def test_adapting_again_continues_from_the_last_adaptation_and_swaps_it_whole(workspace, tiny_model, tmp_path):
    """Run again after edits, adaptation starts from the adapted weights, writes its model
    beside the one in use and points the record at it only when it is whole; the earlier
    model then goes.  A record written before model folders were named still reads."""
    cache, logs = tmp_path / "cache", []
    config = AdaptConfig(steps=2, batch_size=2, window=64)
    adapt(workspace, tiny_model, cache, config)
    first, _ = read_adapted(workspace, cache)
    adapt(workspace, tiny_model, cache, config, log=logs.append)
    second, record = read_adapted(workspace, cache)
    assert f"adapting {first} to" in logs[0]
    assert second != first and (second / "model.bin").is_file() and record.model == second.name
    assert not first.exists() and sorted(p.name for p in second.parent.iterdir()) == ["adapted.json", second.name]

    legacy = second.parent / "model"
    second.rename(legacy)
    record_file = second.parent / "adapted.json"
    fields = json.loads(record_file.read_text())
    del fields["model"]
    record_file.write_text(json.dumps(fields))
    assert read_adapted(workspace, cache)[0] == legacy


def test_a_seed_gives_another_adaptation_and_the_same_seed_the_same_one(workspace, tiny_model, tmp_path):
    """Two adaptations of one repository differ by about a point of dev-set EM; comparing
    changes of that size takes several seeds, each reproducible."""
    models = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        adapt(workspace, tiny_model, tmp_path / name, AdaptConfig(steps=2, batch_size=2, window=64, seed=seed))
        models[name] = (read_adapted(workspace, tmp_path / name)[0] / "model.bin").read_bytes()
    assert models["a"] == models["b"] and models["a"] != models["c"]


async def test_a_running_server_takes_up_a_new_adaptation_without_a_restart(workspace, tiny_model, tmp_path):
    """Re-adapting while the editor is open: the next completion comes from the new model
    (the old folder is gone by then), with no error and no restart."""
    cache = tmp_path / "cache"
    config = AdaptConfig(steps=2, batch_size=2, window=64)
    adapt(workspace, tiny_model, cache, config)
    first, _ = read_adapted(workspace, cache)
    async with running_server(workspace, {"debounceMs": 0, "cacheDir": str(cache)}) as client:
        uri = (workspace / "bakery" / "new.py").as_uri()
        client.open(uri, "def parse(line):\n    return ")
        await client.inline(uri, 1, 11)
        await until(lambda: any(f"model {first} " in line and " loaded" in line for line in client.logs))

        await asyncio.to_thread(adapt, workspace, tiny_model, cache, config)
        second, record = read_adapted(workspace, cache)
        assert second != first and not first.exists()
        insert(client, uri, 2, 1, 11, "line")  # typing on: a new request, not the cached answer
        await client.inline(uri, 1, 15)
        await until(lambda: any(f"model {second} (adapted {record.created}) loaded" in line for line in client.logs))
        assert (await _status(client))["model"] == f"adapted {record.date}"
        # Back where the first model answered: the new model is asked, not the old answer shown.
        def answered() -> int:
            return sum(": completion " in line or ": line memory " in line for line in client.logs)

        before = answered()
        client.change(uri, 3, (1, 11), (1, 15), "")
        await client.inline(uri, 1, 11)
        await until(lambda: answered() > before)
        assert not client.messages


def test_parts_of_the_model_left_frozen_come_back_as_they_were(workspace, tiny_model, tmp_path):
    """Adaptation that leaves attention alone changes only the rest of the model."""
    from safetensors.torch import load_file

    config = AdaptConfig(steps=2, batch_size=2, window=64, lr=1e-2, frozen=("self_attn",))
    adapt(workspace, tiny_model, tmp_path, config)
    base = load_file(tiny_model / "model.safetensors")
    adapted = load_file(read_adapted(workspace, tmp_path)[0] / "model.safetensors")
    attention = [name for name in base if "self_attn" in name]
    assert attention and all(torch.equal(base[name], adapted[name]) for name in attention)
    assert not all(torch.equal(base[name], adapted[name]) for name in base if "mlp" in name)


def test_the_help_names_the_steps_adaptation_takes():
    out = subprocess.run([sys.executable, "-m", "training.cli", "adapt", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert f"default {AdaptConfig.steps};" in " ".join(out.split())
