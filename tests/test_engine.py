import pytest

from model.engine import CompletionEngine, GenerationOptions, ModelLoadError
from model.export import parity
from model.prompt_format import completion_prompt


@pytest.fixture(scope="module")
def engine(tiny_model):
    return CompletionEngine(tiny_model, device="cpu")


def _prompt(engine, prefix="import os\n\n\ndef main():\n    ", suffix="\n"):
    return completion_prompt(engine.tokenizer, engine.special, "pkg/mod.py", prefix, suffix)


def test_single_line_stops_at_end_of_line(engine):
    c = engine.complete(_prompt(engine), GenerationOptions(max_tokens=64, single_line=True))
    assert "\n" not in c.text
    assert c.stop_reason in ("eol", "eot", "max_tokens")


def test_max_tokens_bounds_generation(engine):
    c = engine.complete(_prompt(engine), GenerationOptions(max_tokens=3, single_line=False))
    assert c.tokens <= 3


@pytest.mark.parametrize("options", [GenerationOptions(max_tokens=200, single_line=False),
                                     # beams decode in one uncancellable call: not for long budgets
                                     GenerationOptions(max_tokens=200, single_line=True, beam_size=2)])
def test_cancel_stops_within_one_token(engine, options):
    seen = []

    def cancelled():
        seen.append(1)
        return len(seen) > 2

    c = engine.complete(_prompt(engine), options, cancelled=cancelled)
    assert c.stop_reason == "cancelled"
    assert c.tokens <= 2


def test_static_prompt_reuse_gives_the_same_completion(engine):
    prefix = "import os\n\n\ndef main():\n    path = os."
    cut = range(len(prefix) - 4, len(prefix) + 1)
    reused = [engine.complete(_prompt(engine, prefix[:n]), GenerationOptions(max_tokens=16)).text for n in cut]
    fresh_options = GenerationOptions(max_tokens=16, reuse_static_prompt=False)
    fresh = [engine.complete(_prompt(engine, prefix[:n]), fresh_options).text for n in cut]
    assert reused == fresh


def test_custom_stop_rule_cuts_text(engine):
    c = engine.complete(_prompt(engine), GenerationOptions(max_tokens=32, single_line=False),
                        stop=lambda text: 0 if text else None)
    assert c.text == "" and c.stop_reason in ("stop_rule", "eot")


def test_missing_and_corrupt_models_raise_clear_errors(tmp_path, tiny_model):
    with pytest.raises(ModelLoadError, match="model.bin is missing"):
        CompletionEngine(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_model.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.bin").write_bytes((tiny_model / "model.bin").read_bytes()[:1000])
    with pytest.raises(ModelLoadError):
        CompletionEngine(broken)
    (broken / "model.bin").write_bytes((tiny_model / "model.bin").read_bytes())
    (broken / "tokenizer.json").write_text("{")
    with pytest.raises(ModelLoadError, match="tokenizer"):
        CompletionEngine(broken)


def test_export_parity(tiny_run, tmp_path):
    from model.export import export

    f32 = export(tiny_run / "checkpoint", tmp_path / "f32", quantization="float32")
    report = parity(tiny_run / "checkpoint", f32)
    assert report.token_agreement == 1.0 and report.exact == report.prompts
    report8 = parity(tiny_run / "checkpoint", tiny_run / "ct2-int8")
    assert report8.token_agreement >= 0.7


def test_static_prompt_cache_is_bounded_and_reloading_keeps_answers(tiny_model):
    engine = CompletionEngine(tiny_model, device="cpu", static_cache_entries=3)
    prompts = [_prompt(engine, f"import os\nx{i} = {i}\ny = os.") for i in range(8)]
    first = [engine.complete(p, GenerationOptions(max_tokens=8)).text for p in prompts]
    assert len(engine._static_seen) <= 3  # the model was reloaded, freeing CTranslate2's cached states
    again = [engine.complete(p, GenerationOptions(max_tokens=8)).text for p in prompts]
    assert again == first
