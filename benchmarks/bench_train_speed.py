"""Training throughput of the presets' model shapes on this machine (forward + backward +
AdamW step on random tokens, after two warm-up steps).

    .venv/bin/python benchmarks/bench_train_speed.py [--steps 4] [--preset small-1k --layers 6] [--compile]

``--compile`` measures each shape twice in the same run, eager and with the step compiled
as ``ghostline train --compile`` compiles it (model and loss; the compile time is left out).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.train import PRESETS, token_loss  # noqa: E402


def step_speed(cfg, steps: int, compiled: bool) -> float:
    """Tokens per second of training steps of ``cfg``'s model shape."""
    from transformers import LlamaForCausalLM

    m = cfg.model
    model = LlamaForCausalLM(m.to_hf())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, m.vocab_size, (cfg.batch_size, m.max_seq_len))

    def step_loss(x: torch.Tensor) -> torch.Tensor:
        return token_loss(model(input_ids=x).logits, x)

    fn = torch.compile(step_loss) if compiled else step_loss
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        fn(x).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return cfg.batch_size * m.max_seq_len * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--preset", choices=list(PRESETS), help="only this preset (default: all)")
    parser.add_argument("--layers", type=int, help="with --preset: this many layers (the shipped model has 6)")
    parser.add_argument("--compile", action="store_true", help="also measure the compiled step")
    args = parser.parse_args()
    for name, cfg in PRESETS.items():
        if args.preset and name != args.preset:
            continue
        if args.layers:
            cfg = replace(cfg, model=replace(cfg.model, n_layer=args.layers))
        m = cfg.model
        for compiled in (False, True) if args.compile else (False,):
            tps = step_speed(cfg, args.steps, compiled)
            print(f"{name}{' compiled' if compiled else ''}: {m.n_layer} layers, {m.n_params() / 1e6:.2f} M params, "
                  f"{tps:,.0f} tokens/s, {m.flops_per_token() * tps / 1e9:.0f} GFLOP/s "
                  f"({torch.get_num_threads()} threads)")

if __name__ == "__main__":
    main()
