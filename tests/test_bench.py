"""medeir.bench (speed and memory measurements), medeir.backend_check (derived-tolerance numerics) and the
`bench` command: the measurement machinery on tiny models, on CPU."""

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from medeir.backend_check import model_errors, op_errors, verdicts
from medeir.bench import (
    DENSE_BIAS_BACKEND,
    MIN_MIXED_LENGTH,
    Case,
    build_bert,
    build_medeir,
    encoder_flops,
    make_batch,
    measure_case_isolated,
    time_interleaved,
)
from medeir.cli_bench import bench_command, parse_shape

TINY = {"vocab_size": 200, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}


def test_uniform_batches_have_no_padding_and_mixed_ones_are_padded_to_their_longest_text():
    uniform = make_batch(3, 40, mixed=False, vocab_size=200)
    assert uniform.input_ids.shape == (3, 40) and uniform.real_tokens == 120 and uniform.lengths == [40] * 3
    mixed = make_batch(50, 40, mixed=True, vocab_size=200, seed=1)
    lengths = mixed.lengths
    assert min(lengths) >= MIN_MIXED_LENGTH and max(lengths) <= 40 and len(set(lengths)) > 10
    assert mixed.input_ids.shape[1] == max(lengths) and mixed.real_tokens == sum(lengths)
    assert (mixed.input_ids[mixed.attention_mask == 0] == 0).all()
    assert (mixed.input_ids[mixed.attention_mask == 1] >= 5).all()  # no special-token ids among the real tokens
    again = make_batch(50, 40, mixed=True, vocab_size=200, seed=1)
    assert torch.equal(again.input_ids, mixed.input_ids)
    assert not torch.equal(make_batch(50, 40, mixed=True, vocab_size=200, seed=2).attention_mask, mixed.attention_mask)


def test_bert_baseline_has_medeirs_dimensions_sdpa_and_the_same_flops():
    medeir, bert = build_medeir(TINY), build_bert(TINY)
    assert bert.config._attn_implementation == "sdpa"
    assert bert.config.hidden_size == 32 and bert.config.num_hidden_layers == 2 and bert.config.intermediate_size == 64
    # Same layer shapes: per layer q, k, v, out (32 x 32 + 32 each), up (32 x 64 + 64), down (64 x 32 + 32), 2 norms.
    per_layer = 4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 2 * 32
    lengths = [16, 40]
    expected = 2.0 * 2 * per_layer * 56 + 4 * (16**2 + 40**2) * 32 * 2
    assert encoder_flops(medeir, lengths) == expected == encoder_flops(bert, lengths)


def test_timed_calls_alternate_their_order_after_the_warm_up():
    order = []
    seconds = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [len(seconds["a"]), len(seconds["b"])] == [3, 3] and min(seconds["a"] + seconds["b"]) >= 0


def test_shapes_parse_and_bad_ones_are_named():
    assert parse_shape("16x128") == (16, 128) and parse_shape("1X8192") == (1, 8192)
    for bad in ("16", "axb", "0x128", "16x128x2"):
        with pytest.raises(ValueError, match="shape"):
            parse_shape(bad)


@pytest.mark.slow
def test_cpu_peak_memory_sees_the_dense_bias_and_not_medeirs_attention():
    # 4 heads x 1,024 x 1,024 fp32 = 16 MiB of bias, held only by the dense-bias baseline.
    dims = {**TINY, "num_hidden_layers": 1}
    dense = measure_case_isolated(Case("medeir", 1, 1024, attn_implementation=DENSE_BIAS_BACKEND, dims=dims))
    medeir = measure_case_isolated(Case("medeir", 1, 1024, dims=dims))
    assert dense["real_tokens"] == medeir["real_tokens"] == 1024 and len(dense["seconds"]) == 1
    assert dense["forward_peak_mib"] >= 16
    assert medeir["forward_peak_mib"] < dense["forward_peak_mib"] - 8


@pytest.mark.slow
def test_bench_command_prints_the_tables_and_writes_json(tmp_path, monkeypatch):
    import medeir.bench

    monkeypatch.setattr(medeir.bench, "MEDEIR_SMALL", TINY)  # the command measures medeir-small; tiny here
    app = typer.Typer()
    app.command()(bench_command)
    output = tmp_path / "bench.json"
    args = ["--bert-shape", "2x24", "--dense-shape", "none", "--no-memory", "--repeats", "2", "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, [*args, "--output", str(output)])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    results = json.loads(output.read_text())
    assert results["machine"]["device"] == "cpu" and results["machine"]["torch_threads"] == 1
    assert results["dense_bias"] == []
    uniform, mixed = results["bert"]
    assert (uniform["lengths"], uniform["real_tokens"], mixed["lengths"]) == ("uniform", 48, "mixed")
    assert uniform["speedup"] == pytest.approx(uniform["bert_seconds"] / uniform["medeir_seconds"])
    assert uniform["medeir_tokens_per_s"] == pytest.approx(48 / uniform["medeir_seconds"])
    assert "| 2 x 24 | uniform | 48 |" in result.stdout
    assert f"2 x 24 uniform: MedEIR / BERT tokens/s = {uniform['speedup']:.2f}x (target >= 1.0x" in result.stdout


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_fast_backends_pass_the_derived_tolerance_in_bf16_on_cpu(mode):
    model = build_medeir({**TINY, "alibi_mode": mode}, attn_implementation="eager")
    batch = make_batch(3, 48, mixed=True, vocab_size=200)
    errors = model_errors(model, batch.input_ids, batch.attention_mask, ["sdpa"], torch.bfloat16)
    assert 0 < errors["eager"] < 0.5  # bf16 does differ from fp32, and not wildly
    assert verdicts(errors, "eager")["sdpa"]["passed"]
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch.real_tokens, 4, 8, generator=generator).bfloat16() for _ in range(3))
    op = op_errors(q, k, v, batch.attention_mask, model.alibi_slopes, ["sdpa"])
    assert 0 < op["plain"] < 0.1 and verdicts(op, "plain")["sdpa"]["passed"]


def test_verdicts_fail_a_backend_whose_error_exceeds_twice_the_baseline():
    table = verdicts({"eager": 0.01, "good": 0.019, "bad": 0.021}, "eager")
    assert table["good"]["passed"] and not table["bad"]["passed"]
    assert table["bad"]["ratio"] == pytest.approx(2.1)


def test_dense_bias_baseline_computes_what_medeir_computes():
    model = build_medeir(TINY)
    batch = make_batch(5, 40, mixed=True, vocab_size=200)
    with torch.inference_mode():
        ours = model(batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        dense = build_medeir(TINY, attn_implementation=DENSE_BIAS_BACKEND)
        theirs = dense(batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    assert (ours - theirs).abs().max() <= 1e-5
