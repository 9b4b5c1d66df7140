"""Peak CPU memory of one long forward pass: MedEIR's blocked SDPA path against a dense ALiBi bias.

Each case runs in a fresh Python process, which builds a random encoder with the medeir-small dimensions (6 layers,
384 hidden, 12 heads, 1536 intermediate, 32,000 vocab, fp32) and runs one warm-up pass on 128 tokens. It then resets
the process's peak resident set size to the current one (writing 5 to /proc/self/clear_refs, Linux) and runs one
forward pass over one sequence of L tokens under ``torch.inference_mode``. It reads the new peak (VmHWM). The
"forward peak" it reports is that peak minus the resident size just before the pass: the extra memory the pass needed
(activations, attention masks, allocator slack), measured by the kernel, torch allocations included.

Every case runs twice: with glibc's default malloc settings, and with MALLOC_MMAP_THRESHOLD_=1 MiB, which hands every
allocation of 1 MiB or more straight back to the OS when freed. glibc's default (a threshold that adapts, up to
32 MiB) can keep freed mid-sized blocks in its heaps, so the first column includes such slack and varies between
runs; the second is close to what the live tensors need.

Cases:
  blocked  attn_implementation="sdpa" as shipped, default attention_block_bytes (64 MiB): on CPU the ALiBi mask is a
           strided view of one row of biases per head (no L x L tensor); elsewhere it is built per block of queries.
  dense    medeir.bench's dense-bias baseline: the whole [1, heads, L, L] bias built at once and handed to SDPA, what an
           implementation that materialises the ALiBi bias does.
  eager    the reference path (dense fp32 scores + bias + softmax), only up to --eager-max tokens.

Usage: nice -n 10 python benchmarks/long_context_memory.py [--lengths 2048 8192] [--write-docs docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Long-context memory (CPU)"
CASES = {"blocked": "sdpa", "dense": "dense_bias_sdpa", "eager": "eager"}  # case -> attention implementation
ALLOCATORS = {"default": {}, "mmap_1mib": {"MALLOC_MMAP_THRESHOLD_": str(2**20)}}


def measure(case: str, length: int) -> dict:
    """Run one case in this process; returns MiB figures and the pass's wall time."""
    sys.path.insert(0, str(REPO_ROOT))  # measure the checkout's model code
    import torch

    from configuration_medeir import MedEIRConfig
    from medeir.bench import MEDEIR_SMALL, register_dense_bias_backend, status_kib
    from modeling_medeir import MedEIRModel

    register_dense_bias_backend()
    config = MedEIRConfig(**MEDEIR_SMALL)
    torch.manual_seed(0)
    model = MedEIRModel(config).eval()
    model.config._attn_implementation = CASES[case]
    ids = torch.randint(5, config.vocab_size, (1, length))
    with torch.inference_mode():
        model(ids[:, :128])
        before = status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        start = time.perf_counter()
        out = model(ids)
        seconds = time.perf_counter() - start
        peak = status_kib("VmHWM")
        assert torch.isfinite(out.last_hidden_state).all()
    return {
        "case": case,
        "length": length,
        "rss_before_mib": before / 1024,
        "peak_mib": peak / 1024,
        "forward_peak_mib": (peak - before) / 1024,
        "seconds": seconds,
    }


def run_case(case: str, length: int, allocator: str) -> dict:
    """One case in a fresh interpreter, so earlier cases' memory cannot hide or inflate its peak."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", case, str(length)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **ALLOCATORS[allocator]},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{case} at {length} tokens ({allocator} malloc) failed:\n{result.stderr[-2000:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "allocator": allocator}


def machine() -> str:
    import torch

    from medeir.machine import cpu_name

    cores = len(os.sched_getaffinity(0))
    return (
        f"{cores}-core CPU dev box ({cpu_name()}), {platform.system()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def markdown(rows: list[dict], host: str, command: str) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {host}. Command: `{command}`.",
        "",
        "One forward pass of a random encoder with the medeir-small dimensions (6 layers, 384 hidden, 12 heads, "
        "1536 intermediate, 32k vocab, fp32) over one sequence, batch 1, `torch.inference_mode`. Each case runs in a "
        "fresh process; *forward peak* is the process's peak resident set size during the pass (VmHWM, reset "
        "just before it via /proc/self/clear_refs) minus its resident size before the pass, in MiB. *blocked* = the "
        "SDPA path as shipped (on CPU the ALiBi mask is a strided view of one row of biases per head); *dense* = "
        "SDPA with the whole `[1, 12, L, L]` bias built at once (medeir.bench's baseline); *eager* = the reference "
        "path (dense fp32 "
        "scores; run only up to `--eager-max` tokens, 2,048 by default). *glibc default*: the process as users "
        "run it; glibc may keep freed "
        "mid-sized blocks in its heaps, so this column includes allocator slack and varies between runs. "
        "*mmap >= 1 MiB*: the same pass with `MALLOC_MMAP_THRESHOLD_=1048576`, so freed blocks of 1 MiB or more go "
        "back to the OS at once: close to what the live tensors need. With several runs per case, cells give the "
        "lowest and highest value. Times (glibc default runs) are from a shared, loaded machine: indicative only.",
        "",
        "| tokens | case | forward peak, glibc default | forward peak, mmap >= 1 MiB | time (s) |",
        "|---:|---|---:|---:|---:|",
    ]
    runs: dict[tuple, list[dict]] = {}
    for row in rows:
        runs.setdefault((row["length"], row["case"], row["allocator"]), []).append(row)

    def cell(key: tuple, field: str, digits: int) -> str:
        values = sorted(row[field] for row in runs[key])
        low, high = f"{values[0]:,.{digits}f}", f"{values[-1]:,.{digits}f}"
        return low if low == high else f"{low}–{high}"

    for length, case in dict.fromkeys((row["length"], row["case"]) for row in rows):
        default, mmap = (length, case, "default"), (length, case, "mmap_1mib")
        lines.append(
            f"| {length:,} | {case} | {cell(default, 'forward_peak_mib', 0)} | {cell(mmap, 'forward_peak_mib', 0)} "
            f"| {cell(default, 'seconds', 1)} |"
        )
    lines.append("")
    for length in dict.fromkeys(row["length"] for row in rows):
        ratios = []
        for allocator, label in (("default", "glibc default"), ("mmap_1mib", "mmap >= 1 MiB")):
            dense, blocked = (
                max(r["forward_peak_mib"] for r in runs[length, c, allocator]) for c in ("dense", "blocked")
            )
            ratios.append(f"{dense / blocked:.1f}x ({label})")
        lines.append(
            f"- {length:,} tokens: dense-bias / blocked forward peak (highest run of each) = {', '.join(ratios)}"
        )
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (up to the next ``## `` heading), or append it."""
    text = path.read_text() if path.exists() else "# MedEIR benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--eager-max", type=int, default=2048, help="longest input for the eager case (dense fp32)")
    parser.add_argument("--write-docs", type=Path, help="replace this benchmark's section of this markdown file")
    parser.add_argument("--repeats", type=int, default=1, help="fresh-process runs per case and allocator setting")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    rows = []
    for length in args.lengths:
        for case in CASES:
            if case == "eager" and length > args.eager_max:
                continue
            for allocator in ALLOCATORS:
                for _ in range(args.repeats):
                    row = run_case(case, length, allocator)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    command = "nice -n 10 python benchmarks/long_context_memory.py " + " ".join(sys.argv[1:])
    section = markdown(rows, machine(), command.strip())
    print(section)
    if args.write_docs:
        write_section(args.write_docs, section)


if __name__ == "__main__":
    main()
