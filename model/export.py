"""Export a training checkpoint to CTranslate2, and check that the export still agrees.

int8 is the default: about 4x smaller than float32 and the fastest on a laptop CPU.  The
parity check runs greedy continuations of the same prompts through the torch model and the
exported one and reports how many generated tokens agree (int8 rounding may flip a close
call late in a continuation; float32 should agree exactly).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from model.config import MODEL_CONFIG_FILE, ModelConfig
from model.prompt_format import completion_prompt
from model.tokenizer import EOT, FILE_SEP, TOKENIZER_FILE, load_tokenizer, special_ids

# A training run's folder (``training/train.py``): its float checkpoint and its optimizer state.
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "train_state.pt"

PARITY_PROMPTS = [
    ("example.py", "import os\nimport sys\n\n\ndef main(argv):\n    ", "\n"),
    ("utils.py", "def read_lines(path):\n    with open(path) as fh:\n        return ", "\n"),
    ("model.py", "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ", "\n"),
    ("loop.py", "total = 0\nfor i in range(10):\n    total += ", "\nprint(total)\n"),
    ("cli.py", "import argparse\n\nparser = argparse.ArgumentParser()\nparser.add_argument(", ")\n"),
    ("errors.py", "try:\n    value = int(text)\nexcept ValueError:\n    ", "\n"),
    ("data.py", "values = [x * 2 for x in ", "]\n"),
    ("strings.py", "name = 'ghostline'\nprint(f'hello {", "}')\n"),
]


@dataclass
class ParityReport:
    compute_type: str
    token_agreement: float  # common-prefix tokens / generated tokens, over all prompts
    exact: int  # prompts whose whole continuation matched
    prompts: int

    def line(self) -> str:
        return (f"parity {self.compute_type}: token agreement {100 * self.token_agreement:.1f}%, "
                f"{self.exact}/{self.prompts} continuations identical")


def _converter(checkpoint: Path):
    from ctranslate2.converters import TransformersConverter
    from transformers import PreTrainedTokenizerFast

    class GhostlineConverter(TransformersConverter):
        """Loads our own tokenizer.json instead of asking transformers to find one."""

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return PreTrainedTokenizerFast(
                tokenizer_object=load_tokenizer(checkpoint), bos_token=FILE_SEP, eos_token=EOT, unk_token=EOT
            )

    return GhostlineConverter(str(checkpoint), copy_files=[TOKENIZER_FILE, MODEL_CONFIG_FILE])


def export(checkpoint: Path, out_dir: Path, quantization: str = "int8", force: bool = True,
           second_opinion_sure: float | None = None) -> Path:
    """Convert ``checkpoint`` (a transformers folder with tokenizer.json) into ``out_dir``.

    ``second_opinion_sure`` (fitted on evaluation dumps after training, by
    ``training/fit_ranker.py --second-opinion``) replaces the checkpoint's in the exported
    ``ghostline_model.json``: it belongs to the released model, not to the run.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if not (checkpoint / "config.json").is_file():
        raise FileNotFoundError(f"{checkpoint} is not a checkpoint folder (no config.json)")
    # The swap below deletes out_dir: never a checkpoint, or a run folder (hours of training).
    src, dst = checkpoint.resolve(), out_dir.resolve()
    if dst == src or dst in src.parents:
        raise ValueError(f"exporting into {out_dir} would delete {checkpoint}, which it exports: choose another folder")
    if (out_dir / STATE_FILE).exists() or (out_dir / CHECKPOINT_DIR).is_dir():
        raise ValueError(f"{out_dir} holds a training run, which exporting into it would delete: choose another folder")
    # Write beside the target and swap in, so a server reading out_dir never sees half a model.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        _converter(checkpoint).convert(str(tmp), quantization=quantization, force=True)
        write_float_weights(checkpoint, tmp)
        if second_opinion_sure is not None:
            config = ModelConfig.load(tmp)
            replace(config, second_opinion_sure=second_opinion_sure).save(tmp)
        info = checkpoint / "training_info.json"
        if info.is_file():
            data = json.loads(info.read_text())
            data["quantization"] = quantization
            (tmp / "training_info.json").write_text(json.dumps(data, indent=2) + "\n")
        if out_dir.exists():
            if not force:
                raise FileExistsError(f"{out_dir} exists")
            shutil.rmtree(out_dir)
        tmp.replace(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


FLOAT_WEIGHTS_FILE = "model.safetensors"


def write_float_weights(checkpoint: Path, out_dir: Path) -> None:
    """Ship the weights in bfloat16 beside the CTranslate2 model (no optimizer state):
    adaptation and resumed training start from them, not from the int8 rounding."""
    import torch
    from safetensors.torch import load_file, save_file

    src = checkpoint / FLOAT_WEIGHTS_FILE
    if not src.is_file():
        return
    state = {k: t.to(torch.bfloat16).contiguous() for k, t in load_file(src).items() if k != "lm_head.weight"}
    save_file(state, str(out_dir / FLOAT_WEIGHTS_FILE))


def _greedy_torch(model, prompt_ids: list[int], max_new: int, eot: int) -> list[int]:
    import torch

    ids = list(prompt_ids)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            nxt = int(torch.argmax(logits))
            if nxt == eot:
                break
            out.append(nxt)
            ids.append(nxt)
    return out


def parity(checkpoint: Path, exported: Path, compute_type: str = "default", max_new: int = 24) -> ParityReport:
    """Compare greedy continuations of the torch checkpoint and the CTranslate2 export."""
    import ctranslate2
    import torch
    from transformers import LlamaForCausalLM

    tok = load_tokenizer(checkpoint)
    sp = special_ids(tok)
    model = LlamaForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    gen = ctranslate2.Generator(str(exported), device="cpu", compute_type=compute_type)
    agree = total = exact = 0
    for path, prefix, suffix in PARITY_PROMPTS:
        prompt = completion_prompt(tok, sp, path, prefix, suffix).ids
        ref = _greedy_torch(model, prompt, max_new, sp.eot)
        res = gen.generate_batch(
            [[tok.id_to_token(i) for i in prompt]], max_length=max_new, sampling_topk=1,
            include_prompt_in_result=False, end_token=[sp.eot],
        )[0]
        got = res.sequences_ids[0]
        n = max(len(ref), len(got), 1)
        same = 0  # tokens after a divergence follow different histories: count the common prefix
        while same < min(len(ref), len(got)) and ref[same] == got[same]:
            same += 1
        agree += same
        total += n
        exact += ref == got
    return ParityReport(compute_type=gen.compute_type, token_agreement=agree / total, exact=exact,
                        prompts=len(PARITY_PROMPTS))
