"""STS, pair AP, clustering and re-ranking wiring on tiny hand-made cases."""

import gzip
import json
import math

import numpy as np
import pytest
from eval_helpers import TableEncoder

from medeir.evaluation.clustering import (
    CLUSTER_LABELS,
    PER_LABEL,
    clustering_indices,
    clustering_sample,
    evaluate_clustering,
    kmeans_v_measure,
)
from medeir.evaluation.encoders import Encoder
from medeir.evaluation.pair_classification import (
    MQP_HOLDOUT_MOD,
    evaluate_pairs,
    is_mqp_holdout,
    load_mqp_holdout,
    pair_average_precision,
    within_question_accuracy,
)
from medeir.evaluation.runner import run_eval
from medeir.evaluation.sts import evaluate_sts, spearman_x100


def write_jsonl(path, records):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    return path


def test_table_encoder_satisfies_the_protocol():
    assert isinstance(TableEncoder(), Encoder)


def test_sts_spearman_is_100_for_a_perfect_ordering_and_minus_100_reversed(tmp_path):
    # sentence pairs whose cosine grows with the gold score: angle between the vectors shrinks with the score
    gold = [0.0, 1.5, 3.0, 5.0]
    angles = [math.pi / 2 * (1 - g / 5) for g in gold]
    table = {f"a{i}": [1, 0, 0] for i in range(4)} | {f"b{i}": [math.cos(t), math.sin(t), 0] for i, t in
                                                      enumerate(angles)}
    path = write_jsonl(tmp_path / "sts.jsonl",
                       [{"sentence1": f"a{i}", "sentence2": f"b{i}", "score": g} for i, g in enumerate(gold)])
    encoder = TableEncoder(table)
    assert evaluate_sts(encoder, path)["cos_sim_spearman"] == pytest.approx(100.0)
    assert encoder.calls == [("query", 8)]  # each distinct sentence encoded once, as a query
    assert spearman_x100(np.array([4.0, 3, 2, 1]), np.array(gold)) == pytest.approx(-100.0)


def test_pair_average_precision_perfect_and_hand_computed():
    labels = np.array([1, 0, 1, 0])
    assert pair_average_precision(np.array([0.9, 0.1, 0.8, 0.2]), labels) == pytest.approx(100.0)
    # ranking by score: 1, 0, 1, 0 -> precision at the hits: 1/1 and 2/3
    assert pair_average_precision(np.array([0.9, 0.8, 0.7, 0.1]), labels) == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_mqp_holdout_keeps_every_fifth_record_as_one_similar_and_one_dissimilar_pair(tmp_path):
    records = [{"query": f"q{i}", "positive": f"p{i}", "negative": f"n{i}"} for i in range(11)]
    path = write_jsonl(tmp_path / "mqp.jsonl.gz", records)
    first, second, labels = load_mqp_holdout(path)
    assert MQP_HOLDOUT_MOD == 5
    assert [is_mqp_holdout(i) for i in range(6)] == [True, False, False, False, False, True]
    assert first == ["q0", "q0", "q5", "q5", "q10", "q10"]
    assert second == ["p0", "n0", "p5", "n5", "p10", "n10"]
    assert labels.tolist() == [1, 0, 1, 0, 1, 0]
    table = {f"q{i}": [1, 0, 0] for i in range(11)} | {f"p{i}": [1, 0.1, 0] for i in range(11)}
    table |= {f"n{i}": [0, 1, 0] for i in range(11)}
    scores = evaluate_pairs(TableEncoder(table), path)
    assert scores["cos_sim_ap"] == pytest.approx(100.0)
    assert scores["cos_sim_question_accuracy"] == pytest.approx(100.0)
    first, _, _ = load_mqp_holdout(path, select=lambda index: index % MQP_HOLDOUT_MOD == 1)  # another fifth
    assert first == ["q1", "q1", "q6", "q6"]


def test_within_question_accuracy_ignores_how_high_each_question_scores():
    first = ["a", "a", "b", "b"]
    labels = np.array([1, 0, 1, 0])
    similarity = np.array([0.9, 0.8, 0.5, 0.4])  # each question right, b's similar pair below a's dissimilar one
    assert within_question_accuracy(first, similarity, labels) == pytest.approx(100.0)
    assert pair_average_precision(similarity, labels) < 100.0
    assert within_question_accuracy(first, np.array([0.9, 0.8, 0.4, 0.5]), labels) == pytest.approx(50.0)
    assert within_question_accuracy(first, np.array([0.9, 0.9, 0.5, 0.4]), labels) == pytest.approx(50.0)  # a tie
    with pytest.raises(ValueError, match="both"):
        within_question_accuracy(["a", "b"], np.array([0.9, 0.1]), np.array([1, 0]))


def test_v_measure_of_separated_clusters_is_100():
    rng = np.random.default_rng(0)
    centers = np.eye(4) * 10
    labels = [f"label{i}" for i in range(4) for _ in range(25)]
    points = np.concatenate([c + rng.normal(scale=0.1, size=(25, 4)) for c in centers])
    assert kmeans_v_measure(points, labels) == pytest.approx(100.0)
    assert kmeans_v_measure(rng.normal(size=(100, 4)), labels) < 20


