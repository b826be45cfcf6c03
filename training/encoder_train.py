"""Train the transformer code encoder behind the dense similarity signal.

A small BERT (``transformers.BertModel``: bidirectional attention, absolute positions, so
CTranslate2's ``Encoder`` runs it) over the completion model's byte-level BPE (no new
vocabulary), mean-pooled and L2-normalised.  Its token embeddings start from the completion
model's (``model/default``), which already places code tokens usefully; the layers start
from scratch.  Then contrastive training, symmetric InfoNCE with in-batch negatives, on
batches that mix:

* **clone pairs**: two solutions of one problem by different authors, from the *encoder's
  half* of the train problems of the clone sets only (``eval_clones.split_of`` and
  ``train_half_of``: the other half is where ``fit_fusion`` fits the weights, the held-out
  problems are never seen), named or anonymised rows, each side rewritten at random and
  both sides anonymised (``rewrites.anonymise``) half the time; problems that look
  lexically alike go into the same batch (hard negatives: similar words, different algorithm);
* **rewrite pairs**: two meaning-preserving rewrites (``training/rewrites.py``) of one
  function from the corpus (``training/corpus.py``, which leaves out the evaluation code),
  both anonymised as often as the clone pairs.

Every few hundred steps the encoder is scored (dense MAP@R) on the held-out problems and
saved; the end product is exported with CTranslate2's converter (int8) into
``model/encoder/`` for ``lsp_server/similarity/encoder.py``.

    nice -n 5 python -m training.encoder_train --minutes 45 --out model/encoder
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lsp_server.similarity.chunking import chunk_text
from model.tokenizer import encode, load_tokenizer
from training.corpus import CorpusConfig, iter_corpus
from training.eval_clones import average_precision_at_r, load_items
from training.rewrites import RewriteConfig, anonymise, rewrite

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "model" / "encoder"
CLONES = ROOT.parent / "shared" / "eval" / "clones"


@dataclass(frozen=True)
class EncoderTrainConfig:
    # model
    # Sized for a shared 2-core CPU: ~0.2 MFLOP per token per layer, so a training step
    # takes seconds and a whole repository embeds in about a minute.
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 512
    max_tokens: int = 160  # training and serving truncate here
    init_from: str = str(ROOT / "model" / "default")  # token embeddings of the completion model ("" = none)
    resume: str = ""  # a transformers checkpoint of this encoder (``model/encoder-hf``) to go on training
    # data
    clone_files: tuple[str, ...] = (str(CLONES / "leetcode_dev.jsonl"), str(CLONES / "leetcode_dev.anon.jsonl"))
    # The encoder's half of the train problems; "train-fusion" stays unseen for fit_fusion.
    clone_split: str = "train-encoder"
    # Both sides of a pair anonymised as the anon clone set is (method names -> method0...):
    # a problem's given method name is the same for every author, a shortcut that the
    # anonymised files take away.
    anon_prob: float = 0.5
    max_corpus_bytes: int = 8_000_000
    sample_permille: int = 300
    max_functions: int = 12_000
    min_function_lines: int = 4
    # optimisation
    batch_pairs: int = 48
    clone_share: float = 0.6  # share of a batch's pairs that are clone pairs
    hard_neighbours: int = 3  # lexically closest other problems pulled into a batch with each
    rewrite_clone_prob: float = 0.5
    lr: float = 1e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    temperature: float = 0.05
    minutes: float = 45.0  # wall-clock budget for the contrastive phase
    max_steps: int = 100_000
    eval_every: int = 100
    eval_at_start: bool = False
    seed: int = 0
    threads: int = 2


# -- data --------------------------------------------------------------------------------------


def clone_groups(files: tuple[str, ...], split: str) -> dict[str, list[tuple[str, str]]]:
    """label -> [(author, code)] over the named and anonymised files, one split only."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path in files:
        for row in load_items(Path(path), split):
            groups[str(row["label"])].append((str(row.get("source", "")), row["code"]))
    return dict(groups)


def corpus_functions(cfg: EncoderTrainConfig, log=print) -> list[str]:
    corpus = CorpusConfig(max_total_bytes=cfg.max_corpus_bytes, sample_permille=cfg.sample_permille)
    out: list[str] = []
    t0 = time.time()
    for src in iter_corpus(corpus):
        for chunk in chunk_text(src.text, "python"):
            if chunk.kind == "function" and chunk.end_line - chunk.start_line + 1 >= cfg.min_function_lines:
                out.append(chunk.text)
        if len(out) >= cfg.max_functions:
            break
    log(f"corpus: {len(out):,} functions in {time.time() - t0:.0f}s")
    return out[:cfg.max_functions]


