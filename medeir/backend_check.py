"""Do MedEIR's fast attention backends compute what the eager reference computes, in low precision?

The tolerance is derived, not guessed (as flash-attention's own tests do it): in bf16 or fp16, a backend passes if its
largest error against an fp32 reference is at most ``factor`` (2) times the error of a plain implementation in the
same precision. Two levels:

- ``model_errors``: the whole encoder. Reference: the fp32 model on the eager backend; baseline: the same model cast
  to the low precision, on the eager backend; candidates: that model on each fast backend.
- ``op_errors``: one attention call on packed q, k, v. Reference: the eager backend on the fp32 values of the same
  inputs; baseline: ``plain_attention``, the textbook formula computed in the low precision (the eager backend
  computes in fp32 inside, so it is no low-precision baseline for the op itself).
"""

from __future__ import annotations

import copy
from itertools import pairwise
from types import SimpleNamespace

import torch

FAST_BACKENDS = ("sdpa", "flex_attention", "flash_attention_2")


def available_backends(device: str | torch.device, alibi_mode: str = "symmetric") -> list[str]:
    """The fast backends that can run here: flash_attention_2 only on CUDA with flash-attn installed, and only for
    symmetric ALiBi (flash-attn takes one slope per head)."""
    from importlib.util import find_spec

    flash = torch.device(device).type == "cuda" and find_spec("flash_attn") is not None and alibi_mode == "symmetric"
    return [name for name in FAST_BACKENDS if name != "flash_attention_2" or flash]


def default_backend(device: str | torch.device) -> str:
    """What MedEIR is best run on here: flash-attn if installed (CUDA), else FlexAttention on CUDA, else SDPA."""
    if "flash_attention_2" in available_backends(device):
        return "flash_attention_2"
    return "flex_attention" if torch.device(device).type == "cuda" else "sdpa"


def verdicts(errors: dict[str, float], baseline: str, factor: float = 2.0) -> dict[str, dict]:
    """For every candidate in ``errors`` but ``baseline``: its error, the baseline's, their ratio, pass/fail."""
    base = errors[baseline]
    return {
        name: {
            "error": error,
            "baseline_error": base,
            "ratio": error / base if base else float("inf"),
            "passed": error <= factor * base,
        }
        for name, error in errors.items()
        if name != baseline
    }


def model_errors(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, backends: list[str], dtype: torch.dtype
) -> dict[str, float]:
    """Largest absolute error of ``last_hidden_state`` at real tokens against ``model`` (fp32) on the eager backend,
    for a copy of it in ``dtype`` on the eager backend (key ``"eager"``) and on each of ``backends``. FlexAttention is
    compiled on CUDA. Leaves ``model`` on the eager backend."""
    real = attention_mask.bool()
    with torch.inference_mode():
        model.config._attn_implementation = "eager"
        reference = model(input_ids, attention_mask=attention_mask).last_hidden_state[real]
        low = copy.deepcopy(model).to(dtype)
        if input_ids.device.type == "cuda" and "flex_attention" in backends:
            low.compile_flex_attention()
        errors = {}
        for backend in ["eager", *backends]:
            low.config._attn_implementation = backend
            out = low(input_ids, attention_mask=attention_mask).last_hidden_state[real].float()
            errors[backend] = (out - reference).abs().max().item()
    return errors


def plain_attention(q, k, v, packed, slopes: torch.Tensor, scaling: float) -> torch.Tensor:
    """softmax(q k^T * scale + ALiBi) v per sequence, every step in the inputs' dtype; packed (tokens, h, d)."""
    from modeling_medeir import alibi_bias

    outputs = []
    for start, end in pairwise(packed.bounds):
        qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))  # (h, n, d)
        positions = torch.arange(end - start, device=q.device)
        scores = qs @ ks.transpose(-1, -2) * scaling + alibi_bias(slopes, positions, positions).to(q.dtype)
        outputs.append((scores.softmax(dim=-1) @ vs).transpose(0, 1))
    return torch.cat(outputs)


def attention_stand_in(slopes: torch.Tensor, head_dim: int, compiled_flex=None) -> SimpleNamespace:
    """What the attention backends read from their attention module, for calling one on bare q, k, v (inference)."""
    mode = "symmetric" if torch.equal(slopes[0], slopes[1]) else "asymmetric"
    return SimpleNamespace(
        config=SimpleNamespace(alibi_mode=mode),
        scaling=head_dim**-0.5,
        dropout_p=0.0,
        training=False,
        block_bytes=64 * 2**20,
        compiled_flex=compiled_flex,
    )


def op_errors(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention_mask: torch.Tensor, slopes: torch.Tensor,
    backends: list[str],
) -> dict[str, float]:
    """Largest absolute error of one attention call (packed low-precision q, k, v of the sequences in
    ``attention_mask``) against the eager backend on their fp32 values: ``"plain"`` (``plain_attention``) and each
    backend. FlexAttention is compiled on CUDA."""
    from modeling_medeir import ATTENTION_BACKENDS, PackedBatch

    packed = PackedBatch.from_mask(attention_mask)
    module = attention_stand_in(slopes, q.shape[-1])
    if q.device.type == "cuda" and "flex_attention" in backends:
        from torch.nn.attention.flex_attention import flex_attention

        module.compiled_flex = torch.compile(flex_attention, dynamic=True)
    with torch.inference_mode():
        reference = ATTENTION_BACKENDS["eager"](module, q.float(), k.float(), v.float(), packed, slopes)
        outputs = {"plain": plain_attention(q, k, v, packed, slopes, module.scaling)}
        for backend in backends:
            outputs[backend] = ATTENTION_BACKENDS[backend](module, q, k, v, packed, slopes)
    return {name: (out.float() - reference).abs().max().item() for name, out in outputs.items()}
