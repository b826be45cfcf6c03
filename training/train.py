"""Causal-LM training: one readable loop that runs alone or under ``torchrun`` (DDP).

    ghostline train --preset tiny  --out runs/tiny     # ~1 minute on a laptop CPU
    torchrun --nproc_per_node 8 -m training.cli train --preset small --out runs/small

The run folder holds everything: ``data/`` (tokenizer and token shards, prepared on first
use), ``checkpoint/`` (a transformers checkpoint in safetensors, plus the tokenizer and
``ghostline_model.json``), ``train_state.pt`` (optimizer and step, for ``--resume``),
``log.jsonl`` and ``loss.png``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from model.config import ModelConfig
from model.export import CHECKPOINT_DIR, STATE_FILE
from model.tokenizer import TOKENIZER_FILE, load_tokenizer, special_ids, train_tokenizer
from training.corpus import CorpusConfig, iter_corpus, write_file_list
from training.data import DataConfig, get_batch, load_tokens, read_meta, write_meta, write_shard


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    corpus_max_bytes: int | None = 48_000_000
    corpus_sample_permille: int = 1000
    corpus_sample_offset: int = 0  # see CorpusConfig.sample_offset
    corpus_max_package_bytes: int | None = None  # see CorpusConfig.max_package_bytes
    tokenizer_sample_bytes: int = 12_000_000
    batch_size: int = 16
    grad_accum: int = 1
    max_steps: int = 2000
    warmup_steps: int = 100
    lr: float = 2e-3
    min_lr: float = 2e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 200
    eval_batches: int = 20
    seed: int = 1337
    device: str = "auto"
    threads: int | None = None
    # "cosine" decays over max_steps; "wsd" (warm-up, stable, decay) holds the peak rate and
    # decays only over the last ``decay_frac`` of the steps, so a long run can be extended
    # session after session and still end on a decayed learning rate.
    schedule: str = "cosine"
    decay_frac: float = 0.2
    # A model folder (float safetensors or a CTranslate2 model.bin) to start from: its
    # tokenizer and shape are kept; only the context length may grow.
    init_from: str | None = None
    # Training windows of this many tokens; 0: the model's whole context.  Shorter windows
    # make a step cheaper (``ghostline adapt`` on a 1,024-context model) while the model
    # keeps its context length.
    window: int = 0
    # With ``init_from``: this many layers (more than the model has), the trained layers
    # spread through the stack and the added ones starting as the identity (see
    # ``training.warm_start.grow_layers``); 0 keeps the model's depth.
    grow_to_layers: int = 0
    # Compile the training step (model and loss) with torch.compile: on two AVX2 cores the
    # 6-layer small-1k step runs 1.04-1.35x as fast once compiled (median 1.15 over five
    # paired runs; ~20-40 s to compile at the start); it needs a C compiler, so it is asked
    # for, not assumed.
    compile: bool = False
    # A model folder whose tokenizer a new model (no ``init_from``) takes instead of training
    # its own: a larger model trained from scratch keeps the shipped vocabulary, so its
    # validation loss reads on the lineage's scale and the server's token handling is the same.
    tokenizer_from: str | None = None
    # Stop after this many seconds of training (the first, compiling step included), the
    # learning rate following the clock instead of the step count: for a lease of fixed
    # length (a GPU lent for minutes) whose steps per second are not known beforehand.
    max_seconds: float | None = None
    # Parameters whose names contain one of these are kept as they are (no gradient, not in
    # the optimizer): ``ghostline adapt`` leaves attention alone (see ``AdaptConfig.frozen``).
    frozen: tuple[str, ...] = ()

    @property
    def window_tokens(self) -> int:
        return min(self.window, self.model.max_seq_len) if self.window else self.model.max_seq_len


PRESETS: dict[str, TrainConfig] = {
    # Finishes in about a minute on a 2-core CPU: for tests and smoke runs.
    "tiny": TrainConfig(
        model=ModelConfig(vocab_size=512, n_layer=2, n_head=4, n_kv_head=4, d_model=64, d_ff=176, max_seq_len=256),
        corpus_max_bytes=1_500_000,
        corpus_sample_permille=50,
        tokenizer_sample_bytes=600_000,
        batch_size=8,
        max_steps=150,
        warmup_steps=15,
        lr=3e-3,
        eval_interval=50,
        eval_batches=4,
    ),
    # A quarter of small's compute per token: on a CPU budget it sees four times the tokens
    # (the model-size table in docs/benchmarks.md compares them).
    "mini": TrainConfig(
        model=ModelConfig(vocab_size=4096, n_layer=4, n_head=4, n_kv_head=4, d_model=128, d_ff=352, max_seq_len=256),
        corpus_max_bytes=40_000_000,
        corpus_sample_permille=300,
        tokenizer_sample_bytes=10_000_000,
        batch_size=16,
        max_steps=6000,
        warmup_steps=200,
        lr=3e-3,
        min_lr=3e-4,
        eval_interval=500,
        eval_batches=16,
    ),
    # The shipped default model's recipe (trained on CPU; see model card).
    "small": TrainConfig(
        model=ModelConfig(vocab_size=4096, n_layer=4, n_head=8, n_kv_head=8, d_model=256, d_ff=704, max_seq_len=256),
        corpus_max_bytes=40_000_000,
        corpus_sample_permille=300,
        tokenizer_sample_bytes=10_000_000,
        batch_size=16,
        max_steps=4000,
        warmup_steps=200,
        lr=2e-3,
        eval_interval=250,
        eval_batches=16,
    ),
    # The small shape with a 1,024-token context, continued from the shipped model
    # (``--init-from model/default``): the next default's recipe on a CPU budget.
    "small-1k": TrainConfig(
        model=ModelConfig(vocab_size=4096, n_layer=4, n_head=8, n_kv_head=8, d_model=256, d_ff=704, max_seq_len=1024),
        data=DataConfig(piece_chars=3600),
        corpus_max_bytes=60_000_000,
        corpus_sample_permille=400,
        tokenizer_sample_bytes=10_000_000,
        batch_size=8,
        max_steps=3000,
        warmup_steps=50,
        lr=1e-3,
        min_lr=1e-4,
        schedule="wsd",
        eval_interval=100,
        eval_batches=8,
    ),
    # Eight layers of 384 (15.7 M parameters) for a GPU lease: the size for a GPU
    # is about 30 M, but on two CPU cores 8x384 prompts in 1.6x the shipped model's time
    # and 8x512 in 4x (1,000-token prompt, int8; docs/benchmarks.md), and the first key on
    # a new line must stay under 300 ms.  New weights on the shipped tokenizer
    # (``--tokenizer-from model/default``); a batch of 128 windows keeps a GPU busy.
    "medium-1k": TrainConfig(
        model=ModelConfig(vocab_size=4096, n_layer=8, n_head=6, n_kv_head=6, d_model=384, d_ff=1024,
                          max_seq_len=1024),
        data=DataConfig(piece_chars=3600),
        corpus_max_bytes=None,
        corpus_max_package_bytes=20_000_000,
        tokenizer_sample_bytes=10_000_000,
        batch_size=128,
        max_steps=100_000,
        warmup_steps=200,
        lr=1.5e-3,
        min_lr=1e-4,
        schedule="wsd",
        decay_frac=0.25,
        eval_interval=500,
        eval_batches=8,
    ),
}


def get_lr(step: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` (or hold, then decay: ``wsd``).

    With ``max_seconds`` the schedule after warm-up runs on ``elapsed`` seconds, not steps.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.max_seconds:
        where, end, start = elapsed, cfg.max_seconds, 0.0
    else:
        where, end, start = step, cfg.max_steps, cfg.warmup_steps
    if cfg.schedule == "wsd":
        decay_start = end - (cfg.decay_frac * end if cfg.max_seconds else round(cfg.decay_frac * end))
        if where < decay_start:
            return cfg.lr
        progress = min(1.0, (where - decay_start) / max(1e-9, end - decay_start))
        return cfg.lr + progress * (cfg.min_lr - cfg.lr)
    progress = min(1.0, max(0.0, where - start) / max(1e-9, end - start))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def prepare_data(data_dir: Path, cfg: TrainConfig, corpus: CorpusConfig, log=print) -> dict:
    """Collect the corpus, train the tokenizer and write token shards (once per run folder)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / "meta.json").exists():
        return read_meta(data_dir)
    corpus = replace(corpus, max_total_bytes=cfg.corpus_max_bytes, sample_permille=cfg.corpus_sample_permille,
                     sample_offset=cfg.corpus_sample_offset, max_package_bytes=cfg.corpus_max_package_bytes)
    stats: dict[str, int] = {}
    files = list(iter_corpus(corpus, stats))
    if not files:
        raise SystemExit(f"no usable source files under {', '.join(map(str, corpus.roots))}")
    log(f"corpus: {len(files)} files, {sum(len(f.text) for f in files) / 1e6:.1f} M chars; {stats}")
    write_file_list(data_dir, files)

    def tokenizer_texts():
        budget = cfg.tokenizer_sample_bytes
        for f in files:
            if f.split == "train":
                yield f.text
                budget -= len(f.text)
                if budget <= 0:
                    return

    t0 = time.time()
    if cfg.init_from or cfg.tokenizer_from:
        source = cfg.init_from or cfg.tokenizer_from
        (data_dir / TOKENIZER_FILE).write_bytes((Path(source) / TOKENIZER_FILE).read_bytes())
        tok = load_tokenizer(data_dir)
        log(f"tokenizer: {tok.get_vocab_size()} tokens from {source}")
    else:
        tok = train_tokenizer(tokenizer_texts(), cfg.model.vocab_size, data_dir)
        log(f"tokenizer: {tok.get_vocab_size()} tokens in {time.time() - t0:.1f}s")
    counts, file_counts = {}, {}
    for split in ("train", "val"):
        docs = [(f.rel, f.text) for f in files if f.split == split]
        if split == "val" and not docs:  # tiny corpora: hold out at least one file
            docs = [(files[-1].rel, files[-1].text)]
        t0 = time.time()
        counts[split] = write_shard(docs, data_dir / TOKENIZER_FILE, data_dir / f"{split}.bin", cfg.data)
        file_counts[split] = len(docs)
        log(f"{split}: {counts[split]:,} tokens from {len(docs)} files in {time.time() - t0:.1f}s")
    meta = {
        "tokens": counts,
        "files": file_counts,
        "chars": sum(len(f.text) for f in files),
        "roots": [str(r) for r in corpus.roots],
        "filter_stats": stats,
        "sample": {"permille": corpus.sample_permille, "offset": corpus.sample_offset,
                   "max_package_bytes": corpus.max_package_bytes, "skipped_seen_files": len(corpus.skip)},
        "vocab_size": tok.get_vocab_size(),
        "data_config": asdict(cfg.data),
    }
    write_meta(data_dir, meta)
    return meta


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_model(cfg: ModelConfig, data_dir: Path):
    from transformers import LlamaForCausalLM

    tok = load_tokenizer(data_dir)
    if tok.get_vocab_size() != cfg.vocab_size:
        # The CTranslate2 converter requires embedding rows == tokenizer vocabulary.
        cfg = replace(cfg, vocab_size=tok.get_vocab_size())
    hf_cfg = cfg.to_hf(special_ids(tok))
    model = LlamaForCausalLM(hf_cfg)
    return model, cfg


