"""pytrec_eval wiring: perfect rankings score 100, imperfect ones match the formulas computed here by hand."""

import math

import numpy as np
import pytest

from medeir.evaluation.beir_data import BeirDataset
from medeir.evaluation.document_length import length_thirds
from medeir.evaluation.metrics import cut_run, per_query_measure, retrieval_metrics, top_overlap
from medeir.evaluation.paired import paired_difference
from medeir.evaluation.query_length import length_buckets, mean_by_group
from medeir.evaluation.search import search, top_k
from medeir.evaluation.seen_documents import seen_groups
from medeir.evaluation.segmentation import cut_alike


def test_perfect_ranking_scores_100():
    qrels = {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}}
    run = {"q1": {"d2": 0.9, "d1": 0.8, "d3": 0.1}, "q2": {"d3": 0.5, "d1": 0.4}}
    assert retrieval_metrics(qrels, run) == pytest.approx({"ndcg_at_10": 100.0, "recall_at_100": 100.0,
                                                           "mrr_at_10": 100.0})


def test_imperfect_ranking_matches_hand_computed_ndcg_recall_mrr():
    # q1 ranks a non-relevant doc first, then the grade-1 doc, then the grade-2 doc; d4 is never retrieved.
    qrels = {"q1": {"d1": 1, "d2": 2, "d4": 1}}
    run = {"q1": {"x": 0.9, "d1": 0.8, "d2": 0.7}}
    dcg = 1 / math.log2(3) + 2 / math.log2(4)  # trec_eval gain = grade, discount log2(rank + 1)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    metrics = retrieval_metrics(qrels, run)
    assert metrics["ndcg_at_10"] == pytest.approx(100 * dcg / ideal)
    assert metrics["recall_at_100"] == pytest.approx(100 * 2 / 3)
    assert metrics["mrr_at_10"] == pytest.approx(100 * 1 / 2)


def test_mrr_at_10_ignores_hits_below_rank_10_and_missing_queries_count_zero():
    qrels = {"q1": {"hit": 1}, "q2": {"d": 1}}
    run = {"q1": {f"miss{i}": 1.0 - i / 100 for i in range(10)} | {"hit": 0.5}}  # hit at rank 11
    metrics = retrieval_metrics(qrels, run)
    assert metrics["mrr_at_10"] == 0.0
    assert metrics["recall_at_100"] == pytest.approx(50.0)  # q1 found its doc within 100, q2 (absent) did not
    assert cut_run(run, 10)["q1"].keys() == {f"miss{i}" for i in range(10)}


def test_top_overlap_counts_shared_documents_among_the_first_k_of_each_run():
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"x": 1.0}}
    other = {"q1": {"c": 9.0, "a": 8.0, "z": 7.0, "b": 0.1}}  # b is fourth in other: outside its top 3
    assert top_overlap(run, other, k=3) == pytest.approx(100 * (2 + 0) / (3 * 2))  # q2 is missing from other
    assert top_overlap(run, run, k=1) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="empty"):
        top_overlap({}, other)


def test_a_tie_at_the_cut_off_counts_the_same_document_for_mrr_as_for_ndcg():
    qrels = {"q": {"a-hit": 1}}
    # ranks 1-9 are misses; "a-hit" and "z-miss" tie for rank 10, listed hit first. trec_eval ranks equal scores by
    # document id, higher first, so "z-miss" is tenth and the hit eleventh, for nDCG@10 and for MRR@10 alike.
    run = {"q": {f"miss{i}": 2.0 - i / 100 for i in range(9)} | {"a-hit": 1.0, "z-miss": 1.0}}
    metrics = retrieval_metrics(qrels, run)
    assert metrics["ndcg_at_10"] == 0.0 and metrics["mrr_at_10"] == 0.0
    assert "z-miss" in cut_run(run, 10)["q"] and "a-hit" not in cut_run(run, 10)["q"]
    flipped = {"q": run["q"] | {"z-miss": 0.5}}  # no tie: the hit is tenth for both
    assert retrieval_metrics(qrels, flipped)["mrr_at_10"] == pytest.approx(10.0)
    assert retrieval_metrics(qrels, flipped)["ndcg_at_10"] > 0


def test_top_k_matches_brute_force_across_query_batches():
    rng = np.random.default_rng(0)
    queries, docs = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(20, 5)).astype(np.float32)
    scores, indices = top_k(queries, docs, 4, batch_size=3)
    expected = np.argsort(-(queries @ docs.T), axis=1)[:, :4]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ docs.T, expected, axis=1), rtol=1e-5)


def test_search_returns_ids_and_caps_k_at_corpus_size():
    queries = np.array([[1.0, 0.0]], dtype=np.float32)
    docs = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    run = search(["q"], queries, ["a", "b"], docs, k=10)
    assert run == {"q": {"b": pytest.approx(1.0), "a": pytest.approx(0.0)}}


def ndcg_by_query_length(queries, qrels, run):
    """What ``python -m medeir.evaluation.query_length`` prints for one run: mean nDCG@10 per length bucket."""
    scores = per_query_measure(qrels, run, "ndcg_cut.10", "ndcg_cut_10")
    return mean_by_group(scores, length_buckets(queries, list(scores)))


def test_ndcg_by_query_length_averages_each_bucket_over_its_queries():
    """Two keyword queries (one perfect, one with its document at rank 2), a 5-word query that misses, a 7-word query
    absent from the run: each bucket holds its own queries' mean."""
    queries = {"k1": "prunes", "k2": "folic acid", "m": "do statins cause breast cancer", "l": "a b c d e f g"}
    qrels = {"k1": {"d1": 1}, "k2": {"d2": 1}, "m": {"d3": 1}, "l": {"d4": 1}}
    run = {"k1": {"d1": 0.9}, "k2": {"x": 0.9, "d2": 0.8}, "m": {"x": 0.5}}
    assert ndcg_by_query_length(queries, qrels, run) == {
        "1-3 words": (2, pytest.approx((100 + 100 / math.log2(3)) / 2)),
        "4-6 words": (1, 0.0),
        "7+ words": (1, 0.0),
    }
    assert "4-6 words" not in ndcg_by_query_length({**queries, "m": "statins"}, qrels, run)


