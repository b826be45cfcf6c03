"""``ghostline adapt DIR``: fine-tune the default model on a workspace's own code, on the CPU.

What the model cannot know from general code is this repository's names and habits; a
few minutes of training on the repository itself teaches them.  The recipe:

* files: the ones the language server reads for the workspace (``.gitignore`` honoured,
  build and virtual-environment folders skipped), in the languages the base model knows,
  minus generated, minified, binary, huge and duplicate files (``training/corpus.py``);
* examples: the same pieces and fill-in-the-middle transform as pre-training, the
  repository written several times with its own cuts each (``fim_draws``): the step
  budget passes over a small repository several times;
* replay: a quarter of the tokens come from general code (this Python's standard
  library), so the model does not forget what it knew;
* a step budget (``--steps``), not epochs: the time is known before it starts, and the
  progress bar shows the ETA; a constant learning rate with a decay at the end;
* it continues from the last adapted weights when there are some (run it again after
  edits), else from the default model's float weights;
* the result is exported to int8 in the cache folder (``model/adapted.py``), never in DIR.
"""

from __future__ import annotations

import hashlib
import resource
import shutil
import sysconfig
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from lsp_server.unfinished import without_unfinished_lines
from model.adapted import MODEL_SUBDIR, AdaptedInfo, adapted_dir, read_adapted, remove_other_models
from model.config import ModelConfig
from model.tokenizer import TOKENIZER_FILE
from training.corpus import CorpusConfig, iter_corpus, reject_reason, split_of
from training.data import DataConfig, write_meta, write_shard
from training.train import TrainConfig, train


@dataclass(frozen=True)
class AdaptConfig:
    # With attention kept (``frozen``), 120 steps (~1.5 passes over the requests repository's
    # 161 k tokens) do better than 300 on the dev set in a quarter of the time: 38.3 / 67.3
    # over three seeds in ~75 s, against 37.3 / 67.0 in ~310 s for 300 steps of the whole
    # model (docs/benchmarks.md, twenty-ninth session).
    steps: int = 120
    batch_size: int = 8
    # Gentle: the 6-layer default adapted at 1e-4 lost more dev-set answers than it gained
    # (default EM 32.9 -> 32.2); at 5e-5 it gains (34.0; 2e-5: 33.6; 4-layer model: 3e-4 lost).
    lr: float = 5e-5
    min_lr: float = 1e-5
    warmup_steps: int = 20
    # Training windows, whatever the model's context: a repository's names and habits show
    # within a few hundred tokens, and a step on 1,024-token windows costs 4x as much (the
    # 300 steps would take ~20 minutes on 2 cores instead of ~5).
    window: int = 256
    decay_frac: float = 0.3
    replay_share: float = 0.25  # share of training tokens from general code
    max_repo_bytes: int = 20_000_000  # larger repositories are sampled down to this
    val_permille: int = 50
    # The repository is written this many times, each with its own fill-in-the-middle cuts:
    # a step budget of several passes over a small repository then sees new completions
    # on every pass instead of the same ones again (dev --adapt at lr 5e-5: 34.1 / 64.8
    # against 34.0 / 64.6 with one; at 1e-4: 33.5 / 64.8 against 32.2 / 64.0).
    fim_draws: int = 4
    # Every piece of the repository is a fill-in-the-middle example, cut from ~500 characters
    # (training's are 3,600): a 256-token window then holds one or two whole examples, the
    # middle with all the code around it, instead of a stretch of one long example that
    # rarely reaches its middle. Dev --adapt over five seeds: 38.8 / 67.7 against 38.4 / 67.4
    # for 1,600-character pieces, 70 % rearranged (a small gain: one seed of five lost ES;
    # 700 and 90 %: no gain; half the cuts between tokens: less; docs/benchmarks.md,
    # thirtieth session).
    piece_chars: int = 500
    fim_rate: float = 1.0
    # Parameters left as the base model has them (names containing these). Attention kept,
    # the model learns the repository's names and habits in its MLPs and embeddings and
    # loses less of what it knew (300 steps, three seeds each: 37.7 / 67.0 against 37.3 /
    # 67.0 for the whole model, and ~10 % faster); nothing trained at all is the default model.
    frozen: tuple[str, ...] = ("self_attn",)
    threads: int | None = None
    # Moves the fill-in-the-middle cuts and the batches drawn: two adaptations of one
    # repository differ by a point of dev-set EM or so, and only several seeds tell a change
    # of that size from luck.
    seed: int = 0


