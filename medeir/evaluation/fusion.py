"""Hybrid retrieval: BM25's and a model's ranked lists merged by reciprocal rank fusion (Cormack et al., 2009).

Each document scores the sum over the lists that hold it of ``1 / (k + rank)``, rank counted from 1, so a document
near the top of either list rises and one high in both rises most; the scores themselves (BM25's unbounded, cosine's
in [-1, 1]) are never compared. ``k = 60`` is the constant of the original paper, not tuned on our sets.
"""

from __future__ import annotations

from collections.abc import Sequence

from .metrics import Run, ranked

RRF_K = 60


def reciprocal_rank_fusion(runs: Sequence[Run], k: int = RRF_K) -> Run:
    """One run holding every query of ``runs`` and each document any of them ranks, scored by reciprocal rank fusion.

    Each run's documents are ranked as trec_eval ranks them (``metrics.ranked``: equal scores by document id), so the
    result does not depend on dictionary order."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    fused: Run = {}
    for run in runs:
        for query_id, scored in run.items():
            scores = fused.setdefault(query_id, {})
            for rank, (doc_id, _) in enumerate(ranked(scored), start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused
