"""MedEIR vs a same-size transformers BertModel (SDPA) and vs the dense ALiBi bias: tokens/s and peak memory.

The same as `medeir bench`, run from a checkout (measures the checkout's modeling_medeir.py); see medeir/bench.py.

Usage (the CPU figures in docs/BENCHMARKS.md):
    nice -n 10 python benchmarks/throughput.py --repeats 3 --output runs/bench/cpu.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import typer  # noqa: E402

from medeir.cli_bench import bench_command  # noqa: E402

if __name__ == "__main__":
    typer.run(bench_command)
