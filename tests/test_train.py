"""Training pipeline: settings, data, losses, transplant, and both stages end to end on a tiny config."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from medeir.bench import saved_for_backward
from medeir.evaluation.degrade import content_words, degrade_text
from medeir.train.data import (
    ClozeSplitter,
    PackedRows,
    Pair,
    PairMixture,
    PassageDegrader,
    QueryShortener,
    ScoredPairSampler,
    mask_tokens,
    read_pairs,
)
from medeir.train.losses import (
    cosine_distillation_loss,
    embedding_distillation_loss,
    graded_similarity_loss,
    in_batch_contrastive_loss,
    similarity_distillation_loss,
)
from medeir.train.runner import build_model, latest_checkpoint, lr_factor, run
from medeir.train.settings import RunSettings, load_settings, settings_dict
from medeir.train.tasks import ContrastiveTask, holdout_filter

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
TINY = REPO / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(REPO))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A miniature shared-data folder: two text shards and two pair files."""
    (tmp_path / "text").mkdir()
    (tmp_path / "train").mkdir()
    sentences = [f"patient {i} received {i % 7} mg of aspirin for chest pain and fever." for i in range(60)]
    for shard in range(2):
        with gzip.open(tmp_path / "text" / f"shard{shard}.txt.gz", "wt") as handle:
            handle.write("\n".join(sentences[shard::2]) + "\n")
    with gzip.open(tmp_path / "train" / "qa_pairs.jsonl.gz", "wt") as handle:
        for i in range(40):
            record = {"query": f"what treats condition {i}?", "positive": f"drug {i} treats condition {i}."}
            handle.write(json.dumps(record) + "\n")
    (tmp_path / "train" / "sts.jsonl").write_text(
        "\n".join(json.dumps({"sentence1": f"a man plays {i}", "sentence2": f"a man is playing {i}", "score": 4.5})
                  for i in range(10)) + "\n"
    )
    return tmp_path


def tiny_settings(data_dir: Path, out: Path, *overrides: str):
    return load_settings(
        TINY,
        [
            f"data_dir={data_dir}",
            f"output_dir={out}",
            f"model.tokenizer={REPO}",
            "mlm.text_files=[text/shard*.txt.gz]",
            "contrastive.pair_files={train/qa_pairs.jsonl.gz: 1.0, train/sts.jsonl: 0.5}",
            *overrides,
        ],
    )


def test_settings_overrides_and_unknown_fields(tmp_path):
    settings = load_settings(TINY, ["contrastive.steps=7", "learning_rate=0.5"])
    assert settings.contrastive.steps == 7 and settings.learning_rate == 0.5
    with pytest.raises(ValueError, match="unknown ContrastiveSettings field"):
        load_settings(TINY, ["contrastive.stepz=7"])
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.yaml")
    # YAML reads 1e-9 as text and 2 as an int: both are numbers for a float field
    settings = load_settings(TINY, ["time_limit_minutes=1e-9", "contrastive.scale=2"])
    assert (settings.time_limit_minutes, settings.contrastive.scale) == (1e-9, 2.0)
    assert isinstance(settings.contrastive.scale, float)
    for override, error in [
        ("contrastive.steps=7.5", "ContrastiveSettings.steps must be of type int, got float 7.5"),
        ("learning_rate=fast", "RunSettings.learning_rate must be of type float, got str 'fast'"),
        ("seed=true", "RunSettings.seed must be of type int, got bool True"),
        ("contrastive.symmetric=1", "ContrastiveSettings.symmetric must be of type bool, got int 1"),
        ("contrastive.keyword_query_files=train/a.jsonl",  # a bare name would be read letter by letter
         "ContrastiveSettings.keyword_query_files must be a list, got str 'train/a.jsonl'"),
        ("contrastive.pair_files=[train/a.jsonl]",
         "ContrastiveSettings.pair_files must be a mapping, got list ['train/a.jsonl']"),
    ]:
        with pytest.raises(ValueError, match=re.escape(error)):
            load_settings(TINY, [override])


def test_config_extends_overlays_sections_field_by_field(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "stage: contrastive\nseed: 1\nlearning_rate: 1.0e-4\n"
        "contrastive: {steps: 10, batch_size: 8, pair_files: {a.jsonl: 1.0, b.jsonl: 2.0}}\n"
    )
    (tmp_path / "sub").mkdir()  # extends is read relative to the file that names it
    (tmp_path / "sub" / "mid.yaml").write_text("extends: ../base.yaml\nseed: 2\ncontrastive: {steps: 20}\n")
    (tmp_path / "sub" / "top.yaml").write_text("extends: mid.yaml\ncontrastive: {pair_files: {c.jsonl: 1.0}}\n")
    settings = load_settings(tmp_path / "sub" / "top.yaml", ["contrastive.scale=5"])
    c = settings.contrastive
    assert (settings.seed, settings.learning_rate) == (2, 1e-4)
    assert (c.steps, c.batch_size, c.scale) == (20, 8, 5.0)  # batch_size comes through two section merges
    assert c.pair_files == {"c.jsonl": 1.0}  # a mapping field is replaced whole, so a file can be dropped
    assert load_settings(tmp_path / "sub" / "mid.yaml").contrastive.pair_files == {"a.jsonl": 1.0, "b.jsonl": 2.0}

    (tmp_path / "empty.yaml").write_text("extends: base.yaml\ncontrastive:\n")  # an empty section changes nothing
    assert load_settings(tmp_path / "empty.yaml", ["contrastive.steps=3"]).contrastive.batch_size == 8
    (tmp_path / "loop2.yaml").write_text("extends: loop1.yaml\n")
    for name, text, error, message in [
        ("loop1.yaml", "extends: loop2.yaml\n", ValueError, "cycle: .*loop1.yaml -> .*loop2.yaml -> .*loop1.yaml"),
        ("orphan.yaml", "extends: gone.yaml\n", FileNotFoundError, "gone.yaml \\(extended by .*orphan.yaml\\)"),
        ("scalar.yaml", "extends: base.yaml\ncontrastive: 5\n", ValueError,
         "RunSettings.contrastive must be a mapping of fields, got int 5"),
        ("two.yaml", "extends: [base.yaml, sub/mid.yaml]\n", ValueError, "extends must name one config file"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(error, match=message):
            load_settings(tmp_path / name)


def test_train_show_prints_the_resolved_settings(tmp_path):
    from typer.testing import CliRunner

    from medeir.cli import app

    (tmp_path / "child.yaml").write_text(f"extends: {TINY}\nseed: 99\n")
    args = ["train", "contrastive", "--config", str(tmp_path / "child.yaml"), "--set", "contrastive.steps=3", "--show"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    expected = settings_dict(load_settings(TINY, ["stage=contrastive", "seed=99", "contrastive.steps=3"]))
    assert shown == json.loads(json.dumps(expected))
    assert shown["seed"] == 99 and shown["contrastive"]["steps"] == 3


def test_lr_schedule_warms_up_then_decays_to_floor():
    values = [lr_factor(s, warmup=4, total=20, floor=0.1) for s in range(21)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(values[3:], values[4:], strict=False))
    assert values[20] == pytest.approx(0.1)


def test_contrastive_loss_prefers_matching_pairs():
    q = torch.eye(4)
    assert in_batch_contrastive_loss(q, q, scale=20.0) < 1e-6
    shuffled = q[[1, 0, 3, 2]]
    # wrong passages: each query's own candidate has cosine 0 and another has 1, so the loss is about 20
    assert in_batch_contrastive_loss(q, shuffled, scale=20.0).item() == pytest.approx(20.0, abs=1e-3)
    hard = torch.eye(4)
    with_negatives = in_batch_contrastive_loss(q, q, negatives=hard)  # each query now has two perfect candidates
    assert with_negatives.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)


def test_distillation_loss_is_zero_for_same_direction_and_four_for_opposite():
    x = torch.randn(5, 8)
    assert embedding_distillation_loss(3 * x, x) < 1e-10
    assert embedding_distillation_loss(-x, x).item() == pytest.approx(4.0, abs=1e-5)


def test_similarity_distillation_is_zero_for_same_ranking_and_grows_when_it_flips():
    q, c = torch.randn(4, 8), torch.randn(6, 8)
    # the teacher may live in another space (other dimension): only the in-batch rankings are compared
    rotation = torch.linalg.qr(torch.randn(8, 8)).Q
    assert similarity_distillation_loss(q @ rotation, c @ rotation, q, c).item() == pytest.approx(0.0, abs=1e-5)
    flipped = similarity_distillation_loss(q, -c, q, c)
    assert flipped.item() > 1.0
    assert similarity_distillation_loss(q, c, q, c, scale=1.0) < 1e-6


def test_cosine_distillation_compares_the_cosines_themselves():
    q, c = torch.randn(4, 8), torch.randn(6, 8)
    rotation = torch.linalg.qr(torch.randn(8, 8)).Q
    assert cosine_distillation_loss(2 * q @ rotation, c @ rotation, q, c).item() == pytest.approx(0.0, abs=1e-5)
    e1, e2 = torch.eye(2)
    teacher_q, teacher_c = e1[None], torch.stack([e1, e2])  # cosines 1 and 0
    student_c = torch.stack([e1, e1 + e2])  # cosines 1 and 1/sqrt(2): one squared difference of 1/2
    assert cosine_distillation_loss(e1[None], student_c, teacher_q, teacher_c).item() == pytest.approx(0.5)
    two_queries = cosine_distillation_loss(torch.stack([e1, e1]), student_c, torch.stack([e1, e1]), teacher_c)
    assert two_queries.item() == pytest.approx(0.5)  # summed over candidates, averaged over queries


def test_graded_similarity_loss_follows_the_order_of_the_scores():
    first = torch.eye(4)
    # pair i's second vector has cosine cos_i with first[i]: 1.0, 0.6, 0.2, -0.2
    cosines = torch.tensor([1.0, 0.6, 0.2, -0.2])
    second = cosines[:, None] * first + (1 - cosines[:, None] ** 2).sqrt() * first.roll(1, dims=0)
    scores = torch.tensor([5.0, 3.0, 2.0, 0.0])
    # every ordered (hi, lo) pair is sorted with a margin of at least 0.4 x 20: the loss is close to log(1) = 0
    assert graded_similarity_loss(first, second, scores).item() < 2e-3
    # scores in the opposite order: the worst violation alone costs 20 x 1.2 = 24
    assert graded_similarity_loss(first, second, scores.flip(0)).item() == pytest.approx(24.0, abs=0.01)
    # equal cosines: each of the 6 ordered pairs contributes exp(0) = 1; equal scores contribute nothing
    assert graded_similarity_loss(first, first, scores).item() == pytest.approx(float(torch.log(torch.tensor(7.0))))
    assert graded_similarity_loss(first, second, torch.full((4,), 3.0)).item() == pytest.approx(0.0, abs=1e-6)


def test_scored_pair_sampler_keeps_every_grade_and_visits_all_pairs(tmp_path):
    path = tmp_path / "graded.jsonl"
    rows = [{"sentence1": f"s{i}", "sentence2": f"t{i}", "score": i / 2} for i in range(7)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    sampler = ScoredPairSampler([path], seed=0)
    first_pass = sampler.batch(7)
    assert sorted(p.score for p in first_pass) == [i / 2 for i in range(7)]  # low grades kept, each pair once
    assert len(sampler.batch(10)) == 10  # wraps around into a new pass
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no graded pairs"):
        ScoredPairSampler([empty], seed=0)
    unscored = tmp_path / "unscored.jsonl"
    unscored.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"sentence1": "a", "sentence2": "b"}) + "\n")
    with pytest.raises(ValueError, match="unscored.jsonl:2: a graded pair needs"):
        ScoredPairSampler([unscored], seed=0)


