"""Retrieval metrics from pytrec_eval (trec_eval): nDCG@10, Recall@100 and MRR@10, reported ×100.

Every query in the qrels counts: a query the run does not answer scores 0 (pytrec_eval alone would drop it).
"""

from __future__ import annotations

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """``(doc_id, score)`` best first, in trec_eval's order: by score, equal scores by document id, higher first."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def cut_run(run: Run, k: int) -> Run:
    """Keep each query's ``k`` first documents in trec_eval's order (so MRR@10 counts the top ten nDCG@10 counts)."""
    return {query_id: dict(ranked(scores)[:k]) for query_id, scores in run.items()}


def top_overlap(run: Run, other: Run, k: int = 10) -> float:
    """Mean over ``run``'s queries of the share (×100) of its first ``k`` documents that are also among ``other``'s
    first ``k`` (trec_eval's order); a query ``other`` lacks shares nothing."""
    if not run:
        raise ValueError("the run is empty")
    def first(scores: dict[str, float]) -> set[str]:
        return {doc_id for doc_id, _ in ranked(scores)[:k]}

    shared = [len(first(scores) & first(other.get(query_id, {}))) for query_id, scores in run.items()]
    return 100.0 * sum(shared) / (k * len(run))


def per_query_measure(qrels: Qrels, run: Run, measure: str, result_key: str) -> dict[str, float]:
    """One pytrec_eval measure for every qrels query, ×100 (a query absent from the run scores 0)."""
    import pytrec_eval  # the eval extra's; the rest of this module (runs, their order) serves search too

    per_query = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(run)
    return {query_id: 100.0 * per_query.get(query_id, {}).get(result_key, 0.0) for query_id in qrels}


def mean_measure(qrels: Qrels, run: Run, measure: str, result_key: str) -> float:
    """Mean of one pytrec_eval measure over all qrels queries, ×100 (queries absent from the run count as 0)."""
    return sum(per_query_measure(qrels, run, measure, result_key).values()) / len(qrels)


def retrieval_metrics(qrels: Qrels, run: Run) -> dict[str, float]:
    """``{"ndcg_at_10", "recall_at_100", "mrr_at_10"}``; MRR@10 is trec_eval's ``recip_rank`` on the run cut at 10."""
    if not qrels:
        raise ValueError("qrels are empty")
    return {
        "ndcg_at_10": mean_measure(qrels, run, "ndcg_cut.10", "ndcg_cut_10"),
        "recall_at_100": mean_measure(qrels, run, "recall.100", "recall_100"),
        "mrr_at_10": mean_measure(qrels, cut_run(run, 10), "recip_rank", "recip_rank"),
    }
