import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from training.corpus import CorpusConfig
from training.train import PRESETS, get_lr, train

pytestmark = pytest.mark.slow
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_lr_schedule_warms_up_then_decays():
    cfg = PRESETS["tiny"]
    lrs = [get_lr(s, cfg) for s in range(cfg.max_steps)]
    assert lrs[0] < lrs[cfg.warmup_steps - 1] == pytest.approx(cfg.lr)
    assert lrs[-1] == pytest.approx(cfg.min_lr, rel=0.05)
    assert all(a >= b for a, b in zip(lrs[cfg.warmup_steps:], lrs[cfg.warmup_steps + 1:]))


def test_training_learns_checkpoints_and_resumes(tiny_run, tmp_path):
    log = [json.loads(l) for l in (tiny_run / "log.jsonl").read_text().splitlines()]
    train_losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert sum(train_losses[-10:]) / 10 < sum(train_losses[:10]) / 10 - 1.0
    assert (tiny_run / "loss.png").stat().st_size > 1000
    assert (tiny_run / "checkpoint" / "model.safetensors").is_file()
    assert (tiny_run / "checkpoint" / "tokenizer.json").is_file()

    # Resume: copy the run, ask for more steps, and it continues from the saved step.
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(tiny_run), str(run)], check=True)
    cfg = replace(PRESETS["tiny"], max_steps=PRESETS["tiny"].max_steps + 20, eval_interval=10)
    summary = train(cfg, run, corpus=CorpusConfig(roots=[STDLIB]), resume=True)
    assert summary["steps"] == cfg.max_steps
    resumed = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    new_steps = [r["step"] for r in resumed[len(log):] if r["kind"] == "train"]
    assert new_steps[0] == PRESETS["tiny"].max_steps + 1


def test_runs_under_torchrun_with_two_cpu_processes(tiny_run, tmp_path):
    run = tmp_path / "ddp"
    run.mkdir()
    subprocess.run(["cp", "-r", str(tiny_run / "data"), str(run / "data")], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "training.train", "--preset", "tiny", "--out", str(run), "--max-steps", "20", "--device", "cpu",
         "--roots", str(STDLIB)],
        capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world 2" in proc.stdout
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in log if r["kind"] == "train"]
    assert len(train_rows) == 20  # only rank 0 logs
    # tokens per step count both processes' batches
    assert train_rows[0]["tokens_seen"] == 2 * PRESETS["tiny"].batch_size * PRESETS["tiny"].model.max_seq_len
    assert (run / "checkpoint" / "model.safetensors").is_file()
