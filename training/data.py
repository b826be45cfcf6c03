"""Token shards: tokenize a corpus (both cores) into flat uint16 memmaps, with FIM.

Each file is cut into pieces of whole lines of about ``piece_chars`` characters, so that a
training window usually holds a whole example; each piece starts with the file-separator
token and its path, and with probability ``fim_rate`` it is rearranged into the SPM
fill-in-the-middle layout the server prompts with (see ``model.prompt_format``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from model.prompt_format import fim_ids, plain_ids
from model.tokenizer import Tokenizer, load_tokenizer, special_ids

META_FILE = "meta.json"


@dataclass
class DataConfig:
    fim_rate: float = 0.7
    # The share of FIM cuts made between two of the piece's tokens rather than at any
    # character.  The server never prompts with a token cut in two: token healing takes the
    # cursor's fragment back out, so its prompt ends where the text's own tokens end.  A cut
    # at any character lands inside a name more often than not, and a model trained on
    # those goes on with whatever name ends the prompt (``pickle`` + ``t_response``).  Not
    # the default: 900 steps of it on the shipped lineage glued less but completed the dev
    # set worse (docs/benchmarks.md, twenty-third session).
    token_cut_rate: float = 0.0
    piece_chars: int = 1600
    seed: int = 1234
    # Tokenizing processes: every core (a GPU machine's sixteen turn a corpus into shards in
    # a sixteenth of one's time).
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)


def split_pieces(text: str, piece_chars: int) -> list[str]:
    """Cut text into runs of whole lines of about ``piece_chars`` characters."""
    pieces, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        size += len(line)
        if size >= piece_chars:
            pieces.append("".join(cur))
            cur, size = [], 0
    if cur:
        pieces.append("".join(cur))
    return pieces


def fim_split(text: str, rng: random.Random, starts: Sequence[int] | None = None) -> tuple[str, str, str]:
    """Choose (prefix, middle, suffix) the way completions are asked for; the middle starts
    at one of ``starts`` (where the text's tokens start), or anywhere when None.

    Half the time the middle runs from a point inside a line to that line's end (single-line
    completion); otherwise it spans to the end of a later line (a block), or is a random span.
    """
    n = len(text)
    start = rng.choice(starts) if starts else rng.randrange(n + 1)
    kind = rng.random()
    if kind < 0.5:
        end = text.find("\n", start)
        end = n if end < 0 else end
    elif kind < 0.8:
        end = start
        for _ in range(rng.randint(1, 8)):
            nxt = text.find("\n", end + 1)
            if nxt < 0:
                end = n
                break
            end = nxt
    else:
        end = rng.randint(start, min(n, start + 200))
    return text[:start], text[start:end], text[end:]


def document_ids(tok: Tokenizer, path: str, text: str, cfg: DataConfig, rng: random.Random) -> list[int]:
    sp = special_ids(tok)
    out: list[int] = []
    for piece in split_pieces(text, cfg.piece_chars):
        if rng.random() < cfg.fim_rate:
            starts = None
            if cfg.token_cut_rate and rng.random() < cfg.token_cut_rate:  # at 0, the draws of before
                starts = [*(start for start, _ in tok.encode(piece, add_special_tokens=False).offsets), len(piece)]
            prefix, middle, suffix = fim_split(piece, rng, starts)
            out += fim_ids(tok, sp, path, prefix, middle, suffix)
        else:
            out += plain_ids(tok, sp, path, piece)
    return out


def _doc_seed(seed: int, path: str) -> int:
    """Per-document seed independent of PYTHONHASHSEED, so shards are reproducible."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{path}".encode(), digest_size=4).digest(), "big")


_worker_tok: Tokenizer | None = None


def _init_worker(tokenizer_path: str) -> None:
    global _worker_tok
    _worker_tok = load_tokenizer(Path(tokenizer_path))


def _encode_job(job: tuple[str, str, dict, int]) -> np.ndarray:
    path, text, cfg_dict, seed = job
    assert _worker_tok is not None
    ids = document_ids(_worker_tok, path, text, DataConfig(**cfg_dict), random.Random(seed))
    return np.asarray(ids, dtype=np.uint16)


def write_shard(
    docs: Iterable[tuple[str, str]], tokenizer_path: Path, out_file: Path, cfg: DataConfig
) -> int:
    """Tokenize ``(path, text)`` pairs in ``cfg.workers`` processes into ``out_file``.

    Returns the number of tokens written.  The file is a flat uint16 array, opened later
    with ``np.memmap``.
    """
    cfg_dict = asdict(cfg)
    jobs = ((p, t, cfg_dict, _doc_seed(cfg.seed, p)) for p, t in docs)
    n = 0
    tmp = out_file.with_suffix(".tmp")
    with open(tmp, "wb") as fh, get_context("spawn").Pool(
        cfg.workers, initializer=_init_worker, initargs=(str(tokenizer_path),)
    ) as pool:
        for arr in pool.imap(_encode_job, jobs, chunksize=16):
            fh.write(arr.tobytes())
            n += len(arr)
    tmp.replace(out_file)
    return n


def write_meta(data_dir: Path, meta: dict) -> None:
    (data_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def read_meta(data_dir: Path) -> dict:
    return json.loads((data_dir / META_FILE).read_text())


def load_tokens(data_dir: Path, split: str) -> np.memmap:
    return np.memmap(data_dir / f"{split}.bin", dtype=np.uint16, mode="r")


def get_batch(data: np.ndarray, batch_size: int, seq_len: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random windows of ``seq_len + 1`` tokens: inputs and next-token targets."""
    if len(data) <= seq_len + 1:
        raise ValueError(f"only {len(data)} tokens; need more than seq_len + 1 = {seq_len + 1}")
    starts = rng.integers(0, len(data) - seq_len - 1, size=batch_size)
    x = np.stack([data[s : s + seq_len] for s in starts]).astype(np.int64)
    y = np.stack([data[s + 1 : s + 1 + seq_len] for s in starts]).astype(np.int64)
    return x, y
