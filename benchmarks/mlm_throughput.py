"""MLM training throughput of the model alone: forward + backward + AdamW step on random packed rows, no data pipeline.

What the GPU-hour estimate of configs/base-6b-mlm.yaml needs: tokens per second of training for the paper-scale
encoder (12 x 768) and for medeir-small (6 x 384), at the curriculum's lengths, bf16 autocast on CUDA (fp32 on CPU).

Usage:
    python3 benchmarks/mlm_throughput.py                 # CUDA: both sizes at 128 / 512 / 2,048 tokens
    python benchmarks/mlm_throughput.py --cpu-smoke      # tiny sizes on CPU: control flow only
The rows go to $OUT/mlm_throughput.json when $OUT is set (or --output); a table is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's medeir and modeling_medeir

import torch  # noqa: E402

from medeir import bench  # noqa: E402

SIZES = {
    "small (6 x 384)": bench.MEDEIR_SMALL,
    "base (12 x 768)": {**bench.MEDEIR_SMALL, "hidden_size": 768, "num_hidden_layers": 12, "intermediate_size": 3072},
}
PAPER_TOKENS = 6.0e9


def step_seconds(dims: dict, length: int, tokens: int, device: str, repeats: int) -> float:
    """Median seconds of one MLM training step on ``tokens // length`` random rows of ``length`` tokens."""
    from configuration_medeir import MedEIRConfig
    from modeling_medeir import MedEIRForMaskedLM

    torch.manual_seed(0)
    model = MedEIRForMaskedLM(MedEIRConfig(**dims)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rows = max(1, tokens // length)
    ids = torch.randint(bench.FIRST_TOKEN_ID, dims["vocab_size"], (rows, length), device=device)
    labels = torch.where(torch.rand(ids.shape, device=device) < 0.3, ids, torch.full_like(ids, -100))
    cuda = device == "cuda"

    def step() -> None:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return bench.median_ms(step, repeats, device, warmup=2) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU: control flow only")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or pass --cpu-smoke")
    device = "cpu" if args.cpu_smoke else "cuda"
    sizes = {"tiny": bench.SMOKE_DIMS} if args.cpu_smoke else SIZES
    lengths, tokens = ((32, 64), 256) if args.cpu_smoke else ((128, 512, 2048), 65536)
    rows = []
    for name, dims in sizes.items():
        for length in lengths:
            seconds = step_seconds(dims, length, tokens, device, 2 if args.cpu_smoke else args.repeats)
            rows.append(
                {
                    "model": name,
                    "length": length,
                    "tokens_per_step": tokens,
                    "step_seconds": seconds,
                    "tokens_per_s": tokens / seconds,
                }
            )
    output = args.output or (Path(os.environ["OUT"]) / "mlm_throughput.json" if os.environ.get("OUT") else None)
    machine = bench.machine(device)
    if output:
        output.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"\n{machine.get('gpu') or machine['cpu']} | torch {machine['torch']} | MLM step, {tokens:,} tokens")
    for row in rows:
        hours = PAPER_TOKENS / row["tokens_per_s"] / 3600
        print(
            f"{row['model']:<16} L={row['length']:<5} {row['tokens_per_s']:>12,.0f} tokens/s"
            f"  6e9 tokens: {hours:,.1f} GPU-hours at this length"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