def tokens_seen_in_all(model_dir: Path) -> int:
    """Tokens a model folder's weights have been trained on, counting the runs it started from."""
    path = model_dir / "training_info.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    return int(info.get("tokens_seen", 0)) + int(info.get("tokens_seen_before", 0))


def save_checkpoint(model, model_cfg: ModelConfig, data_dir: Path, out_dir: Path, info: dict) -> Path:
    ckpt = out_dir / CHECKPOINT_DIR
    tmp = out_dir / (CHECKPOINT_DIR + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    (tmp / TOKENIZER_FILE).write_bytes((data_dir / TOKENIZER_FILE).read_bytes())
    model_cfg.save(tmp)
    (tmp / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    if ckpt.exists():
        old = out_dir / (CHECKPOINT_DIR + ".old")
        ckpt.replace(old)
        tmp.replace(ckpt)
        for p in old.iterdir():
            p.unlink()
        old.rmdir()
    else:
        tmp.replace(ckpt)
    return ckpt


def plot_loss(log_file: Path, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train"]
    val = [(r["step"], r["val_loss"]) for r in rows if r.get("kind") == "val"]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train", alpha=0.6)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy, the softmax in float32 whatever the logits' dtype."""
    return torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


@torch.no_grad()
def estimate_val_loss(model, data, cfg: TrainConfig, device: str, ctx) -> float:
    model.eval()
    rng = np.random.default_rng(0)  # the same windows every time: comparable numbers
    losses = []
    for _ in range(cfg.eval_batches):
        x, y = get_batch(data, cfg.batch_size, cfg.window_tokens, rng)
        with ctx:
            logits = model(input_ids=torch.from_numpy(x).to(device)).logits
        losses.append(token_loss(logits, torch.from_numpy(y).to(device)).item())
    model.train()
    return float(np.mean(losses))


def train(cfg: TrainConfig, out_dir: Path, corpus: CorpusConfig | None = None, resume: bool = False) -> dict:
    """Train (or resume) into ``out_dir``; returns a summary for the model card."""
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(cfg.device)
    if ddp:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            device = f"cuda:{local}"
            torch.cuda.set_device(device)
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif ddp and device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / "data"
    if master:
        prepare_data(data_dir, cfg, corpus or CorpusConfig(), log)
    if ddp:
        dist.barrier()
    train_data, val_data = load_tokens(data_dir, "train"), load_tokens(data_dir, "val")
    for split, data in (("training", train_data), ("validation", val_data)):
        # Checked before the model is built: a run that cannot fill one window would train
        # on the same few tokens until its first validation, then stop with a traceback.
        if len(data) <= cfg.window_tokens + 1:
            raise SystemExit(f"too little code to train on: {len(data):,} {split} tokens, and one window of "
                             f"{cfg.window_tokens:,} needs more (add folders with --roots, or leave out fewer "
                             f"files; the corpus is kept in {data_dir}, so start again with another --out)")

    torch.manual_seed(cfg.seed + rank)
    if cfg.init_from:
        base = ModelConfig.load(Path(cfg.init_from))
        cfg = replace(cfg, model=replace(base, max_seq_len=max(base.max_seq_len, cfg.model.max_seq_len),
                                         n_layer=max(base.n_layer, cfg.grow_to_layers)))
    model, model_cfg = build_model(cfg.model, data_dir)
    cfg = replace(cfg, model=model_cfg)
    if cfg.init_from and not (resume and (out_dir / STATE_FILE).exists()):
        from training.warm_start import grow_layers, load_float_state

        state = load_float_state(Path(cfg.init_from), base)
        if model_cfg.n_layer > base.n_layer:
            added = grow_layers(model, state, base.n_layer)
            log(f"grown from {base.n_layer} to {model_cfg.n_layer} layers (added {added}, starting as the identity)")
        else:
            model.load_state_dict(state, strict=False)
        model.tie_weights()
        log(f"initialised from {cfg.init_from}")
    model.to(device)
    trained = []
    for name, p in model.named_parameters():
        p.requires_grad_(not any(part in name for part in cfg.frozen))
        if p.requires_grad:
            trained.append(p)
    if cfg.frozen:
        log(f"training {sum(p.numel() for p in trained) / 1e6:.2f} M of the parameters "
            f"(kept: {', '.join(cfg.frozen)})")
    decay = [p for p in trained if p.dim() >= 2]
    no_decay = [p for p in trained if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95), fused=device.startswith("cuda"),
    )
    step, tokens_seen, best_val = 0, 0, float("inf")
    tokens_before = tokens_seen_in_all(Path(cfg.init_from)) if cfg.init_from else 0
    state_file = out_dir / STATE_FILE
    if resume and state_file.exists():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(out_dir / CHECKPOINT_DIR / "model.safetensors"), strict=False)
        model.tie_weights()
        state = torch.load(state_file, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        step, tokens_seen = int(state["step"]), int(state["tokens_seen"])
        best_val = float(state.get("best_val", best_val))
        # The count the run began with, not the init folder's now: that may have been replaced since.
        tokens_before = int(state.get("tokens_seen_before", tokens_before))
        log(f"resumed at step {step} ({tokens_seen:,} tokens seen)")
        log_path = out_dir / "log.jsonl"
        if master and log_path.exists():  # drop rows logged after the checkpoint we resume from
            rows = [r for r in log_path.read_text().splitlines() if r.strip() and json.loads(r)["step"] <= step]
            log_path.write_text("".join(r + "\n" for r in rows))
    raw_model = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model)
    use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else torch.autocast("cpu", enabled=False)

    log(f"model: {model_cfg.n_params() / 1e6:.2f} M parameters, device {device}, world {world}"
        + (", compiled" if cfg.compile else ""))

    def train_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with ctx:
            logits = model(input_ids=x).logits
        return token_loss(logits, y)

    # Compiled together, the logits' softmax and cross-entropy fuse with the model's last
    # layer; validation stays eager (other batch shapes would compile again).
    step_loss = torch.compile(train_loss) if cfg.compile else train_loss
    rng = np.random.default_rng(cfg.seed + 1000 * rank + step)
    log_file = out_dir / "log.jsonl"
    tokens_per_step = cfg.batch_size * cfg.window_tokens * cfg.grad_accum * world
    pbar = None
    if master:
        from tqdm import tqdm

        # On a clock budget the step count is not known: the bar counts steps, the log says when it ends.
        pbar = tqdm(total=None if cfg.max_seconds else cfg.max_steps, initial=step, unit="step", dynamic_ncols=True)
        if cfg.max_seconds:
            log(f"training for {cfg.max_seconds / 60:.1f} minutes")
    t_start, step_start = time.time(), step
    last_val, last_checkpoint = None, step

    def clock() -> float:
        """Seconds since the loop started; under DDP the slowest rank's, so every rank sets the
        same learning rate and stops at the same step."""
        elapsed = time.time() - t_start
        if ddp and cfg.max_seconds:
            t = torch.tensor([elapsed], device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            elapsed = float(t.item())
        return elapsed

    def checkpoint(val_loss: float | None) -> None:
        info = {"step": step, "tokens_seen": tokens_seen, "tokens_seen_before": tokens_before,
                "val_loss": val_loss, "config": asdict(cfg)}
        save_checkpoint(raw_model, model_cfg, data_dir, out_dir, info)
        torch.save({"optimizer": optimizer.state_dict(), "step": step, "tokens_seen": tokens_seen,
                    "tokens_seen_before": tokens_before, "best_val": best_val}, state_file)
        plot_loss(log_file, out_dir / "loss.png")

    def validate_and_save() -> None:
        nonlocal last_val, best_val, last_checkpoint
        val_loss = estimate_val_loss(raw_model, val_data, cfg, device, ctx)
        last_checkpoint = step
        if master:
            last_val = val_loss
            best_val = min(best_val, val_loss)
            with open(log_file, "a") as fh:
                fh.write(json.dumps({"kind": "val", "step": step, "val_loss": val_loss}) + "\n")
            pbar.write(f"step {step}: val loss {val_loss:.4f}")
            checkpoint(val_loss)

    try:
        while step < cfg.max_steps:
            elapsed = clock()
            if cfg.max_seconds and elapsed >= cfg.max_seconds:
                break
            lr = get_lr(step, cfg, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = 0.0
            for micro in range(cfg.grad_accum):
                x, y = get_batch(train_data, cfg.batch_size, cfg.window_tokens, rng)
                x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                if ddp:
                    model.require_backward_grad_sync = micro == cfg.grad_accum - 1
                loss = step_loss(x, y)
                (loss / cfg.grad_accum).backward()
                loss_sum += loss.item() / cfg.grad_accum
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += tokens_per_step
            if master:
                elapsed = time.time() - t_start
                tps = (step - step_start) * tokens_per_step / max(elapsed, 1e-9)
                pbar.update(1)
                pbar.set_postfix(loss=f"{loss_sum:.3f}", lr=f"{lr:.1e}", tok_s=f"{tps:,.0f}")
                with open(log_file, "a") as fh:
                    fh.write(json.dumps({"kind": "train", "step": step, "loss": loss_sum, "lr": lr,
                                         "tokens_seen": tokens_seen, "tokens_per_s": tps}) + "\n")
            if step % cfg.eval_interval == 0 or step == cfg.max_steps:
                validate_and_save()
        if step != last_checkpoint:  # stopped by the clock between validations
            validate_and_save()
    finally:
        if pbar is not None:
            pbar.close()
        if ddp:
            dist.destroy_process_group()
    elapsed = time.time() - t_start
    summary = {
        "steps": step,
        "tokens_seen": tokens_seen,
        "val_loss": last_val,
        "train_seconds": round(elapsed, 1),
        "tokens_per_s": round((step - step_start) * tokens_per_step / max(elapsed, 1e-9)),
        "params": model_cfg.n_params(),
    }
    if master:
        log(json.dumps(summary))
    return summary
