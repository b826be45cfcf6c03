"""Byte-level BPE tokenizer for code, with fill-in-the-middle and file-separator tokens.

Two choices matter for serving:

* Byte-level with the full 256-byte alphabet and ``add_prefix_space=False``: any text
  (non-ASCII, tabs, CRLF) round-trips exactly and nothing is invented at the start.
* Line breaks (with the indentation after them) are isolated before BPE runs, so no token
  ever spans the end of a line.  Tokenizing "everything up to the end of the previous line"
  and "the rest" separately therefore gives exactly the tokens of the whole text, which is
  what lets the engine hand CTranslate2 a stable ``static_prompt`` while the user types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

EOT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
FILE_SEP = "<|file_sep|>"
SPECIAL_TOKENS = [EOT, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FILE_SEP]

TOKENIZER_FILE = "tokenizer.json"
# A line break plus the indentation that follows it; isolated so BPE never crosses lines.
_LINE_BREAK = Regex(r"\r?\n[ \t]*|\r")


@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens, looked up once."""

    eot: int
    fim_prefix: int
    fim_middle: int
    fim_suffix: int
    file_sep: int


def _new_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(_LINE_BREAK, behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: Path | None = None) -> Tokenizer:
    """Train a BPE tokenizer on ``texts``; save it as ``out_dir/tokenizer.json`` if given."""
    if vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size must exceed the byte alphabet and special tokens, got {vocab_size}")
    if vocab_size > 65535:
        raise ValueError("vocab_size must fit in uint16 shards (<= 65535)")
    tok = _new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.encode_special_tokens = True
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tok.save(str(out_dir / TOKENIZER_FILE))
    return tok


def load_tokenizer(path: Path) -> Tokenizer:
    """Load ``tokenizer.json`` (a file, or a directory that holds one)."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer at {path}")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise ValueError(f"corrupt tokenizer file {path}: {exc}") from exc
    # Code that mentions "<|endoftext|>" is text; special tokens enter prompts only as ids.
    tok.encode_special_tokens = True
    return tok


def special_ids(tok: Tokenizer) -> SpecialIds:
    ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
    if any(i is None for i in ids):
        raise ValueError("tokenizer lacks ghostline's special tokens")
    return SpecialIds(*ids)  # type: ignore[arg-type]


def encode(tok: Tokenizer, text: str) -> list[int]:
    """Ids of ``text``; special-token strings inside it stay plain text (see load)."""
    return tok.encode(text, add_special_tokens=False).ids if text else []


def decode(tok: Tokenizer, ids: Iterable[int]) -> str:
    return tok.decode(list(ids), skip_special_tokens=False)

