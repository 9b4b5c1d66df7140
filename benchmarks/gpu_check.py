"""GPU check of MedEIR's fast attention paths: numerics, then speed and memory (prepared for a CUDA session).

Sections (each runs even if an earlier one failed; failures are recorded):
  numerics    bf16 on CUDA: every fast backend (sdpa, flex_attention compiled, flash_attention_2 if flash-attn is
              installed) against an fp32 reference, whole model and attention op alone, symmetric and asymmetric
              ALiBi; pass = error <= 2x the error of the low-precision baseline (see medeir/backend_check.py).
  attention   the attention op alone, 12 heads x 64, batch x length = 32k tokens, at 2,048 and 8,192 tokens: SDPA with a
              dense [b, h, L, L] bf16 ALiBi bias, FlexAttention + ALiBi score_mod (compiled), MedEIR's own flex path
              (packed tokens, document block mask), MedEIR's SDPA path, flash-attn varlen with alibi_slopes (if
              installed), and plain SDPA without any bias (the floor). Median time and peak memory.
  flex        FlexAttention's own tuning knobs on the same op (2,048 / 8,192 tokens): score_mod forms, kernel options
              (tile sizes, PRESCALE_QK, USE_TMA) and max-autotune compilation; a failing variant is recorded, not fatal.
  model       whole medeir-small encode at 8,192 tokens (4 x 8,192) vs the dense-bias model (medeir.bench).
  throughput  medeir-small encode at 512 tokens (64 x 512, uniform and mixed) vs BertModel-SDPA: tokens/s and
              achieved TFLOP/s against the ~790 TFLOP/s bf16 peak.
A short table is printed last; the results go to $OUT/gpu_check.json when $OUT is set (or --output).

Usage:
  python3 benchmarks/gpu_check.py                  # on a CUDA machine, bf16
  python benchmarks/gpu_check.py --cpu-smoke       # tiny sizes on CPU, fp32: checks the control flow only
Exit status 1 if a numerics check failed or a section raised; the speed targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's medeir and modeling_medeir

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from medeir import bench  # noqa: E402
from medeir.backend_check import (  # noqa: E402
    attention_stand_in,
    available_backends,
    default_backend,
    model_errors,
    op_errors,
    verdicts,
)


@dataclass
class Settings:
    device: str = "cuda"
    dtype: str = "bfloat16"  # speed sections; numerics always compare bf16 with fp32
    dims: dict = field(default_factory=lambda: dict(bench.MEDEIR_SMALL))
    check_lengths: tuple[int, ...] = (97, 257, 1025, 13)
    op_lengths: tuple[int, ...] = (2048, 8192)
    op_tokens: int = 32768
    op_heads: int = 12
    op_head_dim: int = 64
    op_repeats: int = 20
    model_shapes: tuple[tuple[int, int], ...] = ((4, 8192),)
    throughput_shapes: tuple[tuple[int, int], ...] = ((64, 512),)
    model_repeats: int = 5
    peak_tflops: float = bench.BF16_PEAK_TFLOPS


CPU_SMOKE = Settings(
    device="cpu",
    dtype="float32",
    dims=dict(bench.SMOKE_DIMS),
    check_lengths=(13, 40, 7),
    op_lengths=(64, 128),
    op_tokens=256,
    op_heads=4,
    op_head_dim=16,
    op_repeats=2,
    model_shapes=((1, 256),),
    throughput_shapes=((4, 64),),
    model_repeats=2,
)


# ----------------------------------------------------------------------------------------------------------------------
# Sections


def numerics(settings: Settings) -> dict:
    """Model-level and op-level derived-tolerance checks of every available fast backend, both ALiBi modes."""
    results = {}
    for mode in ("symmetric", "asymmetric"):
        names = available_backends(settings.device, mode)
        model = bench.build_medeir(
            {**settings.dims, "alibi_mode": mode}, attn_implementation="eager", device=settings.device
        )
        generator = torch.Generator().manual_seed(0)
        batch = bench.padded_batch(settings.check_lengths, settings.dims["vocab_size"], generator).to(settings.device)
        ids, mask = batch.input_ids, batch.attention_mask
        results[f"model/{mode}"] = verdicts(model_errors(model, ids, mask, names, torch.bfloat16), "eager")
        heads = settings.dims["num_attention_heads"]
        shape = (int(mask.sum()), heads, settings.dims["hidden_size"] // heads)
        q, k, v = (torch.randn(shape, generator=generator).to(settings.device, torch.bfloat16) for _ in range(3))
        results[f"op/{mode}"] = verdicts(op_errors(q, k, v, mask, model.alibi_slopes, names), "plain")
    return results


def peak_mib(setup, device: str) -> float | None:
    """Peak extra CUDA memory (MiB) of ``setup()()``: building the case's own tensors (e.g. a dense bias) and one
    call; None on CPU (see the CPU benchmarks for resident-set measurements)."""
    if torch.device(device).type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    call = setup()
    call()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del call
    return peak / 2**20


def op_cases(q, k, v, slopes: torch.Tensor, flex) -> dict:
    """Attention-op cases on (b, h, L, d) tensors: name -> setup(); setup() builds what the case needs (the dense
    bias, MedEIR's packed inputs and document block mask) and returns the call to time."""
    from modeling_medeir import ATTENTION_BACKENDS, PackedBatch, alibi_bias, alibi_score_mod

    batch, heads, length, head_dim = q.shape
    module = attention_stand_in(slopes, head_dim, flex if q.is_cuda else None)
    alibi = alibi_score_mod(slopes, symmetric=False)  # the general two-sided form, as the reference case

    def dense():
        positions = torch.arange(length, device=q.device)
        bias = alibi_bias(slopes, positions, positions).to(q.dtype)[None].expand(batch, -1, -1, -1).contiguous()
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=module.scaling)

    def medeir(backend: str):
        def setup():
            packed_qkv = [t.transpose(1, 2).reshape(batch * length, heads, head_dim) for t in (q, k, v)]
            packed = PackedBatch.from_mask(torch.ones(batch, length, dtype=torch.long, device=q.device))
            if backend == "flex_attention":
                _ = packed.flex_block_mask  # built once per forward pass in the model, for all layers
            return lambda: ATTENTION_BACKENDS[backend](module, *packed_qkv, packed, slopes)

        return setup

    cases = {
        "dense_bias_sdpa": dense,
        "flex_alibi": lambda: lambda: flex(q, k, v, score_mod=alibi, scale=module.scaling),
        "medeir_flex": medeir("flex_attention"),
        "medeir_sdpa": medeir("sdpa"),
        "sdpa_no_bias": lambda: lambda: F.scaled_dot_product_attention(q, k, v, scale=module.scaling),
    }
    if "flash_attention_2" in available_backends(q.device):
        cases["flash_varlen_alibi"] = medeir("flash_attention_2")
    return cases