def lexical_neighbours(groups: dict[str, list[tuple[str, str]]], k: int) -> dict[str, list[str]]:
    """For each problem, the ``k`` other problems whose code is most alike by TF-IDF: the
    hard negatives (what the lexical signal would confuse it with)."""
    from lsp_server.similarity.chunking import Chunk
    from lsp_server.similarity.index import SimilarityIndex, make_entry

    index = SimilarityIndex(0)
    labels = list(groups)
    items = []
    for label in labels:
        code = groups[label][0][1]
        entry = make_entry(label, Chunk("function", label, 0, code.count("\n"), code, "python"))
        index.set_file(label, None, [entry])
        items.append(entry)
    out = {}
    for label, entry in zip(labels, items, strict=True):
        hits = index.search(entry.fingerprint, k, exclude_file=label, signals="lexical")
        out[label] = [h.entry.file for h in hits]
    return out


# -- model -------------------------------------------------------------------------------------


def build_model(cfg: EncoderTrainConfig, vocab_size: int, pad_id: int):
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab_size, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                        num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate,
                        max_position_embeddings=cfg.max_tokens, type_vocab_size=1, pad_token_id=pad_id,
                        # CTranslate2's converter reads this field, which newer transformers dropped.
                        position_embedding_type="absolute", attn_implementation="sdpa")
    model = BertModel(config, add_pooling_layer=False)
    if cfg.init_from:
        from safetensors.torch import load_file

        weights = load_file(str(Path(cfg.init_from) / "model.safetensors"))
        table = weights["model.embed_tokens.weight"].float()
        if table.shape[0] == vocab_size and table.shape[1] >= cfg.hidden:
            # Narrower than the completion model: keep its main directions (PCA).
            centred = table - table.mean(0)
            _, _, v = torch.linalg.svd(centred, full_matrices=False)
            table = centred @ v[:cfg.hidden].T
            with torch.no_grad():
                # The embedding LayerNorm follows, so only the direction of each row matters.
                model.embeddings.word_embeddings.weight.copy_(table * (0.02 / table.std()))
    return model


def pool(hidden, mask):
    """Mean over real tokens, L2-normalised (the same pooling the server does on CTranslate2's output)."""
    import torch.nn.functional as F

    m = mask.unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)


class Batcher:
    def __init__(self, tok, max_tokens: int, pad_id: int) -> None:
        self.tok, self.max_tokens, self.pad_id = tok, max_tokens, pad_id

    def ids(self, text: str) -> list[int]:
        return encode(self.tok, text)[:self.max_tokens] or [self.pad_id]

    def tensors(self, texts: list[str]):
        import torch

        rows = [self.ids(t) for t in texts]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        return ids, mask


def embed_texts(model, batcher: Batcher, texts: list[str], batch: int = 64) -> np.ndarray:
    import torch

    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch):
            rows = order[s:s + batch]
            ids, mask = batcher.tensors([texts[i] for i in rows])
            out[rows] = pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask).numpy()
    model.train()
    return out


def dense_map_at_r(model, batcher: Batcher, path: Path) -> float:
    """Dense-only MAP@R on the held-out problems of one clone file (what ``eval clones
    --split heldout`` reports as ``dense``, computed here on the torch model)."""
    rows = load_items(path, "heldout")
    labels = [str(r["label"]) for r in rows]
    vecs = embed_texts(model, batcher, [r["code"] for r in rows])
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    counts = defaultdict(int)
    for label in labels:
        counts[label] += 1
    aps = []
    for i, label in enumerate(labels):
        r = counts[label] - 1
        if r == 0:
            continue
        top = np.argsort(-sims[i], kind="stable")[:r]
        aps.append(average_precision_at_r([labels[j] for j in top], label, r))
    return float(np.mean(aps))


# -- training ----------------------------------------------------------------------------------


def export(model, tok_dir: Path, out: Path, cfg: EncoderTrainConfig, info: dict) -> None:
    """Save the transformers checkpoint next to ``out`` and convert it to CTranslate2 int8."""
    from ctranslate2.converters import TransformersConverter

    hf = out.parent / f"{out.name}-hf"
    model.save_pretrained(hf)
    TransformersConverter(str(hf)).convert(str(out), quantization="int8", force=True)
    shutil.copy(tok_dir / "tokenizer.json", out / "tokenizer.json")
    (out / "encoder.json").write_text(json.dumps({
        "max_tokens": cfg.max_tokens, "pooling": "mean", "dim": cfg.hidden,
        "trained_by": "training/encoder_train.py", "config": asdict(cfg), **info}, indent=2))


def train_encoder(cfg: EncoderTrainConfig, out: Path, log=print) -> dict:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    tok_dir = Path(cfg.init_from) if cfg.init_from else ROOT / "model" / "default"
    tok = load_tokenizer(tok_dir)
    pad_id = tok.token_to_id("<|endoftext|>")
    batcher = Batcher(tok, cfg.max_tokens, pad_id)

    if cfg.clone_split not in ("train", "train-encoder", "train-fusion"):
        raise ValueError(f"the encoder learns from train problems only, not {cfg.clone_split!r}")
    groups = clone_groups(cfg.clone_files, cfg.clone_split)
    # Positives need two authors (or a named and an anonymised copy of one solution).
    problems = [label for label, rows in groups.items() if len(rows) >= 2]
    neighbours = lexical_neighbours(groups, cfg.hard_neighbours)
    functions = corpus_functions(cfg, log)
    pool_names = sorted({n for code in functions[:3000] for n in _identifiers(code)})
    log(f"clone pairs from {len(problems)} train problems; {len(functions):,} corpus functions")
    rewrite_cfg = RewriteConfig()

    if cfg.resume:
        from transformers import BertModel

        model = BertModel.from_pretrained(cfg.resume, add_pooling_layer=False)
        log(f"resumed from {cfg.resume}")
        if model.config.max_position_embeddings < cfg.max_tokens:
            log(f"positions {model.config.max_position_embeddings} -> {cfg.max_tokens}")
            model = longer_positions(model, cfg.max_tokens)
    else:
        model = build_model(cfg, tok.get_vocab_size(), pad_id)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {params / 1e6:.2f}M parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    heldout = [Path(p) for p in cfg.clone_files]

    def clone_pair(label: str) -> tuple[str, str]:
        rows = groups[label]
        a, b = rng.sample(rows, 2)
        other = [r for r in rows if r[0] != a[0]]
        if other and rng.random() < 0.8:  # prefer two authors over named/anonymised twins
            b = rng.choice(other)
        texts = [r[1] if rng.random() >= cfg.rewrite_clone_prob else rewrite(r[1], rng, pool_names, rewrite_cfg)
                 for r in (a, b)]
        return anonymised_pair(texts[0], texts[1])

    def anonymised_pair(a: str, b: str) -> tuple[str, str]:
        return (anonymise(a), anonymise(b)) if rng.random() < cfg.anon_prob else (a, b)

    def make_batch() -> tuple[list[str], list[str]]:
        n_clone = int(cfg.batch_pairs * cfg.clone_share)
        chosen: list[str] = []
        while len(chosen) < n_clone:
            seed = rng.choice(problems)
            for label in [seed] + neighbours.get(seed, []):
                if label not in chosen and label in groups and len(groups[label]) >= 2 and len(chosen) < n_clone:
                    chosen.append(label)
        left, right = [], []
        for label in chosen:
            a, b = clone_pair(label)
            left.append(a)
            right.append(b)
        for code in rng.sample(functions, cfg.batch_pairs - n_clone):
            a = code if rng.random() < 0.3 else rewrite(code, rng, pool_names, rewrite_cfg)
            a, b = anonymised_pair(a, rewrite(code, rng, pool_names, rewrite_cfg))
            left.append(a)
            right.append(b)
        return left, right

    history = []

    def evaluate(step: int) -> dict:
        t = time.time()
        scores = {p.name: round(dense_map_at_r(model, batcher, p), 4) for p in heldout}
        history.append({"step": step, **scores})
        log(f"step {step}: held-out dense MAP@R {scores} ({time.time() - t:.0f}s)")
        return scores

    if cfg.eval_at_start:
        evaluate(0)
    t0 = time.time()
    budget = cfg.minutes * 60
    step = 0
    model.train()
    while step < cfg.max_steps and time.time() - t0 < budget:
        step += 1
        elapsed = (time.time() - t0) / budget
        lr = cfg.lr * min(1.0, step / cfg.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed)))
        for g in opt.param_groups:
            g["lr"] = lr
        left, right = make_batch()
        ids, mask = batcher.tensors(left + right)
        z = pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        za, zb = z[:len(left)], z[len(left):]
        logits = za @ zb.T / cfg.temperature
        target = torch.arange(len(left))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == 1:
            log(f"step {step} loss {loss.item():.3f} lr {lr:.2e} {time.time() - t0:.0f}s")
        if step % cfg.eval_every == 0:
            evaluate(step)
            export(model, tok_dir, out, cfg, {"steps": step, "history": history})
    minutes = (time.time() - t0) / 60
    final = evaluate(step)
    info = {"steps": step, "train_minutes": round(minutes, 1), "history": history,
            "train_problems": len(problems), "clone_split": cfg.clone_split, "corpus_functions": len(functions)}
    export(model, tok_dir, out, cfg, info)
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    log(f"exported {out} ({size:.1f} MB) after {step} steps, {minutes:.1f} min: {final}")
    return info


def _identifiers(code: str) -> set[str]:
    import keyword
    import re

    return {w for w in re.findall(r"\b[A-Za-z_][A-Za-z0-9_]{2,20}\b", code) if not keyword.iskeyword(w)}


def longer_positions(model, max_tokens: int):
    """The same encoder reading ``max_tokens`` tokens: the learnt position table is repeated
    to fill the new length (the rows past the old end start where a new window of the old
    length would), so a longer view starts from what the short one learnt."""
    import torch

    old = model.embeddings.position_embeddings.weight.data
    reps = -(-max_tokens // old.shape[0])
    table = old.repeat(reps, 1)[:max_tokens].clone()
    model.config.max_position_embeddings = max_tokens
    model.embeddings.position_embeddings = torch.nn.Embedding(max_tokens, old.shape[1])
    model.embeddings.position_embeddings.weight.data.copy_(table)
    model.embeddings.register_buffer("position_ids", torch.arange(max_tokens).expand((1, -1)), persistent=False)
    if hasattr(model.embeddings, "token_type_ids"):
        model.embeddings.register_buffer("token_type_ids", torch.zeros((1, max_tokens), dtype=torch.long),
                                         persistent=False)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--minutes", type=float, default=EncoderTrainConfig.minutes)
    parser.add_argument("--max-steps", type=int, default=EncoderTrainConfig.max_steps)
    parser.add_argument("--layers", type=int, default=EncoderTrainConfig.layers)
    parser.add_argument("--eval-every", type=int, default=EncoderTrainConfig.eval_every)
    parser.add_argument("--temperature", type=float, default=EncoderTrainConfig.temperature)
    parser.add_argument("--lr", type=float, default=EncoderTrainConfig.lr)
    parser.add_argument("--max-tokens", type=int, default=EncoderTrainConfig.max_tokens,
                        help="tokens of a chunk the encoder reads (training and serving); with --resume "
                             "from a shorter encoder its position table is extended")
    parser.add_argument("--resume", default="", help="go on training this checkpoint (an encoder-hf folder); "
                        "its clone split must be the one given here, or the fusion fit loses its unseen half")
    parser.add_argument("--anon-prob", type=float, default=EncoderTrainConfig.anon_prob,
                        help="share of pairs with both sides anonymised (method names -> method0...)")
    parser.add_argument("--clone-split", default=EncoderTrainConfig.clone_split,
                        choices=["train-encoder", "train-fusion", "train"],
                        help="train problems the clone pairs come from (default: the encoder's half; "
                             "'train' leaves fit_fusion no unseen problems to fit the dense weight on)")
    parser.add_argument("--no-init", action="store_true", help="random token embeddings (ablation)")
    parser.add_argument("--eval-at-start", action="store_true", help="score the untrained encoder first")
    args = parser.parse_args(argv)
    cfg = EncoderTrainConfig(minutes=args.minutes, max_steps=args.max_steps, layers=args.layers,
                             eval_every=args.eval_every, eval_at_start=args.eval_at_start,
                             temperature=args.temperature, lr=args.lr, resume=args.resume,
                             max_tokens=args.max_tokens, anon_prob=args.anon_prob, clone_split=args.clone_split,
                             init_from="" if args.no_init else EncoderTrainConfig.init_from)
    train_encoder(cfg, args.out)


if __name__ == "__main__":
    main()
