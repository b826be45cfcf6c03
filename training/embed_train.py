"""Train the code encoder behind the dense similarity signal (``lsp_server/similarity/embedder.py``).

Contrastive learning on positive pairs made automatically from the training corpus
(``training/corpus.py``, which always leaves out the evaluation code):

* *the same function, disguised*: identifiers consistently renamed to names drawn from
  other code, docstrings dropped at random -- so the encoder learns what survives renaming;
* *two functions with the same, specific name in different files* (``parse_header`` in two
  packages), each with its own name hidden -- the CodeRetriever trick: same purpose,
  different authors, so the encoder learns that different vocabularies can mean the same.

In-batch negatives, symmetric InfoNCE.  The model is deliberately a bag of learned feature
vectors (see the embedder's docstring for why); it trains in minutes on a CPU and the result
is a few MB of numpy arrays committed under ``model/embedder/``.

    python -m training.embed_train --out model/embedder/embedder.npz
"""

from __future__ import annotations

import argparse
import builtins
import math
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lsp_server.similarity.chunking import chunk_text
from lsp_server.similarity.embedder import DEFAULT_EMBEDDER, EmbedderWeights
from lsp_server.similarity.fingerprint import Fingerprint, fingerprint_tokens
from lsp_server.similarity.tokens import Token, tokenize
from training.corpus import CorpusConfig, iter_corpus

_KEEP_NAMES = frozenset(dir(builtins)) | {"self", "cls"}


@dataclass(frozen=True)
class EmbedTrainConfig:
    max_corpus_bytes: int = 15_000_000
    sample_permille: int = 400  # spread the byte budget over many packages
    max_functions: int = 20_000
    vocab_size: int = 24_000
    min_df: int = 3
    dim: int = 96
    out_dim: int = 128
    steps: int = 400
    batch_size: int = 256
    lr: float = 3e-3
    temperature: float = 0.05
    same_name_share: float = 0.5  # share of each batch made of same-name pairs
    rename_prob: float = 0.5
    crop: tuple[float, float] = (0.4, 0.8)  # share of a function's lines in each view
    line_drop: float = 0.1
    seed: int = 0
    threads: int = 2


@dataclass
class _Function:
    file: int
    name: str
    text: str
    tokens: list[Token]


def collect_functions(cfg: EmbedTrainConfig, log=print) -> list[_Function]:
    corpus = CorpusConfig(max_total_bytes=cfg.max_corpus_bytes, sample_permille=cfg.sample_permille)
    out: list[_Function] = []
    t0 = time.time()
    for i, src in enumerate(iter_corpus(corpus)):
        for chunk in chunk_text(src.text, "python"):
            if chunk.kind == "function":
                out.append(_Function(i, chunk.name, chunk.text, tokenize(chunk.text, "python")))
        if len(out) >= cfg.max_functions:
            break
    log(f"collected {len(out):,} functions from {i + 1:,} files in {time.time() - t0:.0f}s")
    return out


def disguise(tokens: list[Token], pool: list[str], rng: random.Random, rename_prob: float,
             drop_doc: bool, only: str | None = None) -> list[Token]:
    """Rename identifiers consistently (or just ``only``) and optionally drop docstrings."""
    mapping: dict[str, str] = {}
    out = []
    prev = ""
    for tok in tokens:
        if tok.kind == "doc" and drop_doc:
            continue
        if tok.kind == "name" and prev != "." and tok.text not in _KEEP_NAMES:
            if tok.text not in mapping:
                wanted = tok.text == only if only is not None else rng.random() < rename_prob
                mapping[tok.text] = rng.choice(pool) if wanted else tok.text
            tok = Token("name", mapping[tok.text])
        out.append(tok)
        prev = tok.text
    return out


def crop(text: str, rng: random.Random, keep: tuple[float, float], line_drop: float) -> list[Token]:
    """A random contiguous span of the function's lines, a few lines dropped: two crops of
    one function share its purpose but not all of its text, unlike two renamings."""
    lines = text.split("\n")
    n = max(1, round(len(lines) * rng.uniform(*keep)))
    start = rng.randrange(0, len(lines) - n + 1)
    kept = [line for line in lines[start:start + n] if rng.random() >= line_drop]
    return tokenize("\n".join(kept or lines[start:start + 1]), "python")


class _Encoded:
    """Fingerprints as flat index/weight arrays over the vocabulary, for EmbeddingBag."""

    def __init__(self, vocab: np.ndarray, fps: list[Fingerprint]) -> None:
        self.bags = []
        for field in ("words", "shape"):
            idx, wts, offsets = [], [], [0]
            for fp in fps:
                bag = getattr(fp, field)
                pos = np.searchsorted(vocab, bag.ids)
                pos[pos == len(vocab)] = 0
                hit = vocab[pos] == bag.ids
                idx.append(pos[hit])
                wts.append(bag.weights[hit])
                offsets.append(offsets[-1] + int(hit.sum()))
            self.bags.append((np.concatenate(idx).astype(np.int64), np.concatenate(wts).astype(np.float32),
                              np.array(offsets, np.int64)))

    def batch(self, rows: np.ndarray):
        import torch

        out = []
        for idx, wts, offsets in self.bags:
            starts, ends = offsets[rows], offsets[rows + 1]
            sel = (np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)]) if len(rows)
                   else np.zeros(0, int))
            lens = ends - starts
            out.append((torch.from_numpy(idx[sel]), torch.from_numpy(wts[sel]),
                        torch.from_numpy(np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64))))
        return out


def train_embedder(cfg: EmbedTrainConfig, out: Path, log=print) -> EmbedderWeights:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    functions = collect_functions(cfg, log)
    pool = sorted({t.text for f in functions[:5000] for t in f.tokens if t.kind == "name"})

    # Views: two disguised copies of every function, and a name-hidden copy for same-name pairs.
    t0 = time.time()
    view_a = [fingerprint_tokens(disguise(crop(f.text, rng, cfg.crop, cfg.line_drop), pool, rng,
                                          cfg.rename_prob, rng.random() < 0.7)) for f in functions]
    view_b = [fingerprint_tokens(disguise(crop(f.text, rng, cfg.crop, cfg.line_drop), pool, rng,
                                          cfg.rename_prob, rng.random() < 0.7)) for f in functions]
    view_n = [fingerprint_tokens(disguise(f.tokens, pool, rng, 0.0, rng.random() < 0.3, only=f.name))
              for f in functions]
    log(f"made {3 * len(functions):,} views in {time.time() - t0:.0f}s")

    groups: dict[str, set[int]] = defaultdict(set)
    for i, f in enumerate(functions):
        key = f.name.strip("_").lower()
        if len(key) >= 6 and not f.name.startswith("__"):
            groups[key].add(i)
    by_file = [list(g) for g in groups.values()]
    same_name = [g for g in by_file if len({functions[i].file for i in g}) >= 2 and len(g) <= 50]
    log(f"{len(same_name):,} same-name groups over {sum(map(len, same_name)):,} functions")

    df: Counter = Counter()
    for fp in view_n:
        df.update(fp.words.ids.tolist())
        df.update(fp.shape.ids.tolist())
    common = [f for f, n in df.most_common(cfg.vocab_size) if n >= cfg.min_df]
    vocab = np.array(sorted(common), np.uint32)
    idf = np.array([math.log((1 + len(functions)) / (1 + df[int(f)])) + 1 for f in vocab], np.float32)
    enc_a, enc_b, enc_n = (_Encoded(vocab, v) for v in (view_a, view_b, view_n))
    log(f"vocabulary {len(vocab):,} features")

    table = torch.nn.EmbeddingBag(len(vocab), cfg.dim, mode="sum")
    torch.nn.init.normal_(table.weight, std=cfg.dim ** -0.5)
    scale = torch.nn.Parameter(torch.from_numpy(idf))
    proj = torch.nn.Linear(2 * cfg.dim, cfg.out_dim, bias=False)
    params = list(table.parameters()) + [scale] + list(proj.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)

    def encode(batch) -> torch.Tensor:
        parts = [F.normalize(table(idx, off, per_sample_weights=w * scale[idx]), dim=-1) for idx, w, off in batch]
        return F.normalize(proj(torch.cat(parts, dim=-1)), dim=-1)

    n_same = int(cfg.batch_size * cfg.same_name_share)
    t0 = time.time()
    for step in range(1, cfg.steps + 1):
        lr = cfg.lr * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        groups_here = rng.sample(same_name, n_same)
        pairs = [rng.sample(sorted(g), 2) for g in groups_here]
        used = {i for p in pairs for i in p}
        singles = [i for i in rng.sample(range(len(functions)), cfg.batch_size) if i not in used]
        singles = singles[:cfg.batch_size - n_same]
        left = np.array([p[0] for p in pairs] + singles)
        right = np.array([p[1] for p in pairs] + singles)
        # Same-name pairs compare the name-hidden views; singles compare two disguises.
        za = torch.cat([encode(enc_n.batch(left[:n_same])), encode(enc_a.batch(left[n_same:]))])
        zb = torch.cat([encode(enc_n.batch(right[:n_same])), encode(enc_b.batch(right[n_same:]))])
        logits = za @ zb.T / cfg.temperature
        target = torch.arange(len(left))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == 1:
            log(f"step {step}/{cfg.steps} loss {loss.item():.3f} lr {lr:.2e} {time.time() - t0:.0f}s")

    weights = EmbedderWeights(vocab=vocab, scale=scale.detach().numpy(), table=table.weight.detach().numpy(),
                              proj=proj.weight.detach().numpy().T.copy(),
                              meta={"config": asdict(cfg), "functions": len(functions),
                                    "final_loss": round(float(loss.item()), 4),
                                    "trained_by": "training/embed_train.py"})
    weights.save(out)
    log(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_EMBEDDER)
    parser.add_argument("--steps", type=int, default=EmbedTrainConfig.steps)
    parser.add_argument("--max-corpus-bytes", type=int, default=EmbedTrainConfig.max_corpus_bytes)
    parser.add_argument("--max-functions", type=int, default=EmbedTrainConfig.max_functions)
    parser.add_argument("--same-name-share", type=float, default=EmbedTrainConfig.same_name_share)
    args = parser.parse_args(argv)
    cfg = EmbedTrainConfig(steps=args.steps, max_corpus_bytes=args.max_corpus_bytes, max_functions=args.max_functions,
                           same_name_share=args.same_name_share)
    train_embedder(cfg, args.out)


if __name__ == "__main__":
    main()