@pytest.fixture
def medquad_file(tmp_path):
    # "treatment" has exactly PER_LABEL distinct answers (all drawn), one of them repeated verbatim on the last line
    records = [{"query": f"q{label}{i}", "positive": f"answer {label} {i}", "qtype": label}
               for label in (*CLUSTER_LABELS, "research") for i in range(PER_LABEL + 5 * (label != "treatment"))]
    records.append({"query": "again", "positive": "answer treatment 3", "qtype": "treatment"})
    return write_jsonl(tmp_path / "medquad.jsonl.gz", records)


def test_clustering_sample_is_balanced_deterministic_and_its_records_are_listed(medquad_file):
    texts, labels = clustering_sample(medquad_file)
    assert len(texts) == len(set(texts)) == PER_LABEL * len(CLUSTER_LABELS)
    assert {label: labels.count(label) for label in set(labels)} == {label: PER_LABEL for label in CLUSTER_LABELS}
    assert all(text.startswith(f"answer {label} ") for text, label in zip(texts, labels, strict=True))
    with gzip.open(medquad_file, "rt") as handle:
        lines = [json.loads(line) for line in handle]
    held_out = clustering_indices(medquad_file)
    assert {lines[i]["positive"] for i in held_out} == set(texts)
    assert len(held_out) == len(texts) + 1 and len(lines) - 1 in held_out  # the verbatim repeat is held out too


def test_clustering_uses_document_encoding_and_reaches_100_on_label_aligned_embeddings(medquad_file):
    texts, labels = clustering_sample(medquad_file)
    table = {text: np.eye(len(CLUSTER_LABELS))[CLUSTER_LABELS.index(label)] for text, label in zip(texts, labels,
                                                                                                   strict=True)}
    encoder = TableEncoder(table, dim=len(CLUSTER_LABELS))
    assert evaluate_clustering(encoder, medquad_file)["v_measure"] == pytest.approx(100.0)
    assert encoder.calls == [("document", len(texts))]


def test_rerank_and_hybrid_use_bm25_candidates_in_run_eval(tmp_path):
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    docs = {
        "d1": "aspirin relieves fever in adults and also has many other effects described at length here",
        "d2": "aspirin aspirin fever fever",
        "d3": "paracetamol",
    }
    write_jsonl(beir / "corpus.jsonl", [{"_id": k, "title": "", "text": v} for k, v in docs.items()])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "aspirin fever"}])
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    # dense: d3 (not a BM25 candidate: no shared word) first, d1 second; among BM25's {d2, d1} d1 wins.
    table = {"aspirin fever": [1, 0, 0], docs["d3"]: [1, 0, 0], docs["d1"]: [0.8, 0.6, 0], docs["d2"]: [0, 1, 0]}
    summary = run_eval(TableEncoder(table, name="fake"), [beir], ["bm25"], tmp_path / "out",
                       ["retrieval", "rerank", "hybrid"], show_progress=False)
    results = {(r["model"], r["task"]): r["metrics"] for r in summary["results"]}
    second_place = 100 / math.log2(3)
    assert results[("BM25", "retrieval")]["ndcg_at_10"] == pytest.approx(second_place)
    assert results[("fake", "retrieval")]["ndcg_at_10"] == pytest.approx(second_place)
    assert results[("fake", "rerank")] == pytest.approx(
        {"ndcg_at_10": 100.0, "mrr_at_10": 100.0, "bm25_ndcg_at_10": second_place, "dense_ndcg_at_10": second_place})
    # Fused (k = 60): d2 1/61 + 1/63 (BM25 first, dense third) edges out d1 2/62 (second in both); d3 1/61 is third.
    assert results[("fake", "hybrid")] == pytest.approx(
        {"ndcg_at_10": second_place, "recall_at_100": 100.0, "mrr_at_10": 50.0,
         "bm25_overlap_at_10": 20.0})  # d1 and d2 are in both top tens: 2 of 10
    assert summary["model"] == "fake" and summary["models"] == ["fake", "BM25"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["BM25__tiny__retrieval.json", "fake__tiny__hybrid.json", "fake__tiny__rerank.json",
                       "fake__tiny__retrieval.json", "results.json", "results.md"]
    assert "reciprocal rank fusion (k = 60)" in json.loads((tmp_path / "out" / "fake__tiny__hybrid.json").read_text())[
        "fusion"]
    record = json.loads((tmp_path / "out" / "fake__tiny__rerank.json").read_text())
    assert record["machine"]["cores"] >= 1 and "torch" in record["machine"]
    table_md = (tmp_path / "out" / "results.md").read_text()
    assert f"| retrieval | tiny | nDCG@10 | {second_place:.2f} | {second_place:.2f} |" in table_md
    assert f"| hybrid | tiny | nDCG@10 | {second_place:.2f} | – |" in table_md
    assert f"| tiny | fake | {second_place:.2f} | {second_place:.2f} | 100.00 |" in table_md


def test_run_eval_rejects_unknown_tasks_and_baselines(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        run_eval(TableEncoder(), [], [], tmp_path, ["retreival"])
    with pytest.raises(ValueError, match="need at least one BEIR folder"):
        run_eval(TableEncoder(), [], [], tmp_path, ["hybrid"])
    with pytest.raises(ValueError, match="unknown baseline"):
        run_eval(TableEncoder(), [], ["bm42"], tmp_path, ["sts"])