def attention(settings: Settings) -> dict:
    """The attention op alone: dense-bias SDPA vs FlexAttention+ALiBi vs MedEIR's paths vs SDPA without bias."""
    from torch.nn.attention.flex_attention import flex_attention

    from modeling_medeir import alibi_slopes

    device, dtype = settings.device, getattr(torch, settings.dtype)
    heads, head_dim = settings.op_heads, settings.op_head_dim
    slopes = alibi_slopes(heads).to(device).expand(2, -1)  # symmetric: the same slopes left and right
    flex = torch.compile(flex_attention) if torch.device(device).type == "cuda" else flex_attention
    results = {}
    for length in settings.op_lengths:
        batch = max(1, settings.op_tokens // length)
        generator = torch.Generator().manual_seed(length)
        q, k, v = (torch.randn(batch, heads, length, head_dim, generator=generator).to(device, dtype) for _ in range(3))
        row = {"batch": batch, "length": length}
        with torch.inference_mode():
            for name, setup in op_cases(q, k, v, slopes, flex).items():
                memory = peak_mib(setup, device)
                call = setup()
                row[name] = {"ms": bench.median_ms(call, settings.op_repeats, device), "peak_mib": memory}
                del call
        results[str(length)] = row
    return results


FLEX_VARIANTS = {  # name -> (score_mod form, kernel options, torch.compile mode)
    "where (default)": ("where", {}, None),
    "abs": ("abs", {}, None),
    "PRESCALE_QK": ("where", {"PRESCALE_QK": True}, None),
    "USE_TMA": ("where", {"USE_TMA": True}, None),
    "128x64 w8 s3": ("where", {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3}, None),
    "128x128 w8 s2": ("where", {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 2}, None),
    "max-autotune": ("where", {}, "max-autotune-no-cudagraphs"),
}


def flex_options(settings: Settings) -> dict:
    """Median ms of compiled FlexAttention + ALiBi on (b, h, L, d) inputs under each of FLEX_VARIANTS, and each
    output's relative difference from the first variant's (the numerics section checks that one against fp32)."""
    from torch.nn.attention.flex_attention import flex_attention

    from modeling_medeir import alibi_score_mod, alibi_slopes

    device, dtype = settings.device, getattr(torch, settings.dtype)
    slopes = alibi_slopes(settings.op_heads).to(device).expand(2, -1)  # symmetric: the same slopes left and right
    cuda = torch.device(device).type == "cuda"
    score_mods = {"where": alibi_score_mod(slopes, symmetric=False), "abs": alibi_score_mod(slopes, symmetric=True)}

    def variant(form: str, options: dict, mode: str | None):
        # a fresh compile cache for each: all variants share one function, and past dynamo's recompile limit (8) it
        # silently runs the unfused implementation (seen on the H100: 136 ms for a 5 ms op)
        torch._dynamo.reset()
        flex = torch.compile(flex_attention, mode=mode) if cuda else flex_attention
        kwargs = {"kernel_options": options} if cuda and options else {}
        return lambda q, k, v: flex(q, k, v, score_mod=score_mods[form], **kwargs)

    results = {}
    for length in settings.op_lengths:
        batch = max(1, settings.op_tokens // length)
        generator = torch.Generator().manual_seed(length)
        shape = (batch, settings.op_heads, length, settings.op_head_dim)
        q, k, v = (torch.randn(shape, generator=generator).to(device, dtype) for _ in range(3))
        row, first = {}, None
        for name, spec in FLEX_VARIANTS.items():
            try:
                call = variant(*spec)
                with torch.inference_mode():
                    out = call(q, k, v).float()
                    first = out if first is None else first
                    row[name] = {
                        "ms": bench.median_ms(partial(call, q, k, v), settings.op_repeats, device),
                        "rel_error": ((out - first).norm() / first.norm()).item(),
                    }
            except Exception as error:  # noqa: BLE001 - an unsupported knob is a result here, not a failure
                row[name] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
        results[str(length)] = row
    return results


def whole_model(settings: Settings) -> list[dict]:
    return bench.compare_with_dense_bias(
        list(settings.model_shapes),
        repeats=settings.model_repeats,
        device=settings.device,
        dtype=getattr(torch, settings.dtype),
        attn_implementation=default_backend(settings.device),
        dims=settings.dims,
    )


def throughput(settings: Settings) -> list[dict]:
    rows = bench.compare_with_bert(
        list(settings.throughput_shapes),
        repeats=settings.model_repeats,
        device=settings.device,
        dtype=getattr(torch, settings.dtype),
        attn_implementation=default_backend(settings.device),
        memory=torch.device(settings.device).type == "cuda",
        dims=settings.dims,
    )
    for row in rows:
        row["medeir_tflops"] = row["medeir_flops"] / row["medeir_seconds"] / 1e12
        row["fraction_of_peak"] = row["medeir_tflops"] / settings.peak_tflops
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Report


def summary(results: dict, settings: Settings) -> list[tuple[str, str, str]]:
    """(what, measured, target) rows for the final table."""
    rows = []
    for check, table in results.get("numerics", {}).items():
        for backend, verdict in table.items():
            rows.append(
                (
                    f"numerics {check} {backend}",
                    f"err {verdict['error']:.2e} = {verdict['ratio']:.2f}x base "
                    f"({'pass' if verdict['passed'] else 'FAIL'})",
                    "<= 2x base",
                )
            )
    for length, row in results.get("attention", {}).items():
        dense, flex, floor = row["dense_bias_sdpa"], row["flex_alibi"], row["sdpa_no_bias"]
        rows.append(
            (
                f"attention {int(length):,}: dense-bias / flex time",
                f"{dense['ms'] / flex['ms']:.2f}x ({dense['ms']:.2f} / {flex['ms']:.2f} ms)",
                ">= 4x",
            )
        )
        rows.append((f"attention {int(length):,}: flex / no-bias time", f"{flex['ms'] / floor['ms']:.2f}x", "<= 1.5x"))
        rows.append((f"attention {int(length):,}: MedEIR flex path ms", f"{row['medeir_flex']['ms']:.2f}", "-"))
        if dense["peak_mib"] is not None:
            rows.append(
                (
                    f"attention {int(length):,}: flex / dense peak MiB",
                    f"{flex['peak_mib']:,.0f} / {dense['peak_mib']:,.0f}",
                    "<= 1/4",
                )
            )
    for length, row in results.get("flex", {}).items():
        for name, measured in row.items():
            text = measured.get("error") or f"{measured['ms']:.2f} ms (vs first: {measured['rel_error']:.1e})"
            rows.append((f"flex {int(length):,}: {name}", text[:60], "-"))
    for row in results.get("model", []):
        shape = f"{row['batch_size']} x {row['length']:,}"
        rows.append((f"model {shape}: dense-bias / MedEIR time", f"{row['speedup']:.2f}x", ">= 3x"))
        rows.append((f"model {shape}: MedEIR / dense peak memory", f"{row['memory_fraction']:.3f}", "<= 0.25"))
    for row in results.get("throughput", []):
        shape = f"{row['batch_size']} x {row['length']} {row['lengths']}"
        rows.append(
            (f"encode {shape}: MedEIR tokens/s", f"{row['medeir_tokens_per_s']:,.0f} ({row['speedup']:.2f}x BERT)", "-")
        )
        rows.append(
            (
                f"encode {shape}: TFLOP/s",
                f"{row['medeir_tflops']:.1f} = {row['fraction_of_peak']:.1%} of {settings.peak_tflops:.0f}",
                "-",
            )
        )
    for section, error in results.get("errors", {}).items():
        rows.append((f"{section} FAILED", error.strip().splitlines()[-1][:80], "-"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU, fp32: control flow only")
    parser.add_argument("--sections", default="numerics,attention,flex,model,throughput")
    parser.add_argument("--output", type=Path, help="JSON file (default: $OUT/gpu_check.json if $OUT is set)")
    args = parser.parse_args()
    settings = CPU_SMOKE if args.cpu_smoke else Settings()
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or pass --cpu-smoke")
    sections = {
        "numerics": numerics,
        "attention": attention,
        "flex": flex_options,
        "model": whole_model,
        "throughput": throughput,
    }
    results = {"machine": bench.machine(settings.device), "settings": asdict(settings), "errors": {}}
    for name in args.sections.split(","):
        started = time.time()
        try:
            results[name] = sections[name](settings)
        except Exception:  # record and go on: one broken section must not hide the others' results
            results["errors"][name] = traceback.format_exc()
            print(results["errors"][name], file=sys.stderr)
        print(f"[{name}: {time.time() - started:.0f} s]", file=sys.stderr, flush=True)
    output = args.output or (Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else None)
    if output:
        output.write_text(json.dumps(results, indent=2) + "\n")
    info = results["machine"]
    where = info.get("gpu") or info["cpu"]
    backend = default_backend(settings.device)
    print(f"\n{where} | torch {info['torch']} | {settings.dtype} | MedEIR attention: {backend}")
    rows = summary(results, settings)
    width = max(len(row[0]) for row in rows) if rows else 0
    for what, measured, target in rows:
        print(f"{what:<{width}}  {measured:<40}  {target}")
    failed = any(not v["passed"] for table in results.get("numerics", {}).values() for v in table.values())
    return 1 if failed or results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
