"""Exact cosine top-k search with batched matrix products (embeddings are L2-normalised, so cosine = dot product)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .metrics import Run


def top_k(
    queries: np.ndarray, documents: np.ndarray, k: int, *, batch_size: int = 256, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and indices ``[n_queries, min(k, n_docs)]`` of each query's best documents, best first."""
    if queries.ndim != 2 or documents.ndim != 2 or queries.shape[1] != documents.shape[1]:
        raise ValueError(f"expected [n, dim] arrays of equal dim, got {queries.shape} and {documents.shape}")
    k = min(k, documents.shape[0])
    docs = torch.from_numpy(np.ascontiguousarray(documents, dtype=np.float32)).to(device)
    scores, indices = [], []
    for start in range(0, queries.shape[0], batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(queries[start : start + batch_size], dtype=np.float32))
        best = (batch.to(device) @ docs.T).topk(k, dim=1)
        scores.append(best.values.cpu().numpy())
        indices.append(best.indices.cpu().numpy())
    if not scores:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    return np.concatenate(scores), np.concatenate(indices)


def search(
    query_ids: Sequence[str],
    queries: np.ndarray,
    doc_ids: Sequence[str],
    documents: np.ndarray,
    k: int = 100,
    *,
    device: str | torch.device = "cpu",
) -> Run:
    """A run ``{query_id: {doc_id: cosine}}`` holding each query's top ``k`` documents."""
    scores, indices = top_k(queries, documents, k, device=device)
    return {
        query_id: {doc_ids[j]: float(s) for s, j in zip(row_scores, row_indices, strict=True)}
        for query_id, row_scores, row_indices in zip(query_ids, scores, indices, strict=True)
    }
