"""Training throughput of the presets' model shapes on this machine (forward + backward +
AdamW step on random tokens, after two warm-up steps).

    .venv/bin/python benchmarks/bench_train_speed.py [--steps 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.train import PRESETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    from transformers import LlamaForCausalLM

    for name, cfg in PRESETS.items():
        m = cfg.model
        model = LlamaForCausalLM(m.to_hf())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, m.vocab_size, (cfg.batch_size, m.max_seq_len))
        for i in range(args.steps + 2):
            if i == 2:
                t0 = time.perf_counter()
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), x.view(-1))
            loss.backward()
            opt.step()
            opt.zero_grad()
        dt = (time.perf_counter() - t0) / args.steps
        tps = cfg.batch_size * m.max_seq_len / dt
        print(f"{name}: {m.n_params() / 1e6:.2f} M params, {tps:,.0f} tokens/s, "
              f"{m.flops_per_token() * tps / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