def test_mask_tokens_keeps_specials_and_labels_only_chosen(tokenizer):
    ids = torch.tensor([[tokenizer.cls_token_id] + list(range(10, 208)) + [tokenizer.sep_token_id]] * 4)
    masked, labels = mask_tokens(ids, tokenizer, 0.3, torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert 0.2 < chosen.float().mean() < 0.4
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    assert (masked[chosen] == tokenizer.mask_token_id).float().mean() > 0.6


def test_packed_stream_rows_have_exact_length_and_start_with_cls(tokenizer, data_dir):
    stream = PackedRows(tokenizer, sorted((data_dir / "text").glob("*.gz")), 24, seed=0, buffer_size=8)
    rows = [next(stream) for _ in range(30)]
    assert all(len(r) == 24 and r[0] == tokenizer.cls_token_id for r in rows)
    assert any(tokenizer.sep_token_id in r for r in rows)


def test_packed_stream_restored_from_its_state_reads_on_where_it_stopped(tokenizer, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(PackedRows, "LINES_PER_READ", 7)  # a shard (30 lines) takes several reads: resume mid-shard
    files = sorted((data_dir / "text").glob("*.gz"))
    from medeir.tokenizer import iter_lines

    per_pass = sum(len(ids) + 1 for f in files for ids in tokenizer(list(iter_lines(f)), add_special_tokens=False)[
        "input_ids"])
    count = 3 * per_pass // 23  # three passes over the shards (23 packed ids a row)
    straight = PackedRows(tokenizer, files, 24, seed=3, buffer_size=8)
    first = [next(straight) for _ in range(count)]
    stopped = PackedRows(tokenizer, files, 24, seed=3, buffer_size=8)
    assert [next(stopped) for _ in range(count // 2)] == first[: count // 2]
    assert 0 < stopped.lines_read < 30  # stopped inside a shard
    resumed = PackedRows(tokenizer, files, 24, seed=3, buffer_size=8)
    resumed.load_state_dict(stopped.state_dict())
    assert [next(resumed) for _ in range(count - count // 2)] == first[count // 2 :]
    with pytest.raises(ValueError, match="rows of 24 tokens"):
        PackedRows(tokenizer, files, 32, seed=3).load_state_dict(stopped.state_dict())
    with pytest.raises(ValueError, match="other text files"):
        PackedRows(tokenizer, files[:1], 24, seed=3).load_state_dict(stopped.state_dict())
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="no text in"):
        next(PackedRows(tokenizer, [empty], 24, seed=0, buffer_size=2))


def test_pairs_reader_and_mixture_avoid_in_batch_duplicates(data_dir):
    qa = read_pairs(data_dir / "train" / "qa_pairs.jsonl.gz")
    sts = read_pairs(data_dir / "train" / "sts.jsonl")
    assert len(qa) == 40 and len(sts) == 10 and sts[0].positive == "a man is playing 0"
    dup = [Pair("same q", f"p{i}", group="g") for i in range(5)]
    dup += [Pair(f"q{i}", f"p{i}", group=f"h{i}") for i in range(5)]
    batch = PairMixture({"a": dup}, {"a": 1.0}, seed=0).batch(6)
    assert len({p.group for p in batch}) == len(batch)
    bad = data_dir / "bad.jsonl"
    bad.write_text('{"query": "a", "positive": "b"}\n{broken\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_pairs(bad)


def test_holdout_filter_skips_evaluation_records_in_any_order():
    from medeir.evaluation.beir_data import read_jsonl
    from medeir.evaluation.clustering import clustering_indices
    from medeir.evaluation.data_paths import MEDQUAD_FILE, MQP_FILE
    from medeir.evaluation.pair_classification import is_mqp_holdout

    mqp = [record for _, record in read_jsonl(MQP_FILE)]
    kept = [i for i, record in enumerate(mqp) if holdout_filter("mqp_pairs.jsonl.gz", record)]
    assert kept == [i for i in range(len(mqp)) if not is_mqp_holdout(i)]
    medquad = [record for _, record in read_jsonl(MEDQUAD_FILE)]
    dropped = {i for i, record in enumerate(medquad) if not holdout_filter("medquad_pairs.jsonl.gz", record)}
    assert dropped == clustering_indices() and len(dropped) >= 1000
    reordered = medquad[::-1]  # e.g. a shuffled copy: the same records are dropped
    assert sum(not holdout_filter("medquad_pairs.jsonl.gz", r) for r in reordered) == len(dropped)
    assert holdout_filter("rqe_pairs.jsonl.gz", medquad[min(dropped)])


def test_transplant_copies_teacher_layers_and_shared_tokens(tokenizer, minilm_tokenizer):
    from safetensors.torch import load_file

    from configuration_medeir import MedEIRConfig
    from medeir.loading import minilm_path
    from medeir.train.transplant import init_from_bert
    from modeling_medeir import MedEIRModel

    model = MedEIRModel(MedEIRConfig(vocab_size=len(tokenizer)))
    init_from_bert(model, minilm_path(), tokenizer)
    teacher = load_file(str(minilm_path() / "model.safetensors"))
    q = teacher["encoder.layer.2.attention.self.query.weight"]
    assert torch.equal(model.layers[2].attention.qkv.weight[:384], q)
    teacher_vocab = minilm_tokenizer.get_vocab()
    positions = teacher["embeddings.position_embeddings.weight"][:128].mean(0)
    constant = teacher["embeddings.token_type_embeddings.weight"][0] + positions
    ours = tokenizer.get_vocab()["disease"]
    expected = teacher["embeddings.word_embeddings.weight"][teacher_vocab["disease"]] + constant
    assert torch.allclose(model.embeddings.word_embeddings.weight[ours], expected)


def test_minilm_path_follows_the_environment_and_rejects_a_wrong_folder(tmp_path, monkeypatch):
    from medeir.loading import minilm_path

    shipped = minilm_path()
    assert (shipped / "model.safetensors").is_file()
    monkeypatch.setenv("MEDEIR_MINILM_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="MEDEIR_MINILM_PATH"):
        minilm_path()
    (tmp_path / "config.json").write_text((shipped / "config.json").read_text())
    assert minilm_path() == tmp_path


@pytest.mark.slow
def test_contrastive_stage_trains_checkpoints_and_resumes(data_dir, tmp_path):
    out = tmp_path / "run"
    settings = tiny_settings(data_dir, out, "contrastive.steps=5", "save_every=3")
    final = run(settings)
    assert (final / "config.json").is_file() and list(final.glob("*.safetensors"))
    log = [json.loads(line) for line in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert latest_checkpoint(out).name == "checkpoint-3"
    # the saved tokenizer is the loaded one, not one left in the truncation/padding state training used
    assert json.loads((final / "tokenizer.json").read_text())["truncation"] is None
    # an embedding model folder: sentence-transformers files with the (here empty) prompts it was trained with
    assert json.loads((final / "config_sentence_transformers.json").read_text())["prompts"] == {"query": "",
                                                                                                 "document": ""}
    # resume: extend the run to 7 steps; it must start from the checkpoint at step 3
    more = tiny_settings(data_dir, out, "contrastive.steps=7", "save_every=3")
    run(more)
    steps = [json.loads(line)["step"] for line in (out / "loss_log.jsonl").read_text().splitlines()]
    assert steps[5:] == [4, 5, 6, 7]
    assert latest_checkpoint(out).name == "checkpoint-6"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-6"]  # older ones are removed


@pytest.mark.slow
def test_keep_checkpoints_keeps_every_checkpoint(data_dir, tmp_path):
    out = tmp_path / "run"
    run(tiny_settings(data_dir, out, "contrastive.steps=4", "save_every=2", "keep_checkpoints=true"))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert latest_checkpoint(out).name == "checkpoint-4"
    early, late = final_weights(out / "checkpoint-2"), final_weights(out / "checkpoint-4")
    assert early.keys() == late.keys() and any(not torch.equal(early[k], late[k]) for k in early)


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {name: tensor for file in sorted(folder.glob("*.safetensors")) for name, tensor in load_file(file).items()}


def assert_same_weights(expected_folder: Path, actual_folder: Path) -> None:
    """Both folders hold the same tensors, equal to 1e-6 (runs that must match step for step)."""
    expected, actual = final_weights(expected_folder), final_weights(actual_folder)
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=1e-6, msg=f"{actual_folder.name}: {name}")


@pytest.mark.slow
def test_stop_at_step_replays_the_first_steps_of_a_longer_run(data_dir, tmp_path):
    """A run stopped by stop_at_step keeps the whole run's learning-rate schedule (its checkpoint equals the longer
    run's at that step, in the cosine part of the schedule), goes no further when run again with the same setting, and
    ends like the longer run once the setting is cleared."""
    schedule = ("contrastive.steps=6", "warmup_steps=1")
    whole, part = tmp_path / "whole", tmp_path / "part"
    run(tiny_settings(data_dir, whole, *schedule, "save_every=2", "keep_checkpoints=true"))
    for _ in range(2):  # the second call resumes at step 4 and stops there again
        run(tiny_settings(data_dir, part, *schedule, "save_every=10", "stop_at_step=4"))
    assert latest_checkpoint(part).name == "checkpoint-4" and not (part / "final").exists()
    logs = [[json.loads(line) for line in (out / "loss_log.jsonl").read_text().splitlines()] for out in (whole, part)]
    assert [r["lr"] for r in logs[1]] == [r["lr"] for r in logs[0][:4]] and len(logs[1]) == 4
    assert logs[0][3]["lr"] < logs[0][1]["lr"]  # step 4 is past the peak: the schedule length matters there
    assert_same_weights(whole / "checkpoint-4", part / "checkpoint-4")
    run(tiny_settings(data_dir, part, *schedule, "save_every=10"))  # cleared: on to the last step
    assert_same_weights(whole / "final", part / "final")
    with pytest.raises(ValueError, match="stop_at_step must be between 0"):
        run(tiny_settings(data_dir, tmp_path / "beyond", *schedule, "stop_at_step=7"))


@pytest.mark.slow
@pytest.mark.parametrize("stop", [2, 3])
def test_an_interrupted_mlm_run_resumes_exactly_where_it_stopped(data_dir, tmp_path, monkeypatch, stop):
    """The MLM stream saves its position: a run stopped after step 2 (inside the first phase, and inside a shard) or 3
    (where the curriculum changes length) and run again ends like one run straight through."""
    monkeypatch.setattr(PackedRows, "LINES_PER_READ", 5)
    mlm = ("stage=mlm", "mlm.curriculum=[[16, 3], [32, 2]]", "mlm.tokens_per_batch=64", "save_every=10")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run(tiny_settings(data_dir, straight, *mlm))
    run(tiny_settings(data_dir, stopped, *mlm, f"stop_at_step={stop}"))
    run(tiny_settings(data_dir, stopped, *mlm))
    losses = [[json.loads(line)["loss"] for line in (out / "loss_log.jsonl").read_text().splitlines()]
              for out in (straight, stopped)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-6) and len(losses[0]) == 5
    assert_same_weights(straight / "final", stopped / "final")


def test_an_interrupted_run_resumes_exactly_where_it_stopped(data_dir, tmp_path):
    """Stopped by its time limit after step 1 and run again, a run ends with the same weights and losses as one run
    straight through: the resume restores the samplers' draws (pairs, graded pairs, which passages are degraded and
    which queries shortened) and
    the dropout random state, not just the step."""
    graded = (
        "contrastive.graded_pair_files=[train/sts.jsonl]", "contrastive.graded_pairs_per_batch=2",
        "contrastive.degraded_passage_share=0.5", "contrastive.keyword_query_share=0.5",
    )
    straight = tmp_path / "straight"
    run(tiny_settings(data_dir, straight, "contrastive.steps=4", "save_every=10", *graded))
    stopped = tmp_path / "stopped"
    (stopped / "checkpoint-7.tmp").mkdir(parents=True)  # a save that was killed part-way: never resumed from
    run(tiny_settings(data_dir, stopped, "contrastive.steps=4", "save_every=10", "time_limit_minutes=1e-9", *graded))
    assert latest_checkpoint(stopped).name == "checkpoint-1" and not (stopped / "checkpoint-7.tmp").exists()
    assert not (stopped / "final").exists()
    run(tiny_settings(data_dir, stopped, "contrastive.steps=4", "save_every=10", *graded))
    losses = [[json.loads(line)["loss"] for line in (out / "loss_log.jsonl").read_text().splitlines()]
              for out in (straight, stopped)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-6) and len(losses[0]) == 4
    assert_same_weights(straight / "final", stopped / "final")


def launch_tiny_run(launcher: list[str], data_dir: Path, out: Path, *sets: str) -> subprocess.CompletedProcess:
    """The tiny contrastive config on qa_pairs, 4 steps saved every 2, run by ``launcher`` (a multi-process launcher
    and its options, up to its ``-m``) on CPU processes; extra ``--set`` overrides in ``sets``."""
    command = [*launcher, "-m", "medeir", "train", "contrastive", "--config", str(TINY),
               "--set", f"data_dir={data_dir}", "--set", f"output_dir={out}", "--set", f"model.tokenizer={REPO}",
               "--set", "contrastive.pair_files={train/qa_pairs.jsonl.gz: 1.0}", "--set", "contrastive.steps=4",
               "--set", "save_every=2", *(arg for value in sets for arg in ("--set", value))]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}  # CPU processes on any machine
    result = subprocess.run(command, cwd=out.parent, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def logged_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "loss_log.jsonl").read_text().splitlines()]


TORCHRUN = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2"]


@pytest.mark.slow
def test_two_processes_draw_different_batches_and_stop_together(data_dir, tmp_path):
    """A real 2-process data-parallel run (torchrun, gloo on CPU): each process draws its own batches, the loss log
    has every step, and a time limit stops both processes at the same step (else the run would hang)."""
    out = tmp_path / "ddp"
    result = launch_tiny_run(TORCHRUN, data_dir, out)
    assert logged_steps(out) == [1, 2, 3, 4]
    assert result.stdout.count(f"final model: {out / 'final'}") == 1  # said by the main process alone
    ranks = [torch.load(out / "checkpoint-4" / f"rank-{i}.pt", weights_only=False) for i in (0, 1)]
    orders = [rank["data"]["mixture"]["orders"]["train/qa_pairs.jsonl.gz"] for rank in ranks]
    assert orders[0] != orders[1]  # different seeds per process, so different passes over the pairs
    stopped = tmp_path / "stopped"
    result = launch_tiny_run(TORCHRUN, data_dir, stopped, "time_limit_minutes=1e-9")
    assert latest_checkpoint(stopped).name == "checkpoint-1"
    assert result.stdout.count("time limit reached at step 1") == 1 and "final model" not in result.stdout
    assert sorted(p.name for p in latest_checkpoint(stopped).glob("rank-*.pt")) == ["rank-0.pt", "rank-1.pt"]


@pytest.mark.slow
def test_the_fsdp_config_on_cpu_trains_as_data_parallel_and_says_so(data_dir, tmp_path):
    """accelerate turns FSDP on only for multi-GPU (or other multi-accelerator) jobs: the shipped FSDP config launched
    on two CPU processes trains as plain data parallel, and the run says so once instead of seeming to shard."""
    out = tmp_path / "fsdp"
    accelerate = [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file",
                  str(REPO / "configs" / "accelerate" / "fsdp.yaml"), "--num_processes", "2"]
    result = launch_tiny_run(accelerate, data_dir, out)
    warning = "warning: the accelerate config asks for FSDP, but accelerate runs this MULTI_CPU job unsharded"
    assert result.stdout.count(warning) == 1
    assert logged_steps(out) == [1, 2, 3, 4]
    assert sorted(p.name for p in (out / "checkpoint-4").glob("rank-*.pt")) == ["rank-0.pt", "rank-1.pt"]
    assert (out / "final" / "model.safetensors").is_file()


def test_a_globbed_pair_file_pools_its_shards(data_dir, tmp_path, tokenizer):
    for shard in range(2):
        with gzip.open(data_dir / "train" / f"more-{shard}.jsonl.gz", "wt") as handle:
            for i in range(3 + shard):
                handle.write(json.dumps({"query": f"q{shard}-{i}", "positive": f"p{shard}-{i}"}) + "\n")
    settings = tiny_settings(data_dir, tmp_path / "run", "contrastive.pair_files={train/more-*.jsonl.gz: 1.0}")
    task = ContrastiveTask(settings, tokenizer, CPU)
    pooled = task.mixture.cycles["train/more-*.jsonl.gz"].items
    assert sorted(p.query for p in pooled) == sorted(f"q{s}-{i}" for s in range(2) for i in range(3 + s))


def student_and_tasks(tokenizer, *settings: RunSettings) -> tuple[torch.nn.Module | ContrastiveTask, ...]:
    """A random tiny student (seed 0, eval mode; the settings share its model section) and a new CPU ContrastiveTask
    for each of ``settings``, in order. Each draws the same first batches: pass a settings twice for a spare task to
    read them from."""
    torch.manual_seed(0)
    model = build_model(settings[0], ContrastiveTask.model_class, tokenizer).eval()
    return model, *(ContrastiveTask(one, tokenizer, CPU) for one in settings)


def test_similarity_distillation_adds_the_ranking_kl_toward_minilm(data_dir, tmp_path, tokenizer):
    """The teacher term works across dimensions (tiny 32-d student, 384-d teacher) and adds exactly the KL."""
    plain = tiny_settings(data_dir, tmp_path, "contrastive.batch_size=6")
    taught = tiny_settings(data_dir, tmp_path, "contrastive.batch_size=6", "contrastive.similarity_distill_weight=0.5")
    model, plain_task, taught_task, fresh = student_and_tasks(tokenizer, plain, taught, plain)
    assert plain_task.teacher is None and taught_task.teacher is not None
    pairs = fresh.mixture.batch(6)  # a fresh task draws the same first batch
    with torch.no_grad():
        extra = taught_task.loss(model, 0) - plain_task.loss(model, 0)
        queries, passages = [p.query for p in pairs], [p.positive for p in pairs]
        lengths = taught.contrastive.query_max_length, taught.contrastive.passage_max_length
        expected = similarity_distillation_loss(
            taught_task.embed(model, queries, lengths[0]), taught_task.embed(model, passages, lengths[1]),
            taught_task.teacher_embed(queries), taught_task.teacher_embed(passages),
        )
    assert expected > 0.05  # a random student does not rank like MiniLM
    assert extra.item() == pytest.approx(0.5 * expected.item(), rel=1e-4)


def test_graded_pairs_add_the_weighted_cosent_term(data_dir, tmp_path, tokenizer):
    """contrastive.graded_pairs_per_batch: the step loss grows by exactly graded_weight x the CoSENT loss of the
    sampler's batch, embedded by the student."""
    rows = [{"sentence1": f"a man plays {i}", "sentence2": f"a dog eats {i}", "score": i % 5} for i in range(12)]
    (data_dir / "train" / "graded.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    plain = tiny_settings(data_dir, tmp_path, "contrastive.batch_size=6")
    graded = tiny_settings(
        data_dir, tmp_path, "contrastive.batch_size=6", "contrastive.graded_pair_files=[train/graded.jsonl]",
        "contrastive.graded_pairs_per_batch=8", "contrastive.graded_weight=0.5",
    )
    model, plain_task, graded_task, fresh = student_and_tasks(tokenizer, plain, graded, graded)
    assert plain_task.graded is None
    batch = fresh.graded.batch(8)  # a fresh task draws the same first batch
    with torch.no_grad():
        extra = graded_task.loss(model, 0) - plain_task.loss(model, 0)
        length = graded.contrastive.query_max_length
        expected = graded_similarity_loss(
            graded_task.embed(model, [g.first for g in batch], length),
            graded_task.embed(model, [g.second for g in batch], length),
            torch.tensor([g.score for g in batch]),
        )
    assert expected > 0.1
    assert extra.item() == pytest.approx(0.5 * expected.item(), rel=1e-4)


def test_graded_teacher_weight_adds_minilms_ranking_of_the_graded_sentences(data_dir, tmp_path, tokenizer):
    """contrastive.graded_teacher_weight: on top of the CoSENT term, the step loss grows by exactly that weight x the
    KL from MiniLM's to the student's ranking of the graded batch's second sentences for each first sentence, and the
    teacher reads those sentences alone (no pair term asks for it); without graded pairs it is an error."""
    rows = [{"sentence1": f"a man plays the {w}", "sentence2": f"someone is playing a {w}", "score": i % 5}
            for i, w in enumerate(["guitar", "piano", "flute", "drum", "violin", "harp", "cello", "banjo"])]
    (data_dir / "train" / "graded.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    common = ("contrastive.batch_size=6", "contrastive.graded_pair_files=[train/graded.jsonl]",
              "contrastive.graded_pairs_per_batch=8")
    graded = tiny_settings(data_dir, tmp_path, *common)
    taught = tiny_settings(data_dir, tmp_path, *common, "contrastive.graded_teacher_weight=0.5")
    model, graded_task, taught_task, fresh = student_and_tasks(tokenizer, graded, taught, graded)
    assert graded_task.teacher is None and taught_task.teacher is not None
    batch = fresh.graded.batch(8)  # a fresh task draws the same first batch
    firsts, seconds = [g.first for g in batch], [g.second for g in batch]
    read, teacher_embed = [], taught_task.teacher_embed
    taught_task.teacher_embed = lambda texts: read.append(texts) or teacher_embed(texts)
    with torch.no_grad():
        extra = taught_task.loss(model, 0) - graded_task.loss(model, 0)
        assert read == [firsts, seconds]
        length = taught.contrastive.query_max_length
        expected = similarity_distillation_loss(
            taught_task.embed(model, firsts, length), taught_task.embed(model, seconds, length),
            teacher_embed(firsts), teacher_embed(seconds), taught.contrastive.scale,
        )
    assert expected > 0.05  # a random student does not rank like MiniLM
    assert extra.item() == pytest.approx(0.5 * expected.item(), rel=1e-4)
    with pytest.raises(ValueError, match="graded_teacher_weight needs graded_pair_files"):
        ContrastiveTask(tiny_settings(data_dir, tmp_path, "contrastive.graded_teacher_weight=0.5"), tokenizer, CPU)


def test_cosine_distill_weight_adds_the_cosine_differences_wherever_a_ranking_kl_is_taken(
    data_dir, tmp_path, tokenizer
):
    """contrastive.cosine_distill_weight: the step loss grows by exactly that weight x the squared cosine differences
    toward MiniLM on the pair rows of the ranking KL and on the graded batch; without a ranking KL it is an error."""
    rows = [{"sentence1": f"a man plays the {w}", "sentence2": f"someone is playing a {w}", "score": i % 5}
            for i, w in enumerate(["guitar", "piano", "flute", "drum", "violin", "harp", "cello", "banjo"])]
    (data_dir / "train" / "graded.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    common = ("contrastive.batch_size=6", "contrastive.graded_pair_files=[train/graded.jsonl]",
              "contrastive.graded_pairs_per_batch=8", "contrastive.graded_teacher_weight=0.5",
              "contrastive.similarity_distill_weight=0.5")
    kl_only = tiny_settings(data_dir, tmp_path, *common)
    levelled = tiny_settings(data_dir, tmp_path, *common, "contrastive.cosine_distill_weight=0.25")
    model, kl_only_task, levelled_task, fresh = student_and_tasks(tokenizer, kl_only, levelled, kl_only)
    pairs, graded = fresh.mixture.batch(6), fresh.graded.batch(8)  # a fresh task draws the same first batches
    with torch.no_grad():
        extra = levelled_task.loss(model, 0) - kl_only_task.loss(model, 0)
        pair_term = cosine_distillation_loss(*ranking_inputs(fresh, model, pairs))
        firsts, seconds = [g.first for g in graded], [g.second for g in graded]
        length = kl_only.contrastive.query_max_length
        graded_term = cosine_distillation_loss(
            fresh.embed(model, firsts, length), fresh.embed(model, seconds, length),
            fresh.teacher_embed(firsts), fresh.teacher_embed(seconds),
        )
    assert pair_term > 0.05 and graded_term > 0.05  # a random student's cosines are not MiniLM's
    assert extra.item() == pytest.approx(0.25 * (pair_term + graded_term).item(), rel=1e-4)
    with pytest.raises(ValueError, match="cosine_distill_weight needs similarity_distill_weight"):
        ContrastiveTask(tiny_settings(data_dir, tmp_path, "contrastive.cosine_distill_weight=0.5"), tokenizer, CPU)


def cloze_lines(count: int) -> list[str]:
    """Text lines of three or four sentences each, no two sentences alike."""
    return [f"Drug {i} was given to patients with chronic pain. Pain scores fell within {i} weeks in most "
            f"of them. No serious adverse events were seen in trial {i}." + (f" Larger trials of drug {i} are planned."
                                                                            if i % 2 else "")
            for i in range(count)]


def test_cloze_splitter_cuts_one_sentence_out_of_each_qualifying_line():
    """The query is one sentence of the line, the passage the line without it; lines with fewer than three sentences
    or no sentence of six to fifty words, and a line whose passage is already in the batch, give no pair."""
    lines = cloze_lines(40)
    twice = "Short one. Another. Only this sentence has enough words to be drawn."  # one sentence qualifies
    skipped = ["One sentence only, of enough words here.", "Too short. Two. Three.", twice]
    pairs = ClozeSplitter(seed=3)([*lines, twice, *skipped])
    assert pairs[40:] == [("Only this sentence has enough words to be drawn.", "Short one. Another.")]
    pairs = pairs[:40]
    for line, (query, passage) in zip(lines, pairs, strict=True):
        assert query in line and passage == line.replace(query, "").replace("  ", " ").strip()
        assert 6 <= len(query.split()) <= 50
    assert len({query.split()[0] for query, _ in pairs}) > 1  # not always the same sentence
    assert_replays_from_its_state(ClozeSplitter(seed=3), lines)


@pytest.mark.parametrize("degraded", [0.0, 1.0])
def test_cloze_distill_weight_adds_minilms_ranking_of_cloze_passages(data_dir, tmp_path, tokenizer, degraded):
    """contrastive.cloze_distill_weight: the step loss grows by exactly that weight x the KL from MiniLM's to the
    student's ranking of the cloze passages cut from the drawn text lines; with cloze_degraded_share 1 the student
    reads those passages as keyword lists and the teacher reads them intact. Without distill texts, or a degraded
    share without the cloze term, it is an error."""
    with gzip.open(data_dir / "text" / "paragraphs.txt.gz", "wt") as handle:
        handle.write("\n".join(cloze_lines(30)) + "\n")
    common = ("contrastive.batch_size=6", "contrastive.distill_text_files={text/paragraphs.txt.gz: 1.0}",
              "contrastive.distill_texts_per_batch=8")
    plain = tiny_settings(data_dir, tmp_path, *common)
    taught = tiny_settings(data_dir, tmp_path, *common, "contrastive.cloze_distill_weight=0.5",
                           f"contrastive.cloze_degraded_share={degraded}")
    model, plain_task, taught_task, fresh = student_and_tasks(tokenizer, plain, taught, taught)
    assert plain_task.teacher is None and taught_task.teacher is not None
    pairs = fresh.cloze(fresh.texts.sample(8))  # a fresh task draws the same first lines and cuts
    assert len(pairs) == 8
    with torch.no_grad():
        extra = taught_task.loss(model, 0) - plain_task.loss(model, 0)
        queries, passages = [q for q, _ in pairs], [p for _, p in pairs]
        read = PassageDegrader(1.0, seed=0)(passages) if degraded else passages
        assert (read != passages) == bool(degraded)
        lengths = taught.contrastive.query_max_length, taught.contrastive.passage_max_length
        expected = similarity_distillation_loss(
            fresh.embed(model, queries, lengths[0]), fresh.embed(model, read, lengths[1]),
            fresh.teacher_embed(queries), fresh.teacher_embed(passages), taught.contrastive.scale,
        )
    assert expected > 0.05  # a random student does not rank like MiniLM
    assert extra.item() == pytest.approx(0.5 * expected.item(), rel=1e-4)
    with pytest.raises(ValueError, match="cloze_distill_weight needs distill_text_files"):
        ContrastiveTask(tiny_settings(data_dir, tmp_path, "contrastive.cloze_distill_weight=0.5"), tokenizer, CPU)
    with pytest.raises(ValueError, match="cloze_degraded_share needs cloze_distill_weight"):
        ContrastiveTask(tiny_settings(data_dir, tmp_path, *common, "contrastive.cloze_degraded_share=0.5"),
                        tokenizer, CPU)


DISTINCT_WORDS = ["pt" + "".join(chr(97 + int(digit)) for digit in str(i)) for i in range(2000)]


def assert_replays_from_its_state(sampler, batch: list) -> None:
    """Put back to a state saved before a draw, ``sampler`` draws the same again."""
    state = sampler.state_dict()
    first = sampler(batch)
    sampler.load_state_dict(state)
    assert sampler(batch) == first


def test_passage_degrader_degrades_its_share_and_replays_from_its_state():
    texts = [f"The patient {name} took {i % 9} mg of Aspirin, twice a day." for i, name in enumerate(DISTINCT_WORDS)]
    degrader = PassageDegrader(0.25, seed=7)
    out = degrader(texts)
    changed = [new != old for new, old in zip(out, texts, strict=True)]
    assert 0.22 < sum(changed) / len(texts) < 0.28
    assert all(new == degrade_text(old) for new, old, c in zip(out, texts, changed, strict=True) if c)
    assert_replays_from_its_state(degrader, texts[:50])
    for share in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"degraded_passage_share must be in \(0, 1\]"):
            PassageDegrader(share, seed=7)


def test_passage_degrader_never_makes_two_passages_of_a_batch_alike():
    """A keyword list already in the batch (another passage's, or an intact passage that is one) keeps the passage
    intact: the in-batch negatives stay true negatives."""
    batch = ["Dose 5 mg daily.", "dose 10 mg, daily", "aspirin num", "Aspirin 81", "The Heart."]
    assert PassageDegrader(1.0, seed=7)(batch) == ["dose num mg daily", "dose 10 mg, daily", "aspirin num",
                                                   "Aspirin 81", "heart"]


def test_degraded_passage_share_degrades_what_the_student_reads(data_dir, tmp_path, tokenizer, monkeypatch):
    """contrastive.degraded_passage_share=1: the step draws the batch a run without it draws; the student reads the
    keyword lists of the positives and hard negatives (the contrastive term is exactly the in-batch loss on them),
    the teacher the intact text."""
    drugs = ["aspirin", "ibuprofen", "insulin", "metformin", "warfarin", "heparin", "lisinopril", "codeine"]
    records = [{"query": f"What does {d} treat?", "positive": f"The drug {d.title()} treats the patient's pain.",
                "negative": f"Why {d.title()} is not given for the heart."} for d in drugs]
    (data_dir / "train" / "neg.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    common = ("contrastive.batch_size=6", "contrastive.pair_files={train/neg.jsonl: 1.0}")
    plain = tiny_settings(data_dir, tmp_path, *common)
    degraded = tiny_settings(
        data_dir, tmp_path, *common, "contrastive.degraded_passage_share=1.0",
        "contrastive.similarity_distill_weight=0.5",
    )
    monkeypatch.setattr(ContrastiveTask, "_load_teacher", lambda self: "stand-in teacher")  # its embed is replaced
    model, task, plain_task = student_and_tasks(tokenizer, degraded, plain)
    assert plain_task.degrader is None
    pairs = plain_task.mixture.batch(6)  # a fresh task draws the same first batch
    taught = []
    monkeypatch.setattr(task, "teacher_embed", lambda texts: taught.append(texts) or torch.eye(len(texts), 8))
    s = degraded.contrastive
    with torch.no_grad():
        q = task.embed(model, [p.query for p in pairs], s.query_max_length)
        read = [task.embed(model, [degrade_text(getattr(p, side)) for p in pairs], s.passage_max_length)
                for side in ("positive", "negative")]
        contrastive = in_batch_contrastive_loss(q, read[0], s.scale, read[1], s.symmetric)
        ranking = similarity_distillation_loss(
            q, torch.cat(read), torch.eye(6, 8), torch.cat([torch.eye(6, 8), torch.eye(6, 8)]), s.scale
        )
        loss = task.loss(model, 0)
    assert loss.item() == pytest.approx(contrastive.item() + 0.5 * ranking.item(), rel=1e-5)
    assert taught == [[p.query for p in pairs], [p.positive for p in pairs], [p.negative for p in pairs]]


KEYWORD_SOURCE = ["Breast cancer risk in women", "Breast cancer screening", "Drugs for back pain in women",
                  "Do statin drugs cause breast cancer?", "135 women in an aspirin trial", "Breast cancer screening"]


def test_query_shortener_keeps_the_rarest_run_of_content_words():
    """idf over the distinct queries (the repeated one counts once); a bare number has no weight, however rare."""
    shortener = QueryShortener(1.0, KEYWORD_SOURCE, seed=7)
    assert [shortener.keywords(KEYWORD_SOURCE[3], length) for length in (1, 2)] == ["statin", "statin drugs"]
    assert shortener.keywords(KEYWORD_SOURCE[0], 2) == "cancer risk"  # ties "risk women": the first run wins
    assert shortener.keywords(KEYWORD_SOURCE[4], 1) == "aspirin" and "135" not in shortener.idf  # ties "trial"
    assert shortener.idf["screening"] == pytest.approx(math.log(5))
    assert shortener.keywords("Breast cancer?", 2) == ""  # nothing to cut
    long = "Pain, fever, rash, cough, nausea, fatigue, headache, dizziness, chills, sweats, cramps, itching, thirst"
    assert shortener.keywords(long, 1) == ""  # more than max_words content words: left whole


def test_query_shortener_shortens_its_share_drops_their_negatives_and_replays_from_its_state():
    pairs = [Pair(f"Why did {name} take aspirin for a headache?", f"p{i}", f"n{i}")
             for i, name in enumerate(DISTINCT_WORDS)]
    shortener = QueryShortener(0.25, [p.query for p in pairs], seed=7)
    out = shortener(pairs)
    changed = [new.query != old.query for new, old in zip(out, pairs, strict=True)]
    assert 0.22 < sum(changed) / len(pairs) < 0.28
    for new, old, short in zip(out, pairs, changed, strict=True):
        assert new.positive == old.positive and new.group == old.group
        assert (new.negative is None) == short
        assert not short or new.query in {shortener.keywords(old.query, n) for n in (1, 2, 3)}
    assert {len(new.query.split()) for new, short in zip(out, changed, strict=True) if short} == {1, 2, 3}
    assert_replays_from_its_state(shortener, pairs[:50])
    for share in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"keyword_query_share must be in \(0, 1\]"):
            QueryShortener(share, KEYWORD_SOURCE, seed=7)


def test_query_shortener_never_makes_two_queries_of_a_batch_ask_the_same():
    """Keywords already asked in the batch (another query's content words, whatever its case and stop-words, or
    another pair's keywords) keep the pair whole, hard negative included; so does a query with nothing to cut."""
    source = ["What causes glaucoma?", "What causes gout?", "What causes asthma?", "Gout in the knee"]
    pairs = [Pair("What is glaucoma?", "p1", "n1"), Pair("Glaucoma?", "p2", "n2"),
             Pair("What causes glaucoma?", "p3", "n3"), Pair("Gout causes", "p4", "n4"),
             Pair("causes of gout", "p5", "n5")]
    shortened = []
    for seed in range(40):
        out = QueryShortener(1.0, source, seed=seed)(pairs)
        assert out[:3] == pairs[:3]  # nothing to cut, or "glaucoma", which the first two already ask
        asked = [" ".join(content_words(p.query)) for p in out[3:]]
        assert asked in (["gout causes", "causes gout"], ["gout", "causes gout"], ["gout causes", "gout"])
        shortened += [new.query for new, old in zip(out, pairs, strict=True) if new != old]
        assert all(new.negative is None for new, old in zip(out, pairs, strict=True) if new != old)
    assert set(shortened) == {"gout"} and 5 < len(shortened) < 35


def write_drug_pairs(data_dir: Path) -> list[dict]:
    """train/neg.jsonl: eight query/positive/negative records; at keyword_query_share 1 the "Does ... ease pain?"
    queries become keywords and the "What is ...?" ones stay whole (nothing would be cut)."""
    drugs = ["aspirin", "ibuprofen", "insulin", "metformin", "warfarin", "heparin", "lisinopril", "codeine"]
    records = [{"query": f"Does {d} ease pain?" if i % 2 else f"What is {d}?",
                "positive": f"The drug {d.title()} treats the patient's pain.",
                "negative": f"Why {d.title()} is not given for the heart."} for i, d in enumerate(drugs)]
    (data_dir / "train" / "neg.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return records


def test_keyword_query_share_shortens_what_the_student_reads(data_dir, tmp_path, tokenizer):
    """contrastive.keyword_query_share=1: the step draws the batch a run without it draws; the student reads the
    queries the shortener (with the run's seed and queries) gives, and the shortened pairs' hard negatives leave the
    candidates."""
    records = write_drug_pairs(data_dir)
    common = ("contrastive.batch_size=6", "contrastive.pair_files={train/neg.jsonl: 1.0}")
    plain = tiny_settings(data_dir, tmp_path, *common)
    shortened = tiny_settings(data_dir, tmp_path, *common, "contrastive.keyword_query_share=1.0")
    model, task, plain_task = student_and_tasks(tokenizer, shortened, plain)
    assert plain_task.shortener is None
    pairs = plain_task.mixture.batch(6)  # a fresh task draws the same first batch
    s = shortened.contrastive
    pairs = QueryShortener(1.0, [r["query"] for r in records], shortened.seed)(pairs)
    assert 0 < sum(p.negative is None for p in pairs) < 6  # some shortened, some whole ("What is aspirin?")
    with torch.no_grad():
        q = task.embed(model, [p.query for p in pairs], s.query_max_length)
        p = task.embed(model, [p.positive for p in pairs], s.passage_max_length)
        n = task.embed(model, [p.negative for p in pairs if p.negative], s.passage_max_length)
        expected = in_batch_contrastive_loss(q, p, s.scale, n, s.symmetric)
        loss = task.loss(model, 0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def ranking_inputs(task: ContrastiveTask, model, pairs: list) -> tuple[torch.Tensor, ...]:
    """What the ranking KL compares: the student's and the teacher's embeddings of the pairs' queries and of every
    candidate (the positives, then the hard negatives)."""
    s = task.settings
    queries = [p.query for p in pairs]
    candidates = [p.positive for p in pairs] + [p.negative for p in pairs if p.negative]
    student = task.embed(model, queries, s.query_max_length), task.embed(model, candidates, s.passage_max_length)
    return *student, task.teacher_embed(queries), task.teacher_embed(candidates)


def test_similarity_distillation_can_count_the_keyword_queries_alone(data_dir, tmp_path, tokenizer):
    """similarity_distill_keyword_only: the ranking KL toward MiniLM counts only the rows of the pairs whose query
    became keywords, each against every candidate (the whole pairs' hard negatives included). Without keyword queries
    or without a ranking weight the setting is an error, not a silent no-op."""
    records = write_drug_pairs(data_dir)
    common = ("contrastive.batch_size=6", "contrastive.pair_files={train/neg.jsonl: 1.0}")
    keywords = (*common, "contrastive.keyword_query_share=1.0")
    only = ("contrastive.similarity_distill_weight=0.5", "contrastive.similarity_distill_keyword_only=true")
    plain, taught = tiny_settings(data_dir, tmp_path, *keywords), tiny_settings(data_dir, tmp_path, *keywords, *only)
    model, plain_task, task, fresh = student_and_tasks(tokenizer, plain, taught, plain)
    drawn = fresh.mixture.batch(6)  # a fresh task draws the same first batch
    pairs = QueryShortener(1.0, [r["query"] for r in records], plain.seed)(drawn)
    rows = [i for i, pair in enumerate(pairs) if pair.negative is None]  # the shortened pairs (they drop it)
    assert 0 < len(rows) < 6 and all(len(pairs[i].query.split()) < len(drawn[i].query.split()) for i in rows)
    with torch.no_grad():
        extra = task.loss(model, 0) - plain_task.loss(model, 0)
        student_q, student_c, teacher_q, teacher_c = ranking_inputs(task, model, pairs)
        every_row = similarity_distillation_loss(student_q, student_c, teacher_q, teacher_c)
        expected = similarity_distillation_loss(student_q[rows], student_c, teacher_q[rows], teacher_c)
    assert abs(expected.item() - every_row.item()) > 1e-3  # leaving the whole queries out changes the term
    assert extra.item() == pytest.approx(0.5 * expected.item(), rel=1e-4)
    task, plain_task = ContrastiveTask(taught, tokenizer, CPU), ContrastiveTask(plain, tokenizer, CPU)
    task.shortener = plain_task.shortener = lambda batch: batch  # a step where no query becomes keywords
    with torch.no_grad():
        assert task.loss(model, 0).item() == plain_task.loss(model, 0).item()  # adds nothing (no NaN)
    for flags in ((*common, *only), (*keywords, "contrastive.similarity_distill_keyword_only=true")):
        with pytest.raises(ValueError, match="similarity_distill_keyword_only needs keyword_query_share > 0 or "):
            ContrastiveTask(tiny_settings(data_dir, tmp_path, *flags), tokenizer, CPU)


def test_similarity_distill_files_count_every_pair_of_a_file_in_the_keyword_only_kl(data_dir, tmp_path, tokenizer):
    """similarity_distill_files: with similarity_distill_keyword_only and no keyword queries at all, the ranking KL
    toward MiniLM counts exactly the rows of the named file's pairs (here short topic queries), each against every
    candidate. With keyword queries too, each set of rows has a term of its own: the keyword rows' term is unchanged.
    A name not among the pair_files, or the files without the keyword-only switch, is an error."""
    topics = [{"query": d, "positive": f"The drug {d.title()} treats pain.", "qid": f"focus:{d}"}
              for d in ["aspirin", "ibuprofen", "insulin", "metformin"]]
    (data_dir / "train" / "topics.jsonl").write_text("\n".join(json.dumps(r) for r in topics) + "\n")
    write_drug_pairs(data_dir)
    common = ("contrastive.batch_size=8", "contrastive.pair_files={train/neg.jsonl: 1.0, train/topics.jsonl: 1.0}")
    only = ("contrastive.similarity_distill_weight=0.5", "contrastive.similarity_distill_keyword_only=true")
    taught_flag = "contrastive.similarity_distill_files=[train/topics.jsonl]"
    plain, taught = tiny_settings(data_dir, tmp_path, *common), tiny_settings(data_dir, tmp_path, *common, *only,
                                                                               taught_flag)
    model, plain_task, task, fresh = student_and_tasks(tokenizer, plain, taught, plain)
    pairs = fresh.mixture.batch(8)  # a fresh task draws the same first batch
    rows = [i for i, pair in enumerate(pairs) if pair.group.startswith("focus:")]
    assert 0 < len(rows) < len(pairs)
    with torch.no_grad():
        extra = task.loss(model, 0) - plain_task.loss(model, 0)
        student_q, student_c, teacher_q, teacher_c = ranking_inputs(task, model, pairs)
        every_row = similarity_distillation_loss(student_q, student_c, teacher_q, teacher_c)
        expected = similarity_distillation_loss(student_q[rows], student_c, teacher_q[rows], teacher_c)
    assert abs(expected.item() - every_row.item()) > 1e-3  # leaving the other file's rows out changes the term
    assert extra.item() == pytest.approx(0.5 * expected.item(), rel=1e-4)

    keywords = (*common, *only, "contrastive.keyword_query_share=1.0",
                "contrastive.keyword_query_files=[train/neg.jsonl]")
    keyword_only = tiny_settings(data_dir, tmp_path, *keywords)
    both = tiny_settings(data_dir, tmp_path, *keywords, taught_flag)
    fresh = ContrastiveTask(keyword_only, tokenizer, CPU)  # draws the first batch and keywords the runs draw
    pairs = fresh.shortener(fresh.mixture.batch(8))
    assert any(p.negative is None and not p.group.startswith("focus:") for p in pairs)  # some became keywords
    rows = [i for i, pair in enumerate(pairs) if pair.group.startswith("focus:")]
    with torch.no_grad():
        extra = ContrastiveTask(both, tokenizer, CPU).loss(model, 0) - ContrastiveTask(
            keyword_only, tokenizer, CPU).loss(model, 0)
        student_q, student_c, teacher_q, teacher_c = ranking_inputs(task, model, pairs)
        topic_term = similarity_distillation_loss(student_q[rows], student_c, teacher_q[rows], teacher_c)
    assert extra.item() == pytest.approx(0.5 * topic_term.item(), rel=1e-4)  # the keyword rows' term is unchanged
    for flags, error in [
        ((*common, *only, "contrastive.similarity_distill_files=[train/gone.jsonl]"),
         "similarity_distill_files not among the pair_files: ['train/gone.jsonl']"),
        ((*common, "contrastive.similarity_distill_weight=0.5", taught_flag),
         "similarity_distill_files needs similarity_distill_keyword_only"),
    ]:
        with pytest.raises(ValueError, match=re.escape(error)):
            ContrastiveTask(tiny_settings(data_dir, tmp_path, *flags), tokenizer, CPU)


def test_keyword_query_files_keep_the_other_files_queries_whole(data_dir, tmp_path, tokenizer):
    """With keyword_query_files, only those files' pairs have their queries drawn for keywords (all of them at share
    1, where something can be cut); the other files' pairs stay whole, hard negatives included, even one asking a
    question file's query. A name that is not among the pair_files is an error, not a silent no-op."""
    drugs = ["aspirin", "ibuprofen", "insulin", "metformin", "warfarin", "heparin"]
    files = {"questions": [f"Why does {d} ease chronic back pain?" for d in drugs],
             "claims": [f"{d.title()} eases chronic back pain in adults." for d in drugs]}
    for name, queries in files.items():
        lines = [json.dumps({"query": q, "positive": f"p {name} {i}", "negative": f"n {name} {i}"})
                 for i, q in enumerate(queries + [files["questions"][0]] * (name == "claims"))]
        (data_dir / "train" / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    mix = "contrastive.pair_files={train/questions.jsonl: 1.0, train/claims.jsonl: 1.0}"
    settings = tiny_settings(data_dir, tmp_path, "contrastive.batch_size=12", mix,
                             "contrastive.keyword_query_share=1.0",
                             "contrastive.keyword_query_files=[train/questions.jsonl]")
    task = ContrastiveTask(settings, tokenizer, CPU)
    pairs = task.mixture.batch(12)
    out = task.shortener(pairs)
    assert sorted(p.query for p in pairs) == sorted(files["questions"] + files["claims"])  # one of the two twins
    for new, old in zip(out, pairs, strict=True):
        if old.positive.startswith("p claims"):
            assert new == old
        else:
            assert new.negative is None and 1 <= len(new.query.split()) <= 3 and new.query in old.query.lower()
    twin = Pair(files["questions"][0], "p claims 6", "n claims 6")
    assert task.shortener([twin]) == [twin]
    wrong = tiny_settings(data_dir, tmp_path, mix, "contrastive.keyword_query_share=1.0",
                          "contrastive.keyword_query_files=[train/question.jsonl]")
    with pytest.raises(ValueError, match=r"keyword_query_files not among the pair_files: \['train/question.jsonl'\]"):
        ContrastiveTask(wrong, tokenizer, CPU)


def test_a_resume_without_saved_state_reseeds_each_sampler_on_a_stream_of_its_own(data_dir, tmp_path, tokenizer):
    """No state (a checkpoint written by fewer processes): the samplers are re-seeded by step, each differently, so
    e.g. which queries are shortened does not mirror which passages are degraded; the same step re-seeds alike."""
    settings = tiny_settings(data_dir, tmp_path, "contrastive.degraded_passage_share=0.5",
                             "contrastive.keyword_query_share=0.5")
    task = ContrastiveTask(settings, tokenizer, CPU)
    task.resume(3, None)
    draws = {name: [sampler.rng.random() for _ in range(5)] for name, sampler in task._samplers().items()}
    assert set(draws) == {"mixture", "degrader", "shortener"}
    assert len({tuple(d) for d in draws.values()}) == 3
    task.resume(3, None)
    assert draws == {name: [sampler.rng.random() for _ in range(5)] for name, sampler in task._samplers().items()}


def test_chunked_embedding_gives_the_same_gradients_and_keeps_far_less_for_backward(data_dir, tmp_path, tokenizer):
    """contrastive.chunk_size: same loss and gradients as one pass (dropout off), a fraction of the saved tensors."""
    def train_step(chunk_size: int):
        settings = tiny_settings(data_dir, tmp_path, "contrastive.batch_size=8", f"contrastive.chunk_size={chunk_size}")
        model, task = student_and_tasks(tokenizer, settings)
        with saved_for_backward() as saved_bytes:
            loss = task.loss(model, 0)
        loss.backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
        return loss.item(), grads, sum(saved_bytes)

    results = {chunk_size: train_step(chunk_size) for chunk_size in (0, 3)}
    (loss_whole, grads_whole, saved_whole), (loss_chunked, grads_chunked, saved_chunked) = results[0], results[3]
    assert loss_chunked == pytest.approx(loss_whole, rel=1e-5)
    assert grads_whole.keys() == grads_chunked.keys() and len(grads_whole) > 10
    for name, grad in grads_whole.items():
        torch.testing.assert_close(grads_chunked[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert saved_chunked * 10 < saved_whole


@pytest.mark.slow
def test_mlm_stage_follows_curriculum_and_lowers_loss(data_dir, tmp_path):
    out = tmp_path / "mlm"
    settings = tiny_settings(
        data_dir, out, "stage=mlm", "mlm.curriculum=[[16, 25], [32, 5]]", "mlm.tokens_per_batch=128",
        "save_every=100", "learning_rate=0.003",
    )
    final = run(settings)
    losses = [json.loads(line)["loss"] for line in (out / "loss_log.jsonl").read_text().splitlines()]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5  # a repetitive toy corpus is learnt quickly
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(final), trust_remote_code=True)
    assert model.config.vocab_size == AutoTokenizer.from_pretrained(str(final)).vocab_size
    assert not (final / "modules.json").exists()  # an MLM folder is no sentence-embedding model


def test_prompts_are_trained_with_and_saved_for_inference(data_dir, tmp_path, tokenizer):
    """contrastive.query_prompt / passage_prompt: the loss embeds prompt + text, graded pairs with the query prompt,
    and the run's folders carry the prompts, so the Embedder reproduces the training embeddings at inference."""
    from medeir.encode import Embedder
    from modeling_medeir import MedEIRModel

    out = tmp_path / "run"
    prompts = ['contrastive.query_prompt="query: "', 'contrastive.passage_prompt="passage: "']
    settings = tiny_settings(data_dir, out, "contrastive.steps=3", "save_every=2", *prompts)
    final = run(settings)
    for folder in (final, latest_checkpoint(out)):
        saved = json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"]
        assert saved == {"query": "query: ", "document": "passage: "}
    task = ContrastiveTask(settings, tokenizer, CPU)
    model = MedEIRModel.from_pretrained(str(final)).eval()
    texts = ["what treats condition 3?", "drug 3 treats condition 3."]
    with torch.no_grad():
        trained_q = torch.nn.functional.normalize(task.embed_queries(model, texts), dim=-1).numpy()
        trained_p = torch.nn.functional.normalize(task.embed_passages(model, texts), dim=-1).numpy()
        plain = torch.nn.functional.normalize(task.embed(model, texts, 16), dim=-1).numpy()
    embedder = Embedder(final, device="cpu")
    np.testing.assert_allclose(embedder.encode_queries(texts), trained_q, atol=1e-5)
    np.testing.assert_allclose(embedder.encode_documents(texts), trained_p, atol=1e-5)
    assert np.abs(trained_q - plain).max() > 1e-3 and np.abs(trained_q - trained_p).max() > 1e-3


RUN_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if p.name != "tokenizer.yaml")  # not a run config


def test_extended_run_configs_name_the_configs_that_extend_them():
    import yaml

    children: dict[str, list[str]] = {}
    for config in RUN_CONFIGS:
        parent = (yaml.safe_load(config.read_text()) or {}).get("extends")
        if parent:
            children.setdefault(parent, []).append(config.name)
    assert "small-noteacher.yaml" in children
    for parent, names in children.items():
        header = " ".join(line for line in (REPO / "configs" / parent).read_text().splitlines() if line.startswith("#"))
        assert all(name in header for name in names), f"{parent}'s header should say it is extended by {names}"


@pytest.mark.parametrize("config", RUN_CONFIGS, ids=lambda p: p.name)
def test_shipped_run_configs_load(config):
    settings = load_settings(config)
    assert settings.stage in ("mlm", "contrastive")
