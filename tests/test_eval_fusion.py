"""Reciprocal rank fusion: hand-computed scores, ties ranked by document id, every query and document kept."""

import pytest

from medeir.evaluation.fusion import RRF_K, reciprocal_rank_fusion


def test_fused_scores_sum_reciprocal_ranks_over_the_lists_holding_each_document():
    bm25 = {"q": {"a": 12.0, "b": 7.5, "c": 0.3}}
    dense = {"q": {"c": 0.91, "a": 0.40, "d": 0.20}}
    fused = reciprocal_rank_fusion([bm25, dense], k=1)
    assert fused["q"] == pytest.approx({"a": 1 / 2 + 1 / 3, "b": 1 / 3, "c": 1 / 4 + 1 / 2, "d": 1 / 4})
    assert max(fused["q"], key=fused["q"].get) == "a"  # first and second beats third and first
    assert RRF_K == 60
    assert reciprocal_rank_fusion([bm25, dense])["q"]["a"] == pytest.approx(1 / 61 + 1 / 62)


def test_equal_scores_rank_as_trec_eval_ranks_them_whatever_the_dictionary_order():
    one = reciprocal_rank_fusion([{"q": {"y": 1.0, "x": 1.0}}], k=0)
    other = reciprocal_rank_fusion([{"q": {"x": 1.0, "y": 1.0}}], k=0)
    assert one == other == {"q": {"y": 1.0, "x": 0.5}}  # equal scores: the higher document id first


def test_queries_of_either_run_are_kept_and_a_bad_k_is_refused():
    fused = reciprocal_rank_fusion([{"q1": {"a": 1.0}}, {"q2": {"b": 2.0}, "q3": {}}], k=0)
    assert fused == {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {}}
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion([], k=-1)