def workspace_files(root: Path, languages: tuple[str, ...], max_bytes: int) -> tuple[list[tuple[str, str]], dict]:
    """``(relative path, text)`` of the workspace's trainable files in ``languages`` (the
    server's language ids), and why others were left."""
    from lsp_server.files import read_regular  # no pipes or devices: they block a read
    from lsp_server.languages import language_of
    from lsp_server.similarity.crawl import CrawlConfig, crawl  # the files the server itself reads

    cfg = CorpusConfig(roots=[root])
    stats: dict[str, int] = {}
    seen: set[bytes] = set()
    files, total = [], 0
    base = root.resolve()
    for path in crawl(root, stats=stats):
        language = language_of(path)
        if language is None or language.id not in languages:
            continue
        try:
            raw = read_regular(path, CrawlConfig().max_file_bytes)
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            stats["unreadable"] = stats.get("unreadable", 0) + 1
            continue
        reason = reject_reason(text, cfg)
        digest = hashlib.sha256(raw).digest()
        if reason or digest in seen:
            stats[reason or "duplicate"] = stats.get(reason or "duplicate", 0) + 1
            continue
        seen.add(digest)
        kept, dropped = without_unfinished_lines(text, language.id)
        if dropped:
            stats["unfinished lines"] = stats.get("unfinished lines", 0) + dropped
        files.append((path.resolve().relative_to(base).as_posix(), kept))
        total += len(raw)
        if total >= max_bytes:
            stats["capped"] = 1
            break
    return files, stats


def replay_files(budget_bytes: int) -> list[tuple[str, str]]:
    """General code to mix in: a spread sample of the standard library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    corpus = CorpusConfig(roots=[stdlib], max_total_bytes=budget_bytes, sample_permille=100)
    return [(f.rel, f.text) for f in iter_corpus(corpus)]


def _write_draws(docs: list[tuple[str, str]], data_dir: Path, data_cfg: DataConfig, draws: int) -> list[int]:
    """``train.bin``: ``docs`` tokenized ``draws`` times, each with its own FIM seed; the
    tokens of each draw."""
    counts = []
    with open(data_dir / "train.bin", "wb") as out:
        for k in range(max(1, draws)):
            part = data_dir / f"train.{k}.bin"
            counts.append(write_shard(docs, data_dir / TOKENIZER_FILE, part, replace(data_cfg, seed=data_cfg.seed + k)))
            out.write(part.read_bytes())
            part.unlink()
    return counts


def data_config(config: AdaptConfig) -> DataConfig:
    """How the repository is cut into training examples."""
    # Seeds far apart: the draws take consecutive data seeds, and the batches step + seed.
    return DataConfig(seed=DataConfig.seed + 1000 * config.seed, piece_chars=config.piece_chars,
                      fim_rate=config.fim_rate)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def adapt(root: Path, base_model: Path, cache_dir: Path | None = None, config: AdaptConfig | None = None,
          log=print) -> AdaptedInfo:
    """Adapt ``base_model`` to ``root``; returns the record written beside the model."""
    from model.export import export

    config = config or AdaptConfig()
    root = Path(root).resolve()
    t0 = time.time()
    languages = ModelConfig.load(Path(base_model)).languages  # what the model knows is what it learns
    files, stats = workspace_files(root, languages, config.max_repo_bytes)
    if not files:
        raise ValueError(f"no {'/'.join(languages)} files to learn from under {root} ({stats or 'nothing found'})")
    out = adapted_dir(root, cache_dir)
    previous = None
    try:
        previous = read_adapted(root, cache_dir)
    except ValueError as exc:
        log(f"starting over: {exc}")
    start_from = previous[0] if previous and (previous[0] / "model.safetensors").is_file() else Path(base_model)
    unfinished = stats.get("unfinished lines", 0)
    log(f"adapting {start_from} to {root}: {len(files)} files ({sum(len(t) for _, t in files) / 1e6:.1f} M chars"
        + (f"; {unfinished} half-written lines left out" if unfinished else "") + ")")

    out.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="run.", dir=out))
    try:
        data_dir = run / "data"
        data_dir.mkdir()
        shutil.copyfile(Path(start_from) / TOKENIZER_FILE, data_dir / TOKENIZER_FILE)
        data_cfg = data_config(config)
        train_docs = [(p, t) for p, t in files if split_of(p, config.val_permille) == "train"] or files
        val_docs = [(p, t) for p, t in files if split_of(p, config.val_permille) == "val"] or files[-1:]
        repo_bytes = sum(len(t) for _, t in train_docs)
        replay = replay_files(int(repo_bytes * config.replay_share / (1 - config.replay_share)))
        # Replay documents interleaved with the repository's, so every batch mixes both.
        mixed, step = [], max(1, len(train_docs) // max(1, len(replay)))
        replay_iter = iter(replay)
        for i, doc in enumerate(train_docs):
            mixed.append(doc)
            if i % step == step - 1:
                extra = next(replay_iter, None)
                if extra is not None:
                    mixed.append(("general/" + extra[0], extra[1]))
        draws = _write_draws(mixed, data_dir, data_cfg, config.fim_draws)
        n_train = draws[0]  # one copy of the repository (and its replay); the others are re-cut
        n_val = write_shard(val_docs, data_dir / TOKENIZER_FILE, data_dir / "val.bin", data_cfg)
        write_meta(data_dir, {"tokens": {"train": sum(draws), "val": n_val}, "files": {"train": len(mixed),
                              "val": len(val_docs)}, "roots": [str(root)], "filter_stats": stats,
                              "data_config": {"fim_rate": data_cfg.fim_rate, "piece_chars": data_cfg.piece_chars}})
        log(f"tokens: {n_train:,} to train on ({len(replay)} general files mixed in; {len(draws)} ways of cutting "
            f"them for fill-in-the-middle), {n_val:,} to validate")
        cfg = TrainConfig(model=ModelConfig.load(Path(start_from)), data=data_cfg, batch_size=config.batch_size,
                          max_steps=config.steps, warmup_steps=config.warmup_steps, lr=config.lr,
                          min_lr=config.min_lr, schedule="wsd", decay_frac=config.decay_frac,
                          eval_interval=config.steps, eval_batches=4, init_from=str(start_from),
                          threads=config.threads, window=config.window, frozen=config.frozen,
                          seed=TrainConfig.seed + 1_000_000 * config.seed)
        if n_val < cfg.window_tokens + 2:  # a tiny repository: validate on what it has
            shutil.copyfile(data_dir / "train.bin", data_dir / "val.bin")
        summary = train(cfg, run)
        # A new folder beside the model in use: the record names it only once it is whole.
        model_dir = Path(tempfile.mkdtemp(prefix=f"{MODEL_SUBDIR}-", dir=out))
        export(run / "checkpoint", model_dir, quantization="int8")
    finally:
        shutil.rmtree(run, ignore_errors=True)  # optimizer state and shards: not worth keeping
    info = AdaptedInfo(
        root=str(root), created=datetime.now().isoformat(timespec="seconds"), base_model=str(base_model),
        steps=summary["steps"], tokens_seen=summary["tokens_seen"], repo_tokens=n_train, files=len(files),
        seconds=round(time.time() - t0, 1), peak_rss_mb=round(_peak_rss_mb(), 1),
        val_loss_after=summary["val_loss"], model=model_dir.name,
    )
    info.save(out)
    remove_other_models(out, keep=model_dir.name)
    return info