def test_cut_alike_splits_queries_by_whether_both_tokenizers_give_the_same_pieces():
    class Pieces:
        def __init__(self, vocab):
            self.vocab = vocab

        def tokenize(self, text):
            return [piece for word in text.lower().split() for piece in self.vocab.get(word, [word])]

    ours = Pieces({"cauliflower": ["caul", "##ifl", "##ower"]})
    teacher = Pieces({"cauliflower": ["ca", "##uli", "##flower"]})
    queries = {"a": "Cauliflower soup", "b": "kidney beans", "c": "beans"}
    assert cut_alike(queries, ["a", "b", "c"], ours, teacher) == {"cut alike": ["b", "c"], "cut otherwise": ["a"]}


def test_paired_difference_of_identical_scores_is_zero_and_not_significant():
    scores = {f"q{i}": float(i % 7) * 10 for i in range(40)}
    result = paired_difference(scores, dict(scores), samples=2000)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0 and result.queries == 40


def test_paired_difference_finds_a_shift_on_every_query():
    a = {f"q{i}": float(i) for i in range(30)}
    b = {q: s + 2.0 for q, s in a.items()}
    result = paired_difference(a, b, samples=2000)
    assert result.difference == pytest.approx(2.0) and result.low == pytest.approx(2.0)
    assert result.mean_b - result.mean_a == pytest.approx(2.0)
    assert result.p_value == pytest.approx(1 / 2001)  # only all-plus or all-minus flips reach |mean| 2: ~2^-29
    assert paired_difference(b, a, samples=2000).difference == pytest.approx(-2.0)


def test_paired_difference_of_one_lucky_query_is_not_significant():
    a = {f"q{i}": 50.0 for i in range(30)}
    b = {**a, "q0": 100.0}  # +50 on one query: mean +1.67, but a coin flip in sign
    result = paired_difference(a, b, samples=4000)
    assert result.difference == pytest.approx(50 / 30)
    assert result.low == 0.0 and result.p_value == pytest.approx(1.0)


def test_paired_difference_interval_has_the_normal_width_on_noisy_scores():
    rng = np.random.default_rng(1)
    a = {f"q{i}": 50.0 for i in range(400)}
    diffs = rng.normal(0.5, 4.0, size=400)
    result = paired_difference(a, {q: 50.0 + d for q, d in zip(a, diffs, strict=True)}, samples=4000)
    half_width = 1.96 * diffs.std(ddof=1) / np.sqrt(400)
    assert result.low < result.difference < result.high
    assert (result.high - result.low) / 2 == pytest.approx(half_width, rel=0.1)
    assert result.difference == pytest.approx(diffs.mean())


def test_paired_difference_rejects_unpaired_or_unusable_scores():
    with pytest.raises(ValueError, match="different queries"):
        paired_difference({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="at least one query"):
        paired_difference({}, {})
    with pytest.raises(ValueError, match="at least one query"):
        paired_difference({"a": 1.0}, {"a": 2.0}, samples=0)
    with pytest.raises(ValueError, match="not finite"):
        paired_difference({"a": 1.0, "b": 2.0}, {"a": float("nan"), "b": 2.0})


def test_seen_groups_split_queries_by_whether_a_relevant_document_was_a_training_positive():
    corpus = {"d1": "Statins. Statins lower cholesterol.", "d2": "Aspirin thins blood.", "d3": "Folate and pregnancy."}
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}, "q3": {"d3": 1}, "q4": {"d2": 0, "d3": 1}}
    data = BeirDataset("toy", corpus, {q: q for q in qrels}, qrels)
    positives = {"Statins. Statins lower cholesterol.", "Aspirin thins blood.", "Not in the corpus."}
    # q4 holds the seen d2 with grade 0 only: a judged non-relevant document does not make a query seen
    assert seen_groups(data, positives) == {"seen": ["q1", "q2"], "unseen": ["q3", "q4"]}
    assert seen_groups(data, set()) == {"seen": [], "unseen": ["q1", "q2", "q3", "q4"]}


def test_length_thirds_sort_queries_by_their_relevant_documents_mean_length():
    corpus = {f"d{n}": " ".join(["word"] * n) for n in (2, 4, 6, 8, 10, 30)}
    qrels = {"q1": {"d10": 1}, "q2": {"d2": 1}, "q3": {"d4": 1, "d8": 2}, "q4": {"d30": 1, "d2": 0},
             "q5": {"d8": 1}, "q6": {"d4": 1}, "q7": {"d2": 0}}
    data = BeirDataset("toy", corpus, {q: q for q in qrels}, qrels)
    # mean words of the relevant documents: q2 2, q6 4, q3 6, q5 8, q1 10, q4 30 (its grade-0 d2 does not count);
    # q7 has no relevant document and falls in no group
    assert length_thirds(data) == {"documents of 2-4 words": ["q2", "q6"], "documents of 6-8 words": ["q3", "q5"],
                                   "documents of 10-30 words": ["q1", "q4"]}
    two = BeirDataset("toy", corpus, {"q1": "q1", "q2": "q2"}, {"q1": {"d4": 1}, "q2": {"d2": 1}})
    assert length_thirds(two) == {"documents of 2-2 words": ["q2"], "documents of 4-4 words": ["q1"]}
