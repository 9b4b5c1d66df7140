"""Speed and memory of the MedEIR encoder, measured against the encoders users compare it with.

Two comparisons, each measured in one run so that their ratios are meaningful on a loaded machine:

- *BERT*: MedEIR against a ``transformers.BertModel`` of identical dimensions with ``attn_implementation="sdpa"``,
  both producing mean-pooled embeddings of the same batches. Batches are *uniform* (every text ``length`` tokens) or
  *mixed* (lengths uniform in ``[16, length]``, right-padded to the batch's longest text as ``tokenizer(padding=True)``
  does). Throughput counts real tokens only, so padding BERT computes on is no throughput.
- *Dense bias*: MedEIR's attention against the common ALiBi implementation that builds the whole float bias,
  ``[batch, heads, L, L]`` (ALiBi plus key padding), and hands it to SDPA as a mask on the padded batch. That baseline
  is the same model with the attention function ``dense_bias_attention_forward`` (registered as the backend
  ``"dense_bias_sdpa"``); it builds the bias once per forward pass and shares it across layers, as such
  implementations cache it.

Weights and token ids are random (fixed seeds): speed does not depend on their values. Times are the median of
``repeats`` forward passes under ``torch.inference_mode`` after warm-up passes; timed calls of the compared models
alternate, so a change in the machine's load hits all of them alike. Peak memory is the extra memory one forward pass
needs: on CPU the rise of the process's peak resident set size (VmHWM, reset through /proc/self/clear_refs; Linux)
over its size before the pass, in a fresh process per case; on CUDA ``torch.cuda.max_memory_allocated`` minus the
memory allocated before the pass.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .machine import cpu_name

MEDEIR_SMALL = {
    "vocab_size": 32000,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
}
SMOKE_DIMS = {  # CPU smoke runs of the GPU scripts: control flow only
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
}
DENSE_BIAS_BACKEND = "dense_bias_sdpa"
MIN_MIXED_LENGTH = 16  # mixed batches: lengths uniform in [16, length]
FIRST_TOKEN_ID = 5  # random ids start above the special tokens ([PAD]=0 ... [MASK]=4)
BF16_PEAK_TFLOPS = 790.0  # the figure for the GPU the CUDA numbers are meant for


@dataclass(frozen=True)
class Batch:
    """Token ids ``[batch, width]`` and their attention mask (1 = real token)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    @property
    def real_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def lengths(self) -> list[int]:
        return self.attention_mask.sum(dim=1).tolist()

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device))


@dataclass
class Case:
    """One model on one batch, for a memory (and time) measurement that may run in another process."""

    model: str  # "medeir" or "bert"
    batch_size: int
    length: int
    mixed: bool = False
    attn_implementation: str = "sdpa"
    block_bytes: int | None = None
    compile_flex: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    repeats: int = 1
    dims: dict | None = None


@contextmanager
def saved_for_backward() -> Iterator[list[int]]:
    """Within the block, the size in bytes of every tensor autograd keeps for the backward pass, in a list."""
    sizes = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        sizes.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield sizes


def padded_batch(lengths: torch.Tensor | list[int], vocab_size: int, generator: torch.Generator) -> Batch:
    """Random non-special ids for texts of these lengths, right-padded with id 0 to the longest."""
    lengths = torch.as_tensor(lengths)
    mask = (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).long()
    ids = torch.randint(FIRST_TOKEN_ID, vocab_size, mask.shape, generator=generator) * mask
    return Batch(ids, mask)


def make_batch(batch_size: int, length: int, *, mixed: bool, vocab_size: int = 32000, seed: int = 0) -> Batch:
    """Random ids for ``batch_size`` texts of ``length`` tokens (``mixed``: lengths uniform in
    ``[MIN_MIXED_LENGTH, length]``, right-padded with id 0 to the longest)."""
    generator = torch.Generator().manual_seed(seed)
    if mixed:
        lengths = torch.randint(min(MIN_MIXED_LENGTH, length), length + 1, (batch_size,), generator=generator)
    else:
        lengths = torch.full((batch_size,), length)
    return padded_batch(lengths, vocab_size, generator)


