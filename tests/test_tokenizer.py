from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.prompt_format import completion_prompt, context_ids, plain_ids, split_prefix
from model.tokenizer import EOT, SPECIAL_TOKENS, decode, encode, load_tokenizer, special_ids, train_tokenizer

SAMPLE = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n\tdef __init__(self, x):\r\n\t\tself.x = x\r\n",
    "naïve = 'héllo wörld — ünïcödé ✓ 🎉'\n",
    "for i in range(10):\n    print(i)\n" * 20,
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(SAMPLE * 50, vocab_size=400, out_dir=out)
    return load_tokenizer(out)


@pytest.mark.parametrize("text", SAMPLE + ["", "\r\n\r\n", "\t\t  \n", "x\ry\rz", "\x00\x01 bytes", "😀" * 3])
def test_round_trip_exact(tok, text):
    assert decode(tok, encode(tok, text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_any_text(tok, text):
    assert decode(tok, encode(tok, text)) == text


def test_no_prefix_space_invented(tok):
    assert decode(tok, encode(tok, "x = 1")) == "x = 1"
    assert not decode(tok, encode(tok, "import os")).startswith(" ")


def test_special_token_strings_in_code_are_plain_text(tok):
    ids = encode(tok, f"s = '{EOT}'")
    assert special_ids(tok).eot not in ids
    assert decode(tok, ids) == f"s = '{EOT}'"


def test_special_tokens_exist(tok):
    sp = special_ids(tok)
    assert len({sp.eot, sp.fim_prefix, sp.fim_middle, sp.fim_suffix, sp.file_sep}) == len(SPECIAL_TOKENS)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab (:)\t\n\r=_é1 ")), max_size=80))
def test_split_at_line_break_tokenizes_like_the_whole(tok, text):
    # The static-prompt cache depends on this: the text before the cursor's line and the
    # line itself must tokenize exactly as the whole prefix does.
    before, line = split_prefix(text)
    assert before + line == text
    assert encode(tok, before) + encode(tok, line) == encode(tok, text)


def test_static_prompt_is_stable_while_typing_on_a_line(tok):
    sp = special_ids(tok)
    prefix = "import os\n\ndef main():\n    pa"
    a = completion_prompt(tok, sp, "a.py", prefix, "\n")
    b = completion_prompt(tok, sp, "a.py", prefix + "th = os.", "\n")
    assert a.static == b.static
    assert a.dynamic != b.dynamic
    assert decode(tok, b.ids).endswith("th = os.<|fim_middle|>")


def test_corrupt_tokenizer_file_is_a_clear_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt tokenizer"):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_tokenizer(Path(tmp_path / "missing"))


def test_long_prefixes_keep_the_last_tokens_of_the_whole_file(tok):
    sp = special_ids(tok)
    body = "".join(f"def f{i}(a, b):\n    return a * {i} + b\n\n" for i in range(400))
    prefix, suffix = body + "x = f1(", ")\n" + body
    p = completion_prompt(tok, sp, "a.py", prefix, suffix, max_prefix_tokens=100, max_suffix_tokens=50)
    before, line = split_prefix(prefix)
    whole_before, whole_line = encode(tok, before), encode(tok, line)
    assert p.dynamic == whole_line + [sp.fim_middle]
    assert p.static[-(100 - len(whole_line)):] == whole_before[-(100 - len(whole_line)):]
    i = p.static.index(sp.fim_suffix)
    assert p.static[i + 1:i + 51] == encode(tok, suffix)[:50]


def test_retrieved_snippets_come_before_the_file_as_the_documents_training_packed_there(tok):
    """Each snippet is laid out as a training document of another file (what the model saw
    ahead of a file in its windows), the best one last, nearest the cursor; a snippet that
    does not fit whole is cut to its first lines, one that cannot keep two is left out."""
    sp = special_ids(tok)
    best, other = ("pkg/util.py", "def add(a, b):\n    return a + b\n"), ("pkg/more.py", "x = 1\ny = 2\nz = 3\n")
    whole = context_ids(tok, sp, [best, other], budget=1000)
    assert whole == plain_ids(tok, sp, *other) + plain_ids(tok, sp, *best)
    room = len(plain_ids(tok, sp, *best)) + len(plain_ids(tok, sp, "pkg/more.py", "x = 1\ny = 2\n"))
    assert context_ids(tok, sp, [best, other], budget=room) == \
        plain_ids(tok, sp, "pkg/more.py", "x = 1\ny = 2\n") + plain_ids(tok, sp, *best)
    assert context_ids(tok, sp, [best, other], budget=len(plain_ids(tok, sp, *best)) + 3) == plain_ids(tok, sp, *best)
    prompt = completion_prompt(tok, sp, "pkg/main.py", "import os\nx = ad", "\n", context=whole)
    assert prompt.static[:len(whole)] == whole
    assert prompt.static[len(whole):][:len(plain_ids(tok, sp, "pkg/main.py", "")) - 1] == \
        plain_ids(tok, sp, "pkg/main.py", "")[:-1]  # then the edited file's own header
