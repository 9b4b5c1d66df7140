"""Graded MQP pairs: the teacher's cosines map MQP's two pair kinds onto STS-B's scale; hold-outs are left out."""

import gzip
import json

import numpy as np
import pytest

from medeir.evaluation.data_paths import MQP_FILE
from medeir.evaluation.pair_classification import mqp_holdout_questions
from medeir.train.data import ScoredPairSampler
from medeir.train.graded_mqp import TARGET, score_for_cosine, write_graded_mqp
from medeir.train.tasks import holdout_filter


def test_score_for_cosine_interpolates_between_bin_means_and_clips_outside():
    scores = np.array([0.0, 0.2, 1.0, 1.2, 4.0, 4.4])  # bins [0, 0.5), [1, 1.5), [4, 4.5): means 0.1, 1.1, 4.2
    cosines = np.array([0.1, 0.3, 0.5, 0.5, 0.9, 0.9])  # bin means 0.2, 0.5, 0.9
    assert score_for_cosine(cosines, scores, 0.5) == pytest.approx(1.1)
    assert score_for_cosine(cosines, scores, 0.7) == pytest.approx(1.1 + 0.5 * 3.1)
    assert score_for_cosine(cosines, scores, 0.0) == pytest.approx(0.1)
    assert score_for_cosine(cosines, scores, 1.0) == pytest.approx(4.2)
    with pytest.raises(ValueError, match="do not rise"):
        score_for_cosine(cosines[::-1].copy(), scores, 0.5)


def test_written_pairs_leave_out_the_hold_out_and_carry_the_teacher_scores(tmp_path):
    held = min(mqp_holdout_questions(MQP_FILE))
    mqp = [
        {"query": held, "positive": "held rewrite", "negative": "held other"},
        {"query": "Is ibuprofen safe daily?", "positive": "Can I take ibuprofen every day?",
         "negative": "What is ibuprofen?"},
        {"query": "Does flu cause fever?", "positive": "Is fever a flu symptom?", "negative": "Who gets flu shots?"},
    ]
    sts = [{"sentence1": f"s{i}", "sentence2": f"t{i}", "score": score} for i, score in enumerate([0.0, 2.0, 4.0])]
    (tmp_path / "train").mkdir()
    with gzip.open(tmp_path / "train" / "mqp_pairs.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in mqp)
    (tmp_path / "train" / "stsb_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sts))
    # A stand-in teacher: the cosine of a pair is fixed by its second text (unit vectors at set angles).
    cosine_of = {"t0": 0.1, "t1": 0.5, "t2": 0.9, "Can I take ibuprofen every day?": 0.8,
                 "Is fever a flu symptom?": 0.6, "What is ibuprofen?": 0.3, "Who gets flu shots?": 0.3}

    def encode(texts):
        return np.array([[c, np.sqrt(1 - c * c)] if (c := cosine_of.get(t)) is not None else [1.0, 0.0]
                         for t in texts])

    count, similar, dissimilar = write_graded_mqp(tmp_path, tmp_path / "out", encode)
    assert count == 4  # two training records, two pairs each; the held-out question is not written
    assert similar == pytest.approx(3.0) and dissimilar == pytest.approx(1.0)  # mean cosines 0.7 and 0.3
    pairs = ScoredPairSampler([tmp_path / "out" / TARGET], seed=0).pairs
    assert [(p.first, p.score) for p in pairs] == [
        ("Is ibuprofen safe daily?", 3.0), ("Is ibuprofen safe daily?", 1.0),
        ("Does flu cause fever?", 3.0), ("Does flu cause fever?", 1.0),
    ]
    assert held not in {p.first for p in pairs}
    # A graded pair naming a held-out question is dropped by the training loader, whatever file it comes in.
    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text(json.dumps({"sentence1": "ok", "sentence2": held, "score": 1.0}) + "\n"
                      + json.dumps({"sentence1": "ok", "sentence2": "fine", "score": 2.0}) + "\n")
    assert [(p.first, p.second) for p in ScoredPairSampler([leaked], seed=0, keep=holdout_filter).pairs] == [
        ("ok", "fine")]
