"""Two-stage retrieval: re-order each query's first-stage candidates (BM25 top-100) by embedding cosine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .metrics import Run


def rerank(
    candidates: Run,
    query_ids: Sequence[str],
    queries: np.ndarray,
    doc_ids: Sequence[str],
    documents: np.ndarray,
) -> Run:
    """Replace each candidate's first-stage score by the cosine of its (L2-normalised) embeddings with the query's.

    A query without candidates keeps an empty list (it then scores 0).
    """
    query_row = {query_id: i for i, query_id in enumerate(query_ids)}
    doc_row = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    run = {}
    for query_id, scored in candidates.items():
        ids = list(scored)
        cosine = documents[[doc_row[d] for d in ids]] @ queries[query_row[query_id]] if ids else []
        run[query_id] = {doc_id: float(s) for doc_id, s in zip(ids, cosine, strict=True)}
    return run
