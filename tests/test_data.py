import random

import numpy as np
import pytest

from model.tokenizer import decode, load_tokenizer, special_ids, train_tokenizer
from training.data import DataConfig, document_ids, fim_split, get_batch, split_pieces

TEXT = "import os\n\n\ndef main(argv):\n    for a in argv:\n        print(a)\n    return 0\n" * 5


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer([TEXT] * 20, vocab_size=300, out_dir=out)
    return load_tokenizer(out)


def test_fim_split_reassembles():
    rng = random.Random(0)
    for _ in range(500):
        p, m, s = fim_split(TEXT, rng)
        assert p + m + s == TEXT


def test_fim_split_often_ends_at_a_line_end():
    rng = random.Random(1)
    ends = [fim_split(TEXT, rng) for _ in range(400)]
    at_eol = sum(1 for p, m, s in ends if s.startswith("\n") or s == "")
    assert at_eol > 200  # single-line and block examples end where a line ends


def test_pieces_keep_every_character():
    pieces = split_pieces(TEXT, 50)
    assert "".join(pieces) == TEXT
    assert all(len(p) < 50 + 40 for p in pieces)


def test_fim_document_layout_is_suffix_prefix_middle(tok):
    sp = special_ids(tok)
    ids = document_ids(tok, "pkg/a.py", TEXT, DataConfig(fim_rate=1.0, piece_chars=10_000), random.Random(3))
    assert ids[0] == sp.file_sep and ids[-1] == sp.eot
    i_suf, i_pre, i_mid = ids.index(sp.fim_suffix), ids.index(sp.fim_prefix), ids.index(sp.fim_middle)
    assert i_suf < i_pre < i_mid
    suffix = decode(tok, ids[i_suf + 1:i_pre])
    prefix = decode(tok, ids[i_pre + 1:i_mid])
    middle = decode(tok, ids[i_mid + 1:-1])
    assert prefix + middle + suffix == TEXT
    assert decode(tok, ids[1:i_suf]) == "pkg/a.py\n"


def test_fim_prefixes_end_where_the_texts_own_tokens_end(tok):
    """The server heals a cursor inside a token, so its prompts end between two of the
    text's tokens: training's prefixes end there too, and their tokens are the text's own."""
    sp = special_ids(tok)
    whole = tok.encode(TEXT).ids
    char_cut = token_cut = 0
    for seed in range(60):
        for rate in (0.0, 1.0):
            ids = document_ids(tok, "a.py", TEXT, DataConfig(fim_rate=1.0, piece_chars=10_000, token_cut_rate=rate),
                               random.Random(seed))
            prefix = ids[ids.index(sp.fim_prefix) + 1:ids.index(sp.fim_middle)]
            at_token = whole[:len(prefix)] == prefix and decode(tok, whole[len(prefix):]).startswith(
                decode(tok, ids[ids.index(sp.fim_middle) + 1:-1]))
            if rate:
                assert at_token, decode(tok, prefix)
                token_cut += 1
            else:
                char_cut += not at_token
    assert token_cut == 60 and char_cut > 10  # at any character, many cuts split a token


def test_plain_documents_without_fim(tok):
    sp = special_ids(tok)
    ids = document_ids(tok, "a.py", TEXT, DataConfig(fim_rate=0.0, piece_chars=10_000), random.Random(0))
    assert sp.fim_middle not in ids
    assert decode(tok, ids[1:-1]) == "a.py\n" + TEXT


def test_batches_are_shifted_windows():
    data = np.arange(1000, dtype=np.uint16)
    x, y = get_batch(data, 4, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 16)
    assert (y == x + 1).all()
    with pytest.raises(ValueError):
        get_batch(data[:10], 1, 16, np.random.default_rng(0))
