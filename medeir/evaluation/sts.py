"""Semantic textual similarity: Spearman correlation (×100) between cosine similarity and gold scores (STS-B test)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from .beir_data import read_jsonl, require_fields
from .data_paths import STS_FILE
from .encoders import Encoder


def load_sts(path: str | Path = STS_FILE) -> tuple[list[str], list[str], np.ndarray]:
    """``sentence1``, ``sentence2`` and the gold ``score`` of every pair in a JSON-lines file."""
    path = Path(path)
    first, second, gold = [], [], []
    for number, record in read_jsonl(path):
        require_fields(record, ("sentence1", "sentence2", "score"), path, number)
        first.append(record["sentence1"])
        second.append(record["sentence2"])
        gold.append(float(record["score"]))
    if not gold:
        raise ValueError(f"{path} has no sentence pairs")
    return first, second, np.asarray(gold)


def pairwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two ``[n, dim]`` arrays (normalised here, so unnormalised input is fine)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", a, b)


def pair_cosines(encode: Callable[[list[str]], np.ndarray], first: list[str], second: list[str]) -> np.ndarray:
    """Cosine of each pair ``(first[i], second[i])``, encoding every distinct text once with ``encode``."""
    unique = list(dict.fromkeys(first + second))
    embeddings = dict(zip(unique, encode(unique), strict=True))
    return pairwise_cosine(np.stack([embeddings[t] for t in first]), np.stack([embeddings[t] for t in second]))


def spearman_x100(predicted: np.ndarray, gold: np.ndarray) -> float:
    return 100.0 * float(spearmanr(predicted, gold).statistic)


def evaluate_sts(encoder: Encoder, path: str | Path = STS_FILE) -> dict[str, float]:
    """``{"cos_sim_spearman": ...}``; both sentences of a pair go through ``encode_queries``."""
    first, second, gold = load_sts(path)
    return {"cos_sim_spearman": spearman_x100(pair_cosines(encoder.encode_queries, first, second), gold)}
