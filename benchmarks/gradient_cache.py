"""What `contrastive.chunk_size` (the gradient cache) costs and saves in one training step of medeir-small's shape.

For each batch size, a random encoder with the medeir-small dimensions (fp32, CPU) runs one contrastive step (loss +
backward; InfoNCE only, no teacher) on the same real pairs from configs/small.yaml's mixture, once in one pass and
once in chunks. It reports the seconds per step (median of ``--repeats``, the two cases interleaved) and the bytes the
autograd graph keeps between the forward and the backward pass (summed by a saved-tensors hook), with the
chunked/one-pass ratios. With chunks, the backward pass rebuilds one chunk's activations at a time on top of that;
the hook does not see those.

Usage: python benchmarks/gradient_cache.py [--batch-sizes 32 128] [--chunk-size 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from medeir.bench import MEDEIR_SMALL, saved_for_backward  # noqa: E402
from medeir.loading import load_tokenizer  # noqa: E402
from medeir.machine import cpu_name  # noqa: E402
from medeir.train.runner import build_model  # noqa: E402
from medeir.train.settings import load_settings  # noqa: E402
from medeir.train.tasks import ContrastiveTask  # noqa: E402


def step(task: ContrastiveTask, model) -> tuple[float, int]:
    """Seconds for one loss + backward, and the bytes saved for backward."""
    start = time.perf_counter()
    with saved_for_backward() as saved:
        loss = task.loss(model, 0)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start, sum(saved)


def measure(batch_size: int, chunk_size: int, repeats: int) -> dict[str, dict[str, float]]:
    tokenizer = load_tokenizer(REPO_ROOT)
    tasks, models = {}, {}
    for name, chunk in (("one pass", 0), (f"chunks of {chunk_size}", chunk_size)):
        settings = load_settings(
            REPO_ROOT / "configs" / "small.yaml",
            [
                "model.init=scratch",
                f"model.config={ {k: v for k, v in MEDEIR_SMALL.items() if k != 'vocab_size'} }",
                "contrastive.distill_weight=0",
                "contrastive.similarity_distill_weight=0",
                f"contrastive.batch_size={batch_size}",
                f"contrastive.chunk_size={chunk}",
            ],
        )
        torch.manual_seed(0)
        models[name] = build_model(settings, ContrastiveTask.model_class, tokenizer).train()
        tasks[name] = ContrastiveTask(settings, tokenizer, torch.device("cpu"))
    results = {name: {"seconds": [], "saved_bytes": 0} for name in tasks}
    for round_ in range(repeats + 1):  # round 0 warms up
        for name in tasks if round_ % 2 == 0 else reversed(tasks):
            seconds, saved = step(tasks[name], models[name])
            if round_:
                results[name]["seconds"].append(seconds)
                results[name]["saved_bytes"] = saved
    return {name: {"seconds": statistics.median(r["seconds"]), "saved_mib": r["saved_bytes"] / 2**20}
            for name, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| pairs per step | mode | seconds per step | kept for backward (MiB) | vs one pass (time / memory) |")
    print("|---:|---|---:|---:|---|")
    for batch_size in args.batch_sizes:
        rows = measure(batch_size, args.chunk_size, args.repeats)
        base = rows["one pass"]
        for name, row in rows.items():
            ratio = f"{row['seconds'] / base['seconds']:.2f}× / {row['saved_mib'] / base['saved_mib']:.2g}×"
            print(f"| {batch_size} | {name} | {row['seconds']:.2f} | {row['saved_mib']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
