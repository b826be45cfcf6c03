import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from training.corpus import CorpusConfig
from training.model_card import write_model_card
from training.train import PRESETS, get_lr, train

pytestmark = pytest.mark.slow
STDLIB = Path(sysconfig.get_paths()["stdlib"])
ROOT = Path(__file__).resolve().parents[1]


def test_lr_schedule_warms_up_then_decays():
    cfg = PRESETS["tiny"]
    lrs = [get_lr(s, cfg) for s in range(cfg.max_steps)]
    assert lrs[0] < lrs[cfg.warmup_steps - 1] == pytest.approx(cfg.lr)
    assert lrs[-1] == pytest.approx(cfg.min_lr, rel=0.05)
    assert all(a >= b for a, b in zip(lrs[cfg.warmup_steps:], lrs[cfg.warmup_steps + 1:], strict=False))


def test_training_learns_checkpoints_and_resumes(tiny_run, tmp_path):
    log = [json.loads(row) for row in (tiny_run / "log.jsonl").read_text().splitlines()]
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
    resumed = [json.loads(row) for row in (run / "log.jsonl").read_text().splitlines()]
    new_steps = [r["step"] for r in resumed[len(log):] if r["kind"] == "train"]
    assert new_steps[0] == PRESETS["tiny"].max_steps + 1


