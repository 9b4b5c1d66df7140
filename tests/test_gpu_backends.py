"""MedEIR's fast attention paths on a CUDA GPU, in bf16: SDPA, compiled FlexAttention (document block mask + ALiBi
score_mod) and flash-attn varlen with alibi_slopes (when flash-attn is installed) against the eager reference, with
the flash-attention-style derived tolerance of medeir.backend_check; and the memory the long-input path needs.

Skipped without CUDA (CI has none): run on a GPU machine with `python -m pytest -q -m gpu tests/test_gpu_backends.py`.
"""

import pytest
import torch
import torch.nn.functional as F

from medeir.backend_check import available_backends, model_errors, op_errors, verdicts
from medeir.bench import MEDEIR_SMALL, build_medeir, padded_batch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

LENGTHS = [97, 257, 1025, 13]  # odd lengths, longer and shorter than kernel tiles, one under 16


def padded(lengths: list[int], vocab_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    batch = padded_batch(lengths, vocab_size, torch.Generator().manual_seed(seed)).to("cuda")
    return batch.input_ids, batch.attention_mask


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_whole_model_on_each_fast_backend_is_within_twice_eager_bf16_error(mode):
    model = build_medeir({**MEDEIR_SMALL, "alibi_mode": mode}, attn_implementation="eager", device="cuda")
    ids, mask = padded(LENGTHS, MEDEIR_SMALL["vocab_size"])
    errors = model_errors(model, ids, mask, available_backends("cuda", mode), torch.bfloat16)
    assert errors["eager"] > 0  # bf16 really differs from the fp32 reference
    for backend, verdict in verdicts(errors, "eager").items():
        assert verdict["passed"], f"{backend}: {verdict}"


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_attention_op_on_each_fast_backend_is_within_twice_plain_bf16_error(mode):
    model = build_medeir({**MEDEIR_SMALL, "alibi_mode": mode}, device="cuda")
    _, mask = padded(LENGTHS, MEDEIR_SMALL["vocab_size"])
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(int(mask.sum()), 12, 32, generator=generator).cuda().bfloat16() for _ in range(3))
    errors = op_errors(q, k, v, mask, model.alibi_slopes, available_backends("cuda", mode))
    for backend, verdict in verdicts(errors, "plain").items():
        assert verdict["passed"], f"{backend}: {verdict}"


def test_compiled_flex_attention_at_8192_tokens_needs_a_fraction_of_the_dense_bias():
    model = build_medeir(attn_implementation="flex_attention", device="cuda", dtype=torch.bfloat16)
    model.compile_flex_attention()
    ids = torch.randint(5, MEDEIR_SMALL["vocab_size"], (1, 8192), generator=torch.Generator().manual_seed(0)).cuda()
    with torch.inference_mode():
        model(ids)  # compile
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = model(ids)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    dense_bias_bytes = 12 * 8192 * 8192 * 2  # one bf16 [heads, L, L] ALiBi mask
    assert torch.isfinite(out.last_hidden_state).all()
    assert peak <= dense_bias_bytes / 4, f"peak {peak / 2**20:.0f} MiB"


def test_sdpa_path_on_cuda_agrees_with_flex_on_a_mixed_batch_in_fp32():
    model = build_medeir(device="cuda")
    ids, mask = padded(LENGTHS, MEDEIR_SMALL["vocab_size"])
    with torch.inference_mode():
        by_sdpa = model(ids, attention_mask=mask).pooler_output
        model.config._attn_implementation = "flex_attention"
        by_flex = model(ids, attention_mask=mask).pooler_output
    assert F.cosine_similarity(by_sdpa, by_flex).min() > 0.99999
    torch.testing.assert_close(by_flex, by_sdpa, atol=1e-4, rtol=1e-4)
