"""`medeir bench`: parsing and printing only; the measurements are in medeir.bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

SHAPE_HELP = "BATCHxLENGTH, repeatable"


def parse_shape(text: str) -> tuple[int, int]:
    """``"16x128"`` -> ``(16, 128)``."""
    try:
        batch_size, length = (int(part) for part in text.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"shape must look like 16x128 (batch x length), got {text!r}") from err
    if batch_size < 1 or length < 1:
        raise ValueError(f"shape needs a positive batch size and length, got {text!r}")
    return batch_size, length


def bench_command(
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1, or auto (CUDA if present).")] = "cpu",
    dtype: Annotated[
        str | None, typer.Option(help="float32, bfloat16, float16. Default: fp32 on CPU, bf16 on GPU.")
    ] = None,
    attn: Annotated[
        str | None,
        typer.Option(help="MedEIR attention backend. Default: sdpa on CPU; flash_attention_2 if installed, else "
                          "flex_attention (compiled) on CUDA."),
    ] = None,
    bert_shape: Annotated[
        list[str] | None, typer.Option(help=f"vs BertModel-SDPA ({SHAPE_HELP}; 'none' skips). Default: 16x128, 8x512.")
    ] = None,
    dense_shape: Annotated[
        list[str] | None,
        typer.Option(help=f"vs the dense ALiBi bias ({SHAPE_HELP}; 'none' skips). Default: 1x2048, 1x8192."),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed passes per model in the BERT comparison.")] = 5,
    long_repeats: Annotated[int, typer.Option(min=1, help="Timed passes per case in the dense-bias comparison.")] = 1,
    memory: Annotated[bool, typer.Option(help="Also measure peak memory in the BERT comparison.")] = True,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch CPU threads (all cases). Default: torch's own choice.")
    ] = None,
    peak_tflops: Annotated[float | None, typer.Option(help="Report achieved TFLOP/s against this peak (GPU).")] = None,
    output: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
) -> None:
    """Tokens/s and peak memory: MedEIR vs a same-size BertModel (SDPA), and vs the dense ALiBi bias at long inputs."""
    from medeir.backend_check import default_backend
    from medeir.bench import BF16_PEAK_TFLOPS, markdown, run_benchmarks, target_checks
    from medeir.loading import resolve_device, resolve_dtype

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    resolved = resolve_device(device)
    cuda = resolved.type == "cuda"
    torch_dtype = resolve_dtype(dtype or ("bfloat16" if cuda else "float32"))
    attn = attn or default_backend(resolved)

    def shapes(values: list[str] | None) -> list[tuple[int, int]] | None:
        if values is None:
            return None
        return [] if values == ["none"] else [parse_shape(value) for value in values]

    results = run_benchmarks(
        device=str(resolved),
        dtype=torch_dtype,
        bert_shapes=shapes(bert_shape),
        dense_shapes=shapes(dense_shape),
        repeats=repeats,
        long_repeats=long_repeats,
        attn_implementation=attn,
        memory=memory,
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n")
    typer.echo(markdown(results, peak_tflops=peak_tflops or (BF16_PEAK_TFLOPS if cuda else None)))
    for line in target_checks(results):
        typer.echo(line)