def test_runs_under_torchrun_with_two_cpu_processes(tiny_run, tmp_path):
    run = tmp_path / "ddp"
    run.mkdir()
    subprocess.run(["cp", "-r", str(tiny_run / "data"), str(run / "data")], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "training.cli", "train", "--preset", "tiny", "--out", str(run), "--max-steps", "20", "--device", "cpu",
         "--roots", str(STDLIB)],
        capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world 2" in proc.stdout
    log = [json.loads(row) for row in (run / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in log if r["kind"] == "train"]
    assert len(train_rows) == 20  # only rank 0 logs
    # tokens per step count both processes' batches
    assert train_rows[0]["tokens_seen"] == 2 * PRESETS["tiny"].batch_size * PRESETS["tiny"].model.max_seq_len
    assert (run / "checkpoint" / "model.safetensors").is_file()


def test_wsd_schedule_holds_the_peak_then_decays_at_the_end():
    cfg = replace(PRESETS["tiny"], schedule="wsd", decay_frac=0.2, max_steps=100, warmup_steps=10)
    lrs = [get_lr(s, cfg) for s in range(cfg.max_steps + 1)]
    assert all(lr == pytest.approx(cfg.lr) for lr in lrs[10:80])
    assert lrs[100] == pytest.approx(cfg.min_lr) and lrs[90] < lrs[80]


def test_a_release_decay_can_branch_off_a_running_wsd_run(tmp_path):
    """``--resume --max-steps S+N --decay-steps N`` on a copy of a run at step S: the rate
    stays at its peak up to S and reaches the floor at S+N, whatever S and N."""
    from training.cli import CliError, build_parser, train_config

    def config(*extra: str):
        return train_config(build_parser().parse_args(["train", "--out", str(tmp_path), *extra]))

    cfg = config("--preset", "small-1k", "--max-steps", "913", "--decay-steps", "63")
    lrs = [get_lr(s, cfg) for s in range(914)]
    assert lrs[850] == pytest.approx(cfg.lr) and lrs[851] < cfg.lr
    assert lrs[913] == pytest.approx(cfg.min_lr)
    with pytest.raises(CliError, match="cosine"):
        config("--preset", "tiny", "--decay-steps", "10")
    with pytest.raises(CliError, match="fewer than"):
        config("--preset", "small-1k", "--max-steps", "50", "--decay-steps", "50")


def test_a_run_can_cut_its_middles_between_tokens(tmp_path, capsys):
    """``--token-cut-rate`` reaches the run's data settings, keeping the preset's others;
    a share outside 0-1 stops with one line."""
    from training.cli import build_parser, train_config
    from training.train import PRESETS

    def config(*extra: str):
        args = ["train", "--out", str(tmp_path), "--preset", "small-1k", *extra]
        return train_config(build_parser().parse_args(args))

    assert config().data.token_cut_rate == 0.0
    cfg = config("--token-cut-rate", "0.5")
    assert cfg.data.token_cut_rate == 0.5
    assert cfg.data.piece_chars == PRESETS["small-1k"].data.piece_chars
    with pytest.raises(SystemExit):
        config("--token-cut-rate", "1.5")
    err = capsys.readouterr().err.strip().splitlines()
    assert "--token-cut-rate: must be a share from 0 to 1: 1.5" in err[-1] and "Traceback" not in "\n".join(err)


def test_a_run_folder_is_never_overwritten_by_a_new_run(tiny_run, tmp_path, capsys):
    """``ghostline train --out RUN`` on a folder that holds a run (hours of training) stops
    with one line instead of starting afresh over its checkpoint; ``--resume`` without the
    optimizer state to continue from says what to do instead."""
    from training.cli import main

    def refused(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--preset", "tiny", "--roots", str(STDLIB), *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.strip().count("\n") == 0
        return err

    weights = tiny_run / "checkpoint" / "model.safetensors"
    before = weights.read_bytes()
    assert "already holds a training run: --resume continues it" in refused("--out", str(tiny_run))
    assert weights.read_bytes() == before
    assert "nothing to resume in" in refused("--out", str(tmp_path / "empty"), "--resume")
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    subprocess.run(["cp", "-r", str(tiny_run / "checkpoint"), str(weights_only / "checkpoint")], check=True)
    assert f"--init-from {weights_only / 'checkpoint'}" in refused("--out", str(weights_only), "--resume")


def test_export_never_deletes_the_run_it_exports_or_another(tiny_run, tmp_path, capsys):
    """Exporting swaps a finished folder into place, deleting what was there: into the run
    folder (or the checkpoint itself, or another run) that would be hours of training, so
    it is refused in one line and the run keeps every file."""
    from training.cli import main

    files = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*"))
    for out in (tiny_run, tiny_run / "checkpoint"):
        with pytest.raises(SystemExit) as exit_:
            main(["export", str(tiny_run / "checkpoint"), str(out)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.strip().count("\n") == 0 and "choose another folder" in err
    other = tmp_path / "other-run"
    (other / "checkpoint").mkdir(parents=True)
    with pytest.raises(SystemExit):
        main(["export", str(tiny_run / "checkpoint"), str(other)])
    assert "holds a training run" in capsys.readouterr().err and (other / "checkpoint").is_dir()
    assert sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*")) == files


def test_a_release_sets_its_second_opinion_threshold_at_export(tiny_run, tmp_path, capsys):
    """The threshold is fitted on evaluation dumps after training: export writes it into the
    released model, the server reads it from there and the model card shows it."""
    from model.engine import CompletionEngine
    from training.cli import main

    out = tmp_path / "release"
    main(["export", str(tiny_run / "checkpoint"), str(out), "--second-opinion-sure", "0.6", "--card-command", "test"])
    assert CompletionEngine(out, device="cpu").second_opinion_sure == 0.6
    assert "| second opinion | from confidence 0.6 (" in (out / "MODEL_CARD.md").read_text()
    # without the option the run's own (the default) goes out
    assert CompletionEngine(tiny_run / "ct2-int8", device="cpu").second_opinion_sure == 0.5


def test_compile_without_a_compiler_is_refused_before_the_run_starts(tmp_path, monkeypatch):
    """``--compile`` needs the C++ compiler torch's inductor uses (``$CXX``): without one the
    command stops at once with one line, not after tokenizing the corpus."""
    from training.cli import CliError, build_parser, train_config

    args = build_parser().parse_args(["train", "--out", str(tmp_path), "--compile"])
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(CliError, match="--compile needs a C\\+\\+ compiler and 'no-such-compiler-xyz'"):
        train_config(args)
    monkeypatch.setenv("CXX", "sh")  # any program on PATH passes the check
    assert train_config(args).compile


def test_a_compiled_run_learns_what_the_eager_run_learns(tiny_run, tmp_path):
    """``--compile`` changes how fast a step runs, not what it computes: resumed from the
    same checkpoint on the same batches, the compiled run logs the eager run's losses and
    saves a checkpoint the exporter reads."""
    from model.export import export

    losses = {}
    for compiled in (False, True):
        run = tmp_path / f"run-{compiled}"
        subprocess.run(["cp", "-r", str(tiny_run), str(run)], check=True)
        cfg = replace(PRESETS["tiny"], max_steps=PRESETS["tiny"].max_steps + 8, eval_interval=8, compile=compiled)
        train(cfg, run, corpus=CorpusConfig(roots=[STDLIB]), resume=True)
        rows = [json.loads(row) for row in (run / "log.jsonl").read_text().splitlines()]
        losses[compiled] = [r["loss"] for r in rows if r["kind"] == "train"][-8:]
    assert losses[True] == pytest.approx(losses[False], rel=2e-3)
    export(tmp_path / "run-True" / "checkpoint", tmp_path / "int8", quantization="int8")
    assert (tmp_path / "int8" / "model.bin").is_file()


def test_a_continued_run_can_lower_the_peak_rate(tmp_path):
    """``--lr`` sets the peak for a run that continues an already-decayed model; the floor
    stays below the peak."""
    from training.cli import build_parser, train_config

    args = build_parser().parse_args(["train", "--out", str(tmp_path), "--preset", "small-1k", "--lr", "5e-5"])
    cfg = train_config(args)
    assert cfg.lr == pytest.approx(5e-5) and cfg.min_lr == pytest.approx(5e-6)
    assert max(get_lr(s, cfg) for s in range(cfg.max_steps)) == pytest.approx(5e-5)
    assert get_lr(cfg.max_steps, cfg) == pytest.approx(5e-6)


def test_a_corpus_smaller_than_one_window_is_refused_before_training(tmp_path):
    """Folders with less code than one training window (or a continuation that left out
    nearly every file) stop with one line before any step, not with a traceback after the
    run trained on the same few tokens for a hundred steps."""
    code = tmp_path / "code"
    code.mkdir()
    for name in ("a.py", "b.py"):
        (code / name).write_text("def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n" * 2)
    proc = subprocess.run([sys.executable, "-m", "training.cli", "train", "--preset", "tiny", "--roots", str(code),
                           "--corpus-permille", "1000", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "too little code to train on" in proc.stderr and "one window of 256" in proc.stderr
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_the_corpus_can_be_balanced_across_packages(tmp_path):
    from training.cli import build_parser, train_config

    args = build_parser().parse_args(["train", "--out", str(tmp_path), "--preset", "small-1k",
                                      "--corpus-permille", "1000", "--max-package-mb", "1.5"])
    cfg = train_config(args)
    assert cfg.corpus_sample_permille == 1000 and cfg.corpus_max_package_bytes == 1_500_000
    for bad in (["--corpus-permille", "0"], ["--max-package-mb", "-1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "--out", str(tmp_path), *bad])


def test_a_run_lists_its_files_and_a_continuation_can_leave_them_out(tiny_run, tmp_path):
    """The run folder keeps the list of files its corpus took; ``--skip-files-of`` reads it
    (a run without one, or an offset that cannot move a full sample, is a one-line error)."""
    from training.cli import CliError, build_parser, train_config
    from training.corpus import read_file_list

    listed = read_file_list(tiny_run)
    assert len(listed) == json.loads((tiny_run / "data" / "meta.json").read_text())["filter_stats"]["accepted"]
    assert all(name.endswith(".py") for name in listed)
    parse = build_parser().parse_args
    args = parse(["train", "--out", str(tmp_path / "next"), "--skip-files-of", str(tiny_run)])
    assert args.skip_files_of == [tiny_run]
    assert parse(["train", "--out", str(tmp_path / "next"), "--files-of", str(tiny_run)]).files_of == [tiny_run]
    for flag in ("--skip-files-of", "--files-of"):
        proc = subprocess.run([sys.executable, "-m", "training.cli", "train", "--out", str(tmp_path / "next"),
                               flag, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
        assert "keeps no list of its files" in proc.stderr
    with pytest.raises(CliError, match="changes nothing"):
        train_config(parse(["train", "--out", str(tmp_path), "--preset", "small-1k", "--corpus-permille", "1000",
                            "--corpus-offset", "500"]))


def _line_log_probs(model_dir: Path, text: str) -> list[float]:
    import ctranslate2

    from model.tokenizer import load_tokenizer

    tok = load_tokenizer(model_dir)
    ids = tok.encode(text).ids[:60]
    gen = ctranslate2.Generator(str(model_dir), device="cpu", compute_type="float32")
    return list(gen.score_batch([[tok.id_to_token(i) for i in ids]])[0].log_probs)


def test_float_weights_ship_with_the_export_and_warm_start_reproduces_the_model(tiny_run, tiny_model, tmp_path):
    """The export carries bf16 weights; training started from them (or, without them, from
    the de-quantized int8 model) begins where the exported model is."""
    import torch
    from transformers import LlamaForCausalLM

    from model.config import ModelConfig
    from model.tokenizer import load_tokenizer, special_ids
    from training.warm_start import load_float_state

    assert (tiny_model / "model.safetensors").is_file()
    int8_only = tmp_path / "int8-only"
    int8_only.mkdir()
    for f in tiny_model.iterdir():
        if f.name != "model.safetensors":
            (int8_only / f.name).write_bytes(f.read_bytes())
    text = "def read_lines(path):\n    with open(path) as fh:\n        return fh.read().splitlines()\n"
    reference = _line_log_probs(tiny_model, text)
    tok = load_tokenizer(tiny_model)
    ids = tok.encode(text).ids[:60]
    for folder in (tiny_model, int8_only):
        cfg = ModelConfig.load(folder)
        model = LlamaForCausalLM(cfg.to_hf(special_ids(tok)))
        model.load_state_dict(load_float_state(folder, cfg), strict=False)
        model.tie_weights()
        with torch.no_grad():
            lp = torch.log_softmax(model.eval()(input_ids=torch.tensor([ids])).logits[0], -1)
        ours = [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]
        assert sum(abs(a - b) for a, b in zip(ours, reference, strict=True)) / len(ours) < 0.05, folder.name


def test_training_continues_from_a_model_folder_with_a_longer_context(tiny_model, tmp_path):
    cfg = replace(PRESETS["tiny"], max_steps=4, eval_interval=4, init_from=str(tiny_model), corpus_sample_permille=1000,
                  model=replace(PRESETS["tiny"].model, max_seq_len=512))
    summary = train(cfg, tmp_path / "run", corpus=CorpusConfig(roots=[STDLIB / "json"]))
    info = json.loads((tmp_path / "run" / "checkpoint" / "training_info.json").read_text())
    assert info["config"]["model"]["max_seq_len"] == 512
    # The model card counts the tokens the starting model had seen as well as this run's.
    start = json.loads((tiny_model / "training_info.json").read_text())
    assert start["tokens_seen"] > 0
    assert info["tokens_seen_before"] == start["tokens_seen"] + start.get("tokens_seen_before", 0)
    card = write_model_card(tmp_path / "run" / "checkpoint", tmp_path / "run" / "checkpoint", "int8", "test")
    total = info["tokens_seen"] + info["tokens_seen_before"]
    text = card.read_text()
    assert f"| tokens seen | {total:,} in all: {info['tokens_seen']:,} in this run" in text
    # The float weights (for adaptation and resumed training) are counted apart from the model.
    assert "; float weights `model.safetensors` (float32, " in text
    assert "| languages | python (" in text
    assert summary["val_loss"] < 5.0  # a fresh tiny model starts near ln(512) = 6.2


def test_a_trained_model_grows_deeper_from_where_it_was(tiny_model, tmp_path):
    """``--layers N`` with ``--init-from``: the grown model starts with exactly the trained
    model's predictions (the added layers are the identity), then trains as a deeper model."""
    import torch
    from transformers import LlamaForCausalLM

    from lsp_server.cli import CliError
    from model.config import ModelConfig
    from model.tokenizer import load_tokenizer, special_ids
    from training.cli import build_parser, train_config
    from training.warm_start import grow_layers, load_float_state

    base = ModelConfig.load(tiny_model)
    tok = load_tokenizer(tiny_model)
    state = load_float_state(tiny_model, base)
    ids = torch.tensor([tok.encode("def read_lines(path):\n    with open(path) as fh:\n").ids])
    shallow = LlamaForCausalLM(base.to_hf(special_ids(tok)))
    shallow.load_state_dict(state, strict=False)
    deep = LlamaForCausalLM(replace(base, n_layer=base.n_layer + 2).to_hf(special_ids(tok)))
    assert grow_layers(deep, state, base.n_layer) == [1, 3]
    with torch.no_grad():
        assert torch.allclose(shallow.eval()(input_ids=ids).logits, deep.eval()(input_ids=ids).logits, atol=1e-5)

    def config(*extra):
        return train_config(build_parser().parse_args(["train", "--out", str(tmp_path), *extra]))

    assert config("--init-from", str(tiny_model), "--layers", "3").grow_to_layers == 3
    with pytest.raises(CliError, match="needs --init-from"):
        config("--layers", "3")
    with pytest.raises(CliError, match="must be more than"):
        config("--init-from", str(tiny_model), "--layers", str(base.n_layer))

    cfg = replace(PRESETS["tiny"], max_steps=2, eval_interval=2, init_from=str(tiny_model), corpus_sample_permille=1000,
                  grow_to_layers=3)
    train(cfg, tmp_path / "run", corpus=CorpusConfig(roots=[STDLIB / "json"]))
    assert ModelConfig.load(tmp_path / "run" / "checkpoint").n_layer == 3


def test_a_run_on_the_clock_decays_by_the_clock():
    """``--max-minutes``: after warm-up the rate holds its peak, then falls to the floor by
    the budget's end, however many steps fit in it."""
    cfg = replace(PRESETS["medium-1k"], max_seconds=600.0, decay_frac=0.25, warmup_steps=10)
    assert get_lr(5, cfg, elapsed=1.0) < cfg.lr
    assert get_lr(10_000, cfg, elapsed=449.0) == pytest.approx(cfg.lr)
    assert get_lr(20, cfg, elapsed=525.0) == pytest.approx((cfg.lr + cfg.min_lr) / 2)
    assert get_lr(20, cfg, elapsed=600.0) == pytest.approx(cfg.min_lr)


def test_new_weights_on_a_shipped_tokenizer_stop_when_the_clock_runs_out(tiny_run, tmp_path):
    """A run with ``tokenizer_from`` keeps that model's vocabulary (byte for byte) and trains
    its own weights; with ``max_seconds`` it ends in time with its last step validated and
    saved, far short of its step count."""
    from safetensors.torch import load_file

    cfg = replace(PRESETS["tiny"], tokenizer_from=str(tiny_run / "checkpoint"), max_steps=1_000_000,
                  max_seconds=6.0, eval_interval=1_000_000, corpus_sample_permille=1000)
    summary = train(cfg, tmp_path / "run", corpus=CorpusConfig(roots=[STDLIB / "json"]))
    run = tmp_path / "run"
    assert (run / "data" / "tokenizer.json").read_bytes() == (tiny_run / "checkpoint" / "tokenizer.json").read_bytes()
    assert 0 < summary["steps"] < cfg.max_steps
    info = json.loads((run / "checkpoint" / "training_info.json").read_text())
    assert info["step"] == summary["steps"] and info["val_loss"] is not None
    log = [json.loads(row) for row in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1] == {"kind": "val", "step": summary["steps"], "val_loss": info["val_loss"]}
    new = load_file(run / "checkpoint" / "model.safetensors")
    old = load_file(tiny_run / "checkpoint" / "model.safetensors")
    key = "model.embed_tokens.weight"
    assert new[key].shape == old[key].shape and not (new[key] == old[key]).all()


def test_clock_and_tokenizer_flags_refuse_what_they_cannot_mean(tmp_path, tiny_model):
    from training.cli import CliError, build_parser, train_config

    def config(*extra: str):
        return train_config(build_parser().parse_args(["train", "--out", str(tmp_path / "run"), *extra]))

    cfg = config("--preset", "medium-1k", "--tokenizer-from", str(tiny_model), "--max-minutes", "7.5")
    assert cfg.max_seconds == pytest.approx(450.0) and cfg.tokenizer_from == str(tiny_model)
    with pytest.raises(CliError, match="own tokenizer"):
        config("--init-from", str(tiny_model), "--tokenizer-from", str(tiny_model))
    with pytest.raises(CliError, match="clock"):
        config("--preset", "small-1k", "--max-minutes", "5", "--decay-steps", "100")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CliError, match="no tokenizer.json"):
        config("--tokenizer-from", str(tmp_path / "empty"))


def test_a_lease_run_packs_its_weights_for_the_trip_back_and_unpacks_to_an_exportable_model(tmp_path):
    """``training/gpu_lease.sh`` (here on the CPU, a few seconds of training): what it leaves in
    $OUT is files a lease can return (at most 15 MB each, bfloat16 weights in pieces, the run's
    small files in one archive), and ``--unpack`` makes a checkpoint that exports and loads."""
    import ctranslate2

    from model.export import export

    out, run, back = tmp_path / "out", tmp_path / "run", tmp_path / "back"
    env = {**os.environ, "OUT": str(out), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "training/gpu_lease.sh", "0.1", str(run), "--device", "cpu", "--batch-size", "1",
                           "--roots", str(STDLIB / "email"), str(STDLIB / "json"), "--corpus-permille", "1000"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert "run.tgz" in files and "weights.safetensors.part00" in files and len(files) <= 8, files
    assert all(p.stat().st_size <= 15 * 2**20 for p in out.iterdir())
    proc = subprocess.run(["bash", "training/gpu_lease.sh", "--unpack", str(out), str(back)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    exported = export(back / "checkpoint", tmp_path / "model")
    assert json.loads((exported / "ghostline_model.json").read_text())["n_layer"] == PRESETS["medium-1k"].model.n_layer
    assert ctranslate2.Generator(str(exported), device="cpu").generate_batch([["<|fim_prefix|>"]], max_length=2)
