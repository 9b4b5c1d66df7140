"""Tests of the MedEIR encoder (modeling_medeir.py): ALiBi, attention backends, padding, save/load, training paths.

All models are tiny and random; everything runs on CPU in a few seconds per test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from configuration_medeir import MedEIRConfig
from modeling_medeir import (
    MedEIRForMaskedLM,
    MedEIRModel,
    PackedBatch,
    alibi_slopes,
    eager_attention_forward,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
VOCAB = 97
BACKENDS = ["eager", "sdpa", "sdpa_blocked", "flex_attention"]

# Uncompiled FlexAttention (the only kind on CPU) warns that it is slow; it is still exact, which is what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a shared CPU extra threads only contend (a 10x slowdown)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**overrides) -> MedEIRConfig:
    """6 heads (not a power of two) so the interleaved ALiBi slopes are exercised everywhere."""
    settings = dict(
        vocab_size=VOCAB,
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=6,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    settings.update(overrides)
    return MedEIRConfig(**settings)


def tiny_model(cls=MedEIRModel, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return cls(tiny_config(**overrides)).eval()


def use_backend(model, backend: str) -> None:
    """Select a backend; ``sdpa_blocked`` is SDPA with a budget so small that every query row is its own block."""
    model.config._attn_implementation = "sdpa" if backend == "sdpa_blocked" else backend
    model.config.attention_block_bytes = 1 if backend == "sdpa_blocked" else 64 * 2**20
    for module in model.modules():
        if hasattr(module, "block_bytes"):
            module.block_bytes = model.config.attention_block_bytes


def padded_batch(lengths: list[int], left: bool = False, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids (>= 1, so never the pad id) for sequences of the given lengths, padded with 0 on the right or left."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        span = slice(width - length, width) if left else slice(0, length)
        ids[row, span] = torch.randint(1, VOCAB, (length,), generator=generator)
        mask[row, span] = 1
    return ids, mask


def paper_slopes(n: int) -> list[float]:
    """ALiBi slopes as Press et al. (2022) define them: for a power of two n, the geometric sequence 2^(-8i/n),
    i = 1..n; otherwise the 2^floor(log2 n) slopes of that power, then every other slope of the next power of two."""
    if n & (n - 1) == 0:
        return [2 ** (-8 * i / n) for i in range(1, n + 1)]
    low = 2 ** int(math.log2(n))
    extra = [2 ** (-8 * i / (2 * low)) for i in range(1, 2 * low, 2)]  # odd i: every other slope of 2 * low heads
    return [2 ** (-8 * i / low) for i in range(1, low + 1)] + extra[: n - low]


def naive_attention(q, k, v, mask, left_slopes, right_slopes, scale):
    """softmax(q.k * scale + bias) v one query at a time, per head, per sequence, over the sequence's real tokens in
    order; bias = -left_slopes[h] * (i - j) for a key left of the query, -right_slopes[h] * (j - i) right of it."""
    out = torch.zeros_like(q)
    for b in range(q.shape[0]):
        real = mask[b].nonzero().flatten().tolist()
        for h in range(q.shape[2]):
            for i, qi in enumerate(real):
                scores = []
                for j, kj in enumerate(real):
                    bias = -left_slopes[h] * (i - j) if j < i else -right_slopes[h] * (j - i)
                    scores.append(float(q[b, qi, h] @ k[b, kj, h]) * scale + bias)
                probs = torch.tensor(scores, dtype=torch.float64).softmax(0)
                out[b, qi, h] = sum(p * v[b, kj, h].double() for p, kj in zip(probs, real, strict=True)).float()
    return out


# ----------------------------------------------------------------------------------------------------------------------
# ALiBi


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24])
def test_slopes_follow_the_alibi_paper(heads):
    torch.testing.assert_close(alibi_slopes(heads), torch.tensor(paper_slopes(heads)), rtol=1e-6, atol=0)


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_eager_attention_matches_the_naive_formula(mode):
    torch.manual_seed(0)
    heads, head_dim = 3, 4
    config = tiny_config(num_attention_heads=heads, hidden_size=heads * head_dim, alibi_mode=mode)
    model = MedEIRModel(config).eval()
    attention = model.layers[0].attention
    _, mask = padded_batch([5, 3, 1, 4], left=True)
    mask[0, 2] = 0  # a hole inside a sequence: its real tokens are still numbered 0, 1, 2, ... in order
    q, k, v = (torch.randn(*mask.shape, heads, head_dim) for _ in range(3))
    packed = PackedBatch.from_mask(mask)
    with torch.no_grad():
        got = packed.unpack(
            eager_attention_forward(attention, *(packed.pack(t) for t in (q, k, v)), packed, model.alibi_slopes)
        )
    slopes = paper_slopes(heads)
    right = slopes if mode == "symmetric" else slopes[::-1]
    want = naive_attention(q, k, v, mask, slopes, right, head_dim**-0.5)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_symmetric_alibi_cannot_tell_direction_and_asymmetric_can():
    ids = torch.randint(1, VOCAB, (1, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for mode in ["symmetric", "asymmetric"]:
            model = tiny_model(alibi_mode=mode)
            forward = model(ids).last_hidden_state[0]
            backward = model(ids.flip(1)).last_hidden_state[0].flip(0)
            gap = (forward - backward).abs().max().item()
            if mode == "symmetric":
                assert gap <= 1e-5
            else:
                assert gap > 1e-2


# ----------------------------------------------------------------------------------------------------------------------
# Backends


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("layout", ["no_padding", "right_padding", "left_padding"])
def test_backends_agree(mode, layout):
    lengths = [13, 13, 13] if layout == "no_padding" else [13, 7, 1, 10]
    ids, mask = padded_batch(lengths, left=layout == "left_padding")
    model = tiny_model(alibi_mode=mode)
    states = {}
    with torch.no_grad():
        for backend in BACKENDS:
            use_backend(model, backend)
            states[backend] = model(ids, attention_mask=mask).last_hidden_state
    for backend in BACKENDS[1:]:
        gap = (states[backend] - states["eager"]).abs().max().item()
        assert gap <= 1e-5, f"{backend} differs from eager by {gap}"
    assert (states["eager"][mask == 0] == 0).all()  # padding positions hold zeros


def test_blocked_sdpa_really_works_in_blocks(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        calls.append((q.shape[2], k.shape[2], tuple(attn_mask.shape), attn_mask.untyped_storage().nbytes()))
        return original(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    model = tiny_model(num_hidden_layers=1)
    ids, mask = padded_batch([40, 25])
    with torch.no_grad():
        use_backend(model, "sdpa")
        model(ids, attention_mask=mask)
        # One call per sequence, over its real tokens only. On CPU each mask is a view of one row of 2 x 40 - 1 fp32
        # biases per head (6 x 79 x 4 = 1,896 bytes), not an L x L tensor.
        assert calls == [(40, 40, (1, 6, 40, 40), 1896), (25, 25, (1, 6, 25, 25), 1896)]
        calls.clear()
        # A budget under that row: query blocks whose fp32 bias fits, 6 heads x 40 keys x 4 bytes = 960 bytes per query
        # row (1 row in 1,800 bytes); 25 keys: 600 bytes per row, 3 rows.
        model.layers[0].attention.block_bytes = 1_800
        model(ids, attention_mask=mask)
    blocks_40 = [(1, 40, (1, 6, 1, 40), 960)] * 40
    blocks_25 = [(3, 25, (1, 6, 3, 25), 1800)] * 8 + [(1, 25, (1, 6, 1, 25), 600)]
    assert calls == blocks_40 + blocks_25


@pytest.mark.parametrize(
    "lengths",
    [[1], [128], [129, 5], [300, 13, 128, 1, 700], [127, 128, 129, 256, 2, 40], [5] * 60],
)
def test_flex_block_mask_equals_the_one_flex_builds_from_the_mask_function(lengths):
    from torch.nn.attention.flex_attention import create_block_mask

    _, mask = padded_batch(lengths)
    packed = PackedBatch.from_mask(mask)
    sequence, tokens = packed.sequence_ids, packed.num_tokens
    reference = create_block_mask(lambda b, h, q, kv: sequence[q] == sequence[kv], None, None, tokens, tokens, "cpu")
    built = packed.flex_block_mask
    assert torch.equal(built.to_dense(), reference.to_dense())
    # the same split into blocks that need the mask function and blocks that lie wholly inside one sequence
    assert torch.equal(built.kv_num_blocks, reference.kv_num_blocks)
    assert torch.equal(built.full_kv_num_blocks, reference.full_kv_num_blocks)


def test_unknown_backend_raises_a_clear_error():
    model = tiny_model()
    model.config._attn_implementation = "flash_attention_3"
    with pytest.raises(ValueError, match="no attention backend 'flash_attention_3'.*sdpa"):
        model(torch.tensor([[1, 2, 3]]))


# ----------------------------------------------------------------------------------------------------------------------
# Padding


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("left", [False, True])
def test_a_text_alone_equals_the_text_inside_a_padded_batch(backend, left):
    lengths = [6, 17, 1, 11]
    ids, mask = padded_batch(lengths, left=left)
    model = tiny_model()
    use_backend(model, backend)
    with torch.no_grad():
        batch = model(ids, attention_mask=mask)
        for row in range(len(lengths)):
            real = mask[row].bool()
            alone = model(ids[row][real][None])
            gap = (batch.last_hidden_state[row][real] - alone.last_hidden_state[0]).abs().max().item()
            assert gap <= 1e-5
            torch.testing.assert_close(batch.pooler_output[row], alone.pooler_output[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_padding_rows_give_zeros_not_nan(backend):
    model = tiny_model()
    use_backend(model, backend)
    ids, mask = padded_batch([5, 3])
    mask[1] = 0
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
        empty = model(ids, attention_mask=torch.zeros_like(mask))
    assert torch.isfinite(out.last_hidden_state).all() and torch.isfinite(out.pooler_output).all()
    assert out.pooler_output[1].abs().max() == 0 and out.pooler_output[0].abs().max() > 0
    assert empty.last_hidden_state.abs().max() == 0 and empty.pooler_output.abs().max() == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_half_precision_with_padding_is_finite_and_close_to_fp32(dtype, backend):
    ids, mask = padded_batch([30, 9, 1], left=True)
    model = tiny_model()
    use_backend(model, backend)
    with torch.no_grad():
        reference = model(ids, attention_mask=mask).pooler_output
        half = model.to(dtype)(ids, attention_mask=mask)
    assert half.last_hidden_state.dtype == dtype
    assert torch.isfinite(half.last_hidden_state).all() and torch.isfinite(half.pooler_output).all()
    cosine = F.cosine_similarity(half.pooler_output.float(), reference, dim=-1)
    assert cosine.min() > 0.999


def test_8192_token_forward_pass_on_cpu():
    model = tiny_model(num_hidden_layers=1, num_attention_heads=2, hidden_size=16, intermediate_size=32)
    model.config._attn_implementation = "sdpa"
    ids = torch.randint(1, VOCAB, (1, 8192), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(ids)
    assert out.last_hidden_state.shape == (1, 8192, 16) and out.pooler_output.shape == (1, 16)
    assert torch.isfinite(out.last_hidden_state).all()
    # The states differ along the sequence (ALiBi gives each position its own context), so this is no constant output.
    assert out.last_hidden_state[0].std(dim=0).min() > 1e-3


# ----------------------------------------------------------------------------------------------------------------------
# Inputs and outputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of input_ids or inputs_embeds"),
        ({"input_ids": torch.ones(1, 4, dtype=torch.long), "inputs_embeds": torch.zeros(1, 4, 48)}, "exactly one"),
        ({"input_ids": torch.tensor([[1, 2, VOCAB]])}, r"input_ids must lie in \[0, 97\), got values in \[1, 97\]"),
        ({"input_ids": torch.tensor([[-1, 2]])}, r"input_ids must lie in \[0, 97\)"),
        ({"input_ids": torch.ones(1, 33, dtype=torch.long)}, "Sequence length 33 exceeds max_position_embeddings"),
        ({"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 5)}, "attention_mask shape"),
        ({"input_ids": torch.ones(4, dtype=torch.long)}, r"input_ids must be \[batch, sequence\]"),
        ({"inputs_embeds": torch.zeros(1, 4, 7)}, r"inputs_embeds must be \[batch, sequence, 48\]"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    model = tiny_model(max_position_embeddings=32)
    with pytest.raises(ValueError, match=message):
        model(**kwargs)


def test_inputs_embeds_equal_input_ids_and_tuple_outputs():
    model = tiny_model()
    ids, mask = padded_batch([4, 7])
    with torch.no_grad():
        by_ids = model(ids, attention_mask=mask, output_hidden_states=True)
        by_embeds = model(inputs_embeds=model.get_input_embeddings()(ids), attention_mask=mask)
        as_tuple = model(ids, attention_mask=mask, return_dict=False)
    torch.testing.assert_close(by_embeds.last_hidden_state, by_ids.last_hidden_state)
    assert len(by_ids.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(by_ids.hidden_states[-1], by_ids.last_hidden_state)
    assert len(as_tuple) == 2 and torch.equal(as_tuple[1], by_ids.pooler_output)


def test_masked_lm_loss_is_cross_entropy_at_labelled_positions():
    model = tiny_model(MedEIRForMaskedLM)
    ids, mask = padded_batch([6, 4])
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 0] = 5, 9
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        out = model(ids, attention_mask=mask, labels=labels)
    assert full.shape == (2, 6, VOCAB) and out.logits.shape == (2, VOCAB)
    want = F.cross_entropy(torch.stack([full[0, 2], full[1, 0]]), torch.tensor([5, 9]))
    torch.testing.assert_close(out.loss, want)


# ----------------------------------------------------------------------------------------------------------------------
# Training paths


def test_tiny_masked_lm_overfits_a_few_sentences():
    torch.manual_seed(0)
    model = MedEIRForMaskedLM(tiny_config(vocab_size=VOCAB, num_hidden_layers=2)).train()
    ids, mask = padded_batch([12, 9, 15, 7], seed=5)
    labels = torch.full_like(ids, -100)
    masked = (torch.rand(ids.shape, generator=torch.Generator().manual_seed(6)) < 0.3) & mask.bool()
    labels[masked] = ids[masked]
    inputs = ids.masked_fill(masked, 4)  # 4 stands for [MASK]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = model(inputs, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"


def enable_checkpointing(model) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # gradient_checkpointing_enable is deprecated in 5.x
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable()
        else:
            model.gradient_checkpointing_enable()


def test_gradient_checkpointing_gives_the_same_gradients():
    ids, mask = padded_batch([9, 5, 12])

    def gradients(checkpointing: bool) -> tuple[dict[str, torch.Tensor], int]:
        model = tiny_model(MedEIRForMaskedLM).train()
        if checkpointing:
            enable_checkpointing(model)
        layer_calls = []
        model.medeir.layers[0].mlp.register_forward_hook(lambda *args: layer_calls.append(1))
        model(ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}, len(layer_calls)

    plain, plain_calls = gradients(False)
    checkpointed, checkpointed_calls = gradients(True)
    assert (plain_calls, checkpointed_calls) == (1, 2)  # checkpointing really re-ran the layer in backward
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5, msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# Save / load


def test_save_pretrained_writes_remote_code_and_only_safetensors(tmp_path):
    model = tiny_model(MedEIRForMaskedLM)
    model.save_pretrained(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["config.json", "configuration_medeir.py", "model.safetensors", "modeling_medeir.py"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "medeir"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_medeir.MedEIRConfig",
        "AutoModel": "modeling_medeir.MedEIRModel",
        "AutoModelForMaskedLM": "modeling_medeir.MedEIRForMaskedLM",
    }


def test_decoder_weight_tying_survives_save_and_load(tmp_path):
    model = tiny_model(MedEIRForMaskedLM)
    assert model.lm_head.decoder.weight is model.medeir.embeddings.word_embeddings.weight
    with torch.no_grad():
        model.medeir.embeddings.word_embeddings.weight.mul_(3.0)  # a trained embedding, not the init
    model.save_pretrained(tmp_path)
    loaded = MedEIRForMaskedLM.from_pretrained(tmp_path).eval()
    assert loaded.lm_head.decoder.weight is loaded.medeir.embeddings.word_embeddings.weight
    torch.testing.assert_close(loaded.lm_head.decoder.weight, model.lm_head.decoder.weight, atol=0, rtol=0)
    untied = tiny_model(MedEIRForMaskedLM, tie_word_embeddings=False)
    assert untied.lm_head.decoder.weight is not untied.medeir.embeddings.word_embeddings.weight


@pytest.mark.parametrize("cls", [MedEIRModel, MedEIRForMaskedLM])
@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_meta_device_load_recomputes_the_alibi_slopes(tmp_path, cls, mode):
    tiny_model(cls, alibi_mode=mode, num_attention_heads=12, hidden_size=48).save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path)
    encoder = loaded.medeir if cls is MedEIRForMaskedLM else loaded
    slopes = torch.tensor(paper_slopes(12))
    right = slopes if mode == "symmetric" else slopes.flip(0)
    torch.testing.assert_close(encoder.alibi_slopes, torch.stack([slopes, right]), rtol=1e-6, atol=0)


def test_pad_row_of_a_trained_embedding_survives_loading(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[0] = 1.5
    model.save_pretrained(tmp_path)
    loaded = MedEIRModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.embeddings.word_embeddings.weight[0], torch.full((48,), 1.5))


def test_attn_implementation_at_load_and_switching_a_loaded_model(tmp_path, monkeypatch):
    tiny_model().save_pretrained(tmp_path)
    ids, mask = padded_batch([8, 3])
    eager = AutoModel.from_pretrained(tmp_path, trust_remote_code=True, attn_implementation="eager").eval()
    sdpa = AutoModel.from_pretrained(tmp_path, trust_remote_code=True, attn_implementation="sdpa").eval()
    assert (eager.config._attn_implementation, sdpa.config._attn_implementation) == ("eager", "sdpa")
    sdpa_calls = []
    original = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: sdpa_calls.append(1) or original(*a, **k))
    with torch.no_grad():
        by_eager = eager(ids, attention_mask=mask).last_hidden_state
        assert not sdpa_calls
        eager.set_attn_implementation("sdpa")
        assert eager.config._attn_implementation == "sdpa"
        by_sdpa = eager(ids, attention_mask=mask).last_hidden_state
        assert len(sdpa_calls) == eager.config.num_hidden_layers * len(mask)  # lengths differ: one call per text
    assert (by_sdpa - by_eager).abs().max() <= 1e-5
    with pytest.raises(ValueError):
        AutoModel.from_pretrained(tmp_path, trust_remote_code=True, attn_implementation="not_a_backend")


LOADER = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    folder, ids_path = sys.argv[1], sys.argv[2]
    inputs = torch.load(ids_path)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    encoder = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    mlm = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        outputs = {"hidden": encoder(**inputs).last_hidden_state, "logits": mlm(**inputs).logits}
    torch.save(outputs, folder + "/outputs.pt")
    print(json.dumps({
        "classes": [type(x).__module__ + "." + type(x).__name__ for x in (config, encoder, mlm)],
        "slopes": encoder.alibi_slopes.tolist(),
        "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("modeling_medeir", "configuration_medeir")),
    }))
    """
)