# ----------------------------------------------------------------------------------------------------------------------
# Models


def dense_bias_attention_forward(module, q, k, v, packed, slopes: torch.Tensor) -> torch.Tensor:
    """The dense-bias baseline, with MedEIR's attention-backend signature: the padded batch, and the whole
    ``[batch, heads, L, L]`` ALiBi + key-padding float mask (``[1, heads, L, L]`` when no sequence is padded) built
    once per forward pass, handed to SDPA."""
    import torch.nn.functional as F

    from modeling_medeir import alibi_bias, mask_fill_value

    q, k, v = (packed.unpack_left(t).transpose(1, 2) for t in (q, k, v))  # (b, h, L, d)
    key = ("dense_bias", q.dtype)
    if key not in packed.cache:
        positions = torch.arange(packed.max_seqlen, device=q.device)
        bias = alibi_bias(slopes, positions, positions).to(q.dtype)[None]  # (1, h, L, L)
        if not packed.is_uniform:
            key_pad = torch.zeros(packed.batch_size, 1, 1, packed.max_seqlen, dtype=q.dtype, device=q.device)
            bias = bias + key_pad.masked_fill_(~packed.dense_key_mask()[:, None, None, :], mask_fill_value(q.dtype))
        packed.cache[key] = bias
    dropout = module.dropout_p if module.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=packed.cache[key], dropout_p=dropout, scale=module.scaling)
    return packed.pack_left(out.transpose(1, 2))


def register_dense_bias_backend() -> None:
    """Make ``config._attn_implementation = DENSE_BIAS_BACKEND`` select ``dense_bias_attention_forward``."""
    from modeling_medeir import ATTENTION_BACKENDS

    ATTENTION_BACKENDS.setdefault(DENSE_BIAS_BACKEND, dense_bias_attention_forward)


def build_medeir(
    dims: dict | None = None,
    *,
    attn_implementation: str = "sdpa",
    block_bytes: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
):
    """A random ``MedEIRModel`` (medeir-small dimensions unless ``dims``), in eval mode. ``block_bytes`` overrides
    ``config.attention_block_bytes``; ``attn_implementation=DENSE_BIAS_BACKEND`` gives the dense-bias baseline."""
    from configuration_medeir import MedEIRConfig
    from modeling_medeir import MedEIRModel

    if attn_implementation == DENSE_BIAS_BACKEND:
        register_dense_bias_backend()
    budget = {} if block_bytes is None else {"attention_block_bytes": block_bytes}
    config = MedEIRConfig(**(dims or MEDEIR_SMALL), **budget)
    torch.manual_seed(seed)
    model = MedEIRModel(config)
    model.config._attn_implementation = attn_implementation
    return model.to(device=device, dtype=dtype).eval()


def build_bert(
    dims: dict | None = None,
    *,
    max_positions: int = 512,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
):
    """A random ``transformers.BertModel`` with MedEIR's dimensions and SDPA attention, without the pooler layer."""
    from transformers import BertConfig, BertModel

    config = BertConfig(**(dims or MEDEIR_SMALL), max_position_embeddings=max_positions, attn_implementation="sdpa")
    torch.manual_seed(seed)
    return BertModel(config, add_pooling_layer=False).to(device=device, dtype=dtype).eval()


def build(case: Case):
    """The model a case describes."""
    dtype, dims = getattr(torch, case.dtype), case.dims or MEDEIR_SMALL
    if case.model == "bert":
        return build_bert(dims, max_positions=max(512, case.length), device=case.device, dtype=dtype)
    kwargs = {"attn_implementation": case.attn_implementation, "block_bytes": case.block_bytes}
    model = build_medeir(dims, device=case.device, dtype=dtype, **kwargs)
    if case.compile_flex:
        model.compile_flex_attention()
    return model


def embed(model, batch: Batch) -> torch.Tensor:
    """Mean-pooled embeddings ``[batch, hidden]``: MedEIR's ``pooler_output``; for BERT the same mean over real
    tokens, as sentence-transformers pools it."""
    from modeling_medeir import MedEIRModel, mean_pool

    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    if isinstance(model, MedEIRModel):
        return out.pooler_output
    return mean_pool(out.last_hidden_state, batch.attention_mask)


