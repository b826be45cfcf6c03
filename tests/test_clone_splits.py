"""How the clone sets are split between the encoder, the fusion fit and the held-out figures,
and the anonymising rewrite the encoder trains on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from training import fit_fusion
from training.eval_clones import SPLITS, in_split, load_items, split_of, train_half_of
from training.rewrites import anonymise

ROOT = Path(__file__).resolve().parents[1]
LABELS = [str(n) for n in range(1, 2001)] + ["two-sum", "Two Sum", "lru-cache"]


def test_train_halves_are_deterministic_disjoint_and_cover_the_train_problems():
    train = {label for label in LABELS if split_of(label) == "train"}
    encoder = {label for label in LABELS if in_split(label, "train-encoder")}
    fusion = {label for label in LABELS if in_split(label, "train-fusion")}
    assert [train_half_of(label) for label in LABELS] == [train_half_of(label) for label in LABELS]
    assert encoder.isdisjoint(fusion)
    assert encoder | fusion == train  # every train problem is in exactly one half
    assert not (encoder | fusion) & {label for label in LABELS if in_split(label, "heldout")}
    # Halves of about equal size, so neither the encoder nor the fit is starved.
    assert 0.4 < len(encoder) / len(train) < 0.6


def test_load_items_keeps_a_problem_together_in_one_half(tmp_path):
    rows = [{"label": label, "code": f"def f{i}():\n    return {i}\n"} for label in LABELS[:300] for i in range(2)]
    path = tmp_path / "clones.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    by_split = {split: load_items(path, split) for split in SPLITS}
    assert len(by_split["train-encoder"]) + len(by_split["train-fusion"]) == len(by_split["train"])
    assert len(by_split["train"]) + len(by_split["heldout"]) == len(rows)
    enc = {r["label"] for r in by_split["train-encoder"]}
    fus = {r["label"] for r in by_split["train-fusion"]}
    assert enc and fus and enc.isdisjoint(fus)
    with pytest.raises(ValueError, match="split must be one of"):
        load_items(path, "train-half")


def test_splits_overlap():
    assert not fit_fusion.splits_overlap("train-encoder", "train-fusion")
    assert not fit_fusion.splits_overlap("train-fusion", "heldout")
    assert fit_fusion.splits_overlap("train", "train-fusion")  # an encoder from before the halves
    assert fit_fusion.splits_overlap("train-encoder", "all")


def test_fit_fusion_refuses_to_weigh_dense_on_the_problems_its_encoder_learnt(tmp_path, capsys):
    encoder = tmp_path / "encoder"
    shutil.copytree(ROOT / "model" / "encoder", encoder)
    meta = json.loads((encoder / "encoder.json").read_text())
    meta["clone_split"] = "train-fusion"
    (encoder / "encoder.json").write_text(json.dumps(meta))
    clones = tmp_path / "clones.jsonl"
    clones.write_text("".join(json.dumps({"label": label, "code": "def f():\n    pass\n"}) + "\n"
                              for label in LABELS[:50]))
    out = tmp_path / "weights.json"
    with pytest.raises(SystemExit) as err:
        fit_fusion.main([str(clones), "--encoder", str(encoder), "--out", str(out)])
    message = capsys.readouterr().err
    assert err.value.code == 2 and "--without dense" in message and len(message.strip().splitlines()) == 1
    assert not out.exists()


def test_anonymise_renames_like_the_anonymised_clone_set():
    code = '''class Solution2(object):
    def sortedArrayToBST(self, nums):
        def walk(i):
            return i
        return self.helper(0, len(nums))

    def helper(self, start, end):
        return self.helper(start, end - 1) if start < end else None

    def _private(self):
        return 1

    def __init__(self):
        pass
'''
    out = anonymise(code)
    assert out.startswith("class Solution(object):\n    def method0(self, nums):\n")
    assert "def walk(i)" in out  # nested functions keep their names
    assert "return self.method1(0, len(nums))" in out and "def method1(self, start, end):" in out
    assert "self.method1(start, end - 1)" in out
    assert "def _private(self)" in out and "def __init__(self)" in out
    assert anonymise(out) == out  # anonymised rows stay as they are
    # A lone function (a corpus chunk) is the outermost definition.
    assert anonymise("def load(path):\n    return load(path.parent)\n") == \
        "def method0(path):\n    return method0(path.parent)\n"


def test_anonymise_matches_the_shipped_anonymised_file():
    named = ROOT.parent / "shared" / "eval" / "clones" / "leetcode_dev.jsonl"
    if not named.is_file():
        pytest.skip("the clone sets are not on this machine")
    anon = named.with_name("leetcode_dev.anon.jsonl")
    pairs = list(zip(named.read_text().splitlines(), anon.read_text().splitlines(), strict=True))
    same = sum(anonymise(json.loads(a)["code"]) == json.loads(b)["code"] for a, b in pairs)
    assert same / len(pairs) > 0.95  # the rest: methods of classes nested in methods