def test_auto_classes_load_the_saved_folder_in_a_fresh_offline_process(tmp_path):
    folder, elsewhere = tmp_path / "model", tmp_path / "elsewhere"
    elsewhere.mkdir()
    model = tiny_model(MedEIRForMaskedLM, alibi_mode="asymmetric")
    model.save_pretrained(folder)
    ids, mask = padded_batch([7, 12, 2], left=True)
    torch.save({"input_ids": ids, "attention_mask": mask}, tmp_path / "inputs.pt")
    (tmp_path / "loader.py").write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "loader.py"), str(folder), str(tmp_path / "inputs.pt")],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [name.rsplit(".", 1)[1] for name in report["classes"]] == [
        "MedEIRConfig",
        "MedEIRModel",
        "MedEIRForMaskedLM",
    ]
    assert all(name.startswith("transformers_modules.") for name in report["classes"])  # the folder's own code
    assert report["modules"] == []  # nothing came from the repo checkout or an installed copy
    torch.testing.assert_close(torch.tensor(report["slopes"]), model.medeir.alibi_slopes, rtol=0, atol=0)
    outputs = torch.load(folder / "outputs.pt")
    with torch.no_grad():
        want_hidden = model.medeir(ids, attention_mask=mask).last_hidden_state
        want_logits = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(outputs["hidden"], want_hidden, atol=0, rtol=0)
    torch.testing.assert_close(outputs["logits"], want_logits, atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------------------------------
# MedEIRModel.encode with the shipped tokenizer

TEXTS = [
    "Metformin is first-line therapy for type 2 diabetes.",
    "Chest pain",
    "The patient presented with fever, productive cough and right lower lobe consolidation on the chest radiograph.",
    "",
    "Aspirin reduces the risk of recurrent myocardial infarction in secondary prevention.",
]


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory) -> Path:
    """A tiny random encoder saved together with the repository's tokenizer, loadable by ``from_pretrained``."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_encoder")
    tokenizer = AutoTokenizer.from_pretrained(REPO_ROOT)
    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, max_position_embeddings=512)
    MedEIRModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def encoder(encoder_folder) -> MedEIRModel:
    return MedEIRModel.from_pretrained(encoder_folder).eval()


def test_encode_equals_the_mean_pooled_forward_pass(encoder, encoder_folder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder_folder)
    raw = encoder.encode(TEXTS, normalize=False)
    with torch.no_grad():
        for text, row in zip(TEXTS, raw, strict=True):
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            states = encoder(ids).last_hidden_state[0]
            torch.testing.assert_close(torch.from_numpy(row), states.mean(0), atol=1e-5, rtol=0)
    normalized = encoder.encode(TEXTS)
    assert normalized.dtype == raw.dtype and normalized.shape == (len(TEXTS), 48)
    assert abs(float((normalized**2).sum(1).max()) - 1) < 1e-5
    torch.testing.assert_close(torch.from_numpy(normalized), F.normalize(torch.from_numpy(raw), dim=-1))


def test_encode_is_batch_invariant_and_keeps_the_input_order(encoder):
    alone = [encoder.encode([text], batch_size=1)[0] for text in TEXTS]
    for batch_size in (2, 3, 32):
        together = encoder.encode(TEXTS, batch_size=batch_size)
        for row, want in zip(together, alone, strict=True):
            assert abs(row - want).max() <= 1e-5
    reversed_order = encoder.encode(TEXTS[::-1], batch_size=2)
    assert abs(reversed_order[::-1] - encoder.encode(TEXTS, batch_size=2)).max() <= 1e-5


def test_encode_single_string_tensor_output_empty_list_prefix_and_truncation(encoder):
    single = encoder.encode(TEXTS[0])
    assert single.shape == (48,)
    assert abs(single - encoder.encode([TEXTS[0]])[0]).max() <= 1e-6
    as_tensor = encoder.encode(TEXTS[:2], convert_to_numpy=False)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (2, 48)
    assert encoder.encode([]).shape == (0, 48)
    prefixed = encoder.encode(TEXTS[:2], prefix="query: ")
    assert abs(prefixed - encoder.encode(["query: " + t for t in TEXTS[:2]])).max() <= 1e-6
    assert abs(prefixed - encoder.encode(TEXTS[:2])).max() > 1e-3
    # 4 tokens: [CLS] + the first 2 word pieces of the long text + [SEP]
    truncated = encoder.encode(TEXTS[2], max_length=4)
    assert abs(truncated - encoder.encode("the patient")).max() <= 1e-6
    assert abs(truncated - encoder.encode(TEXTS[2])).max() > 1e-3


def test_encode_rejects_bad_inputs(encoder):
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        encoder.encode(["fine", 3])
    with pytest.raises(TypeError, match="string or a list of strings"):
        encoder.encode(42)
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match="tokenizer="):
        tiny_model().encode(["no folder, no tokenizer"])


def test_encode_restores_training_mode(encoder):
    encoder.train()
    try:
        encoder.encode(["x"])
        assert encoder.training
    finally:
        encoder.eval()