def encoder_flops(model, lengths: list[int]) -> float:
    """Forward FLOPs of an encoder over sequences of these lengths: 2 x non-embedding parameters per token, plus
    attention's 4 x L x hidden per token per layer (q.k and probabilities.v)."""
    embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" in name)
    dense = sum(p.numel() for p in model.parameters()) - embedding
    config = model.config
    tokens = sum(lengths)
    attention = sum(4 * n * n * config.hidden_size for n in lengths) * config.num_hidden_layers
    return 2.0 * dense * tokens + attention


# ----------------------------------------------------------------------------------------------------------------------
# Measurement


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], repeats: int, device: str | torch.device, warmup: int = 3) -> float:
    """Median milliseconds of ``fn()`` after ``warmup`` untimed calls (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    cuda = torch.device(device).type == "cuda"
    times = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


def time_interleaved(
    calls: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1, device: str | torch.device = "cpu"
) -> dict[str, list[float]]:
    """Seconds per call of each of ``calls``: ``warmup`` untimed rounds, then ``repeats`` timed rounds in which every
    call runs once, in reversed order every other round."""
    names = list(calls)
    seconds = {name: [] for name in names}
    with torch.inference_mode():
        for _ in range(warmup):
            for name in names:
                calls[name]()
        synchronize(device)
        for round_ in range(repeats):
            for name in names if round_ % 2 == 0 else reversed(names):
                start = time.perf_counter()
                calls[name]()
                synchronize(device)
                seconds[name].append(time.perf_counter() - start)
    return seconds


def case_settings(attn_implementation: str, device: str, dtype: torch.dtype, dims: dict | None) -> dict:
    """The ``Case`` fields shared by the cases of one comparison (FlexAttention compiled on CUDA)."""
    compile_flex = attn_implementation == "flex_attention" and torch.device(device).type == "cuda"
    dtype_name = str(dtype).removeprefix("torch.")
    return {"attn_implementation": attn_implementation, "compile_flex": compile_flex, "device": str(device),
            "dtype": dtype_name, "dims": dims}


def status_kib(name: str) -> int:
    """A memory field of ``/proc/self/status`` (VmRSS, VmHWM) in KiB."""
    match = re.search(rf"^{name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1))


def measure_case(case: Case) -> dict:
    """Time ``case.repeats`` forward passes in this process and the extra memory they need (MiB).

    CPU: warm up on 8 tokens only, so that no memory freed by a full-size pass is still held by the allocator and
    hides what the measured passes need. CUDA: warm up at full size (compilation, kernel selection); the allocator's
    counters see live tensors only.
    """
    model = build(case)
    dims = case.dims or MEDEIR_SMALL
    batch = make_batch(case.batch_size, case.length, mixed=case.mixed, vocab_size=dims["vocab_size"]).to(case.device)
    cuda = torch.device(case.device).type == "cuda"
    seconds = []
    with torch.inference_mode():
        warm = batch if cuda else Batch(batch.input_ids[:, :8], batch.attention_mask[:, :8])
        embed(model, warm)
        synchronize(case.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(case.device)
            before = torch.cuda.memory_allocated(case.device)
        else:
            before = status_kib("VmRSS") * 1024
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        for _ in range(case.repeats):
            start = time.perf_counter()
            embed(model, batch)
            synchronize(case.device)
            seconds.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(case.device) if cuda else status_kib("VmHWM") * 1024
    return {
        **asdict(case),
        "real_tokens": batch.real_tokens,
        "seconds": seconds,
        "forward_peak_mib": (peak - before) / 2**20,
    }


def measure_case_isolated(case: Case) -> dict:
    """``measure_case`` in a fresh Python process on CPU (no earlier case's memory can hide or inflate the peak),
    importing the same ``medeir`` and ``modeling_medeir`` files and using as many threads as this process; in this
    process on CUDA."""
    if torch.device(case.device).type == "cuda":
        return measure_case(case)
    import medeir
    import modeling_medeir

    paths = [str(Path(modeling_medeir.__file__).parent), str(Path(medeir.__file__).parents[1])]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),  # the same thread count as the timings of this process
    }
    code = (
        "import json, sys; from medeir.bench import Case, measure_case; "
        "print(json.dumps(measure_case(Case(**json.loads(sys.argv[1])))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(asdict(case))], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark case {case} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------------
# Comparisons


def compare_with_bert(
    shapes: list[tuple[int, int]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    attn_implementation: str = "sdpa",
    memory: bool = True,
    dims: dict | None = None,
) -> list[dict]:
    """MedEIR vs a same-size BertModel (SDPA) on uniform and mixed batches of each ``(batch_size, length)``."""
    dims = dims or MEDEIR_SMALL
    common = case_settings(attn_implementation, device, dtype, dims)
    medeir = build(Case("medeir", 1, 1, **common))
    bert = build(Case("bert", 1, max(length for _, length in shapes), **common))
    rows = []
    for batch_size, length in shapes:
        for mixed in (False, True):
            batch = make_batch(batch_size, length, mixed=mixed, vocab_size=dims["vocab_size"]).to(device)
            seconds = time_interleaved(
                {"bert": lambda b=batch: embed(bert, b), "medeir": lambda b=batch: embed(medeir, b)},
                repeats=repeats,
                warmup=warmup,
                device=device,
            )
            row = {
                "batch_size": batch_size,
                "length": length,
                "lengths": "mixed" if mixed else "uniform",
                "padded_width": batch.input_ids.shape[1],
                "real_tokens": batch.real_tokens,
                "medeir_flops": encoder_flops(medeir, batch.lengths),
            }
            for name in ("bert", "medeir"):
                row[f"{name}_seconds"] = statistics.median(seconds[name])
                row[f"{name}_tokens_per_s"] = batch.real_tokens / row[f"{name}_seconds"]
            row["speedup"] = row["bert_seconds"] / row["medeir_seconds"]
            if memory:
                for name in ("bert", "medeir"):
                    case = Case(name, batch_size, length, mixed, **common)
                    row[f"{name}_forward_peak_mib"] = measure_case_isolated(case)["forward_peak_mib"]
            rows.append(row)
    return rows


def compare_with_dense_bias(
    shapes: list[tuple[int, int]],
    *,
    repeats: int = 1,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    attn_implementation: str = "sdpa",
    dims: dict | None = None,
) -> list[dict]:
    """MedEIR's attention vs the dense ALiBi bias, whole model, uniform batches of each ``(batch_size, length)``: time
    and peak memory, each case in its own process on CPU."""
    common = case_settings(attn_implementation, device, dtype, dims)
    dense = case_settings(DENSE_BIAS_BACKEND, device, dtype, dims)
    rows = []
    for batch_size, length in shapes:
        cases = {
            "medeir": Case("medeir", batch_size, length, repeats=repeats, **common),
            "dense": Case(
                "medeir", batch_size, length, repeats=repeats, **dense
            ),
        }
        row = {"batch_size": batch_size, "length": length, "attn_implementation": attn_implementation}
        for name, case in cases.items():
            result = measure_case_isolated(case)
            row[f"{name}_seconds"] = statistics.median(result["seconds"])
            row[f"{name}_tokens_per_s"] = result["real_tokens"] / row[f"{name}_seconds"]
            row[f"{name}_forward_peak_mib"] = result["forward_peak_mib"]
        row["speedup"] = row["dense_seconds"] / row["medeir_seconds"]
        row["memory_fraction"] = row["medeir_forward_peak_mib"] / row["dense_forward_peak_mib"]
        rows.append(row)
    return rows


def machine(device: str | torch.device = "cpu") -> dict:
    """What the numbers were measured on."""
    import transformers

    info = {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def run_benchmarks(
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    bert_shapes: list[tuple[int, int]] | None = None,
    dense_shapes: list[tuple[int, int]] | None = None,
    repeats: int = 5,
    long_repeats: int = 1,
    attn_implementation: str = "sdpa",
    memory: bool = True,
) -> dict:
    """Both comparisons (an empty shape list skips one) with the machine description, as plain data."""
    started = time.time()
    results = {
        "machine": machine(device),
        "settings": {"dtype": str(dtype).removeprefix("torch."), "repeats": repeats, "long_repeats": long_repeats,
                     "attn_implementation": attn_implementation},
        "bert": compare_with_bert(
            bert_shapes if bert_shapes is not None else [(16, 128), (8, 512)], repeats=repeats, device=device,
            dtype=dtype, attn_implementation=attn_implementation, memory=memory,
        ),
        "dense_bias": compare_with_dense_bias(
            dense_shapes if dense_shapes is not None else [(1, 2048), (1, 8192)], repeats=long_repeats, device=device,
            dtype=dtype, attn_implementation=attn_implementation,
        ),
    }
    results["wall_seconds"] = time.time() - started
    return results


def markdown(results: dict, *, peak_tflops: float | None = None) -> str:
    """The results as markdown tables (the format docs/BENCHMARKS.md uses)."""
    info = results["machine"]
    where = info.get("gpu") or f"{info['cores']}-core CPU ({info['cpu']}), {info['torch_threads']} torch threads"
    lines = [f"Machine: {where}; torch {info['torch']}, transformers {info['transformers']}; "
             f"dtype {results['settings']['dtype']}; MedEIR attention: {results['settings']['attn_implementation']}."]
    if results["bert"]:
        memory = "bert_forward_peak_mib" in results["bert"][0]
        header = "| batch x length | lengths | real tokens | BERT tokens/s | MedEIR tokens/s | MedEIR / BERT |"
        rule = "|---|---|---:|---:|---:|---:|"
        if memory:
            header += " BERT peak MiB | MedEIR peak MiB |"
            rule += "---:|---:|"
        if peak_tflops:
            header += " MedEIR TFLOP/s | of peak |"
            rule += "---:|---:|"
        lines += ["", header, rule]
        for row in results["bert"]:
            line = (
                f"| {row['batch_size']} x {row['length']} | {row['lengths']} | {row['real_tokens']:,} "
                f"| {row['bert_tokens_per_s']:,.0f} | {row['medeir_tokens_per_s']:,.0f} | {row['speedup']:.2f}x |"
            )
            if memory:
                line += f" {row['bert_forward_peak_mib']:,.0f} | {row['medeir_forward_peak_mib']:,.0f} |"
            if peak_tflops:
                achieved = row["medeir_flops"] / row["medeir_seconds"] / 1e12
                line += f" {achieved:,.1f} | {achieved / peak_tflops:.1%} |"
            lines.append(line)
    if results["dense_bias"]:
        lines += [
            "",
            "| batch x length | dense-bias s | MedEIR s | speed-up | dense-bias peak MiB | MedEIR peak MiB "
            "| MedEIR / dense memory |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["dense_bias"]:
            lines.append(
                f"| {row['batch_size']} x {row['length']:,} | {row['dense_seconds']:,.2f} "
                f"| {row['medeir_seconds']:,.2f} | {row['speedup']:.2f}x | {row['dense_forward_peak_mib']:,.0f} "
                f"| {row['medeir_forward_peak_mib']:,.0f} | {row['memory_fraction']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def target_checks(results: dict) -> list[str]:
    """The issue's targets, each with the measured value: MedEIR >= 1.0x BERT tokens/s on uniform batches and
    >= 1.5x on mixed ones; at 8,192 tokens or more, peak memory <= 1/4 of the dense-bias model's."""
    lines = []
    for row in results["bert"]:
        target = 1.0 if row["lengths"] == "uniform" else 1.5
        verdict = "met" if row["speedup"] >= target else "NOT met"
        lines.append(
            f"{row['batch_size']} x {row['length']} {row['lengths']}: MedEIR / BERT tokens/s = {row['speedup']:.2f}x "
            f"(target >= {target}x: {verdict})"
        )
    for row in results["dense_bias"]:
        if row["length"] >= 8192:
            verdict = "met" if row["memory_fraction"] <= 0.25 else "NOT met"
            lines.append(
                f"{row['batch_size']} x {row['length']:,}: MedEIR / dense-bias peak memory = "
                f"{row['memory_fraction']:.3f} (target <= 0.25: {verdict})"
            )
    return lines
