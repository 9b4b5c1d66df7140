"""Clustering: V-measure (×100) of k-means over embeddings of MedQuAD answers, labelled by question type.

Sample: from ``train/medquad_pairs.jsonl.gz`` (fields ``query``, ``positive`` = answer, ``qtype``), for each label in
``CLUSTER_LABELS`` (the ten most frequent question types) ``PER_LABEL`` records are drawn with
``random.Random(SEED)`` (labels in the order listed, each from its records in file order), i.e. 1,000 answers in
10 balanced clusters. Answers repeated verbatim in the file are drawn at most once. Training code must skip every
record whose answer is in the sample (``clustering_answers``; ``clustering_indices`` lists their lines in a file,
verbatim repeats included):

    from medeir.evaluation.clustering import clustering_answers
    records = [r for r in records if r["positive"] not in clustering_answers()]

k-means uses k = number of labels, ``n_init=10`` and ``random_state=SEED``. Answers go through ``encode_documents``.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import v_measure_score

from .beir_data import read_jsonl, require_fields
from .data_paths import MEDQUAD_FILE
from .encoders import Encoder

CLUSTER_LABELS = (
    "information", "treatment", "symptoms", "frequency", "genetic changes",
    "inheritance", "causes", "exams and tests", "outlook", "susceptibility",
)
PER_LABEL = 100
SEED = 0


@lru_cache(maxsize=4)
def sample_records(path: Path) -> tuple[tuple[int, str, str], ...]:
    """``(record index, answer, qtype)`` of the clustering sample, ordered by label then draw."""
    by_label: dict[str, list[tuple[int, str]]] = {label: [] for label in CLUSTER_LABELS}
    seen: set[str] = set()
    for index, (number, record) in enumerate(read_jsonl(path)):
        require_fields(record, ("positive", "qtype"), path, number)
        if record["qtype"] in by_label and record["positive"] not in seen:
            seen.add(record["positive"])
            by_label[record["qtype"]].append((index, record["positive"]))
    rng = random.Random(SEED)
    sample = []
    for label, candidates in by_label.items():
        if len(candidates) < PER_LABEL:
            raise ValueError(f"{path}: only {len(candidates)} distinct answers of type {label!r}, need {PER_LABEL}")
        sample += [(index, answer, label) for index, answer in rng.sample(candidates, PER_LABEL)]
    return tuple(sample)


def clustering_sample(path: str | Path = MEDQUAD_FILE) -> tuple[list[str], list[str]]:
    """The answers to cluster and their question-type labels."""
    sample = sample_records(Path(path))
    return [answer for _, answer, _ in sample], [label for _, _, label in sample]


@lru_cache(maxsize=4)
def clustering_answers(path: str | Path = MEDQUAD_FILE) -> frozenset[str]:
    """The answers of the clustering sample: training skips every medquad_pairs record with one of them."""
    return frozenset(answer for _, answer, _ in sample_records(Path(path)))


@lru_cache(maxsize=4)
def clustering_indices(path: str | Path = MEDQUAD_FILE) -> frozenset[int]:
    """0-based line indices of the medquad_pairs records whose answer is in the clustering sample (skip in training)."""
    answers = clustering_answers(path)
    return frozenset(index for index, (_, record) in enumerate(read_jsonl(path)) if record["positive"] in answers)


def kmeans_v_measure(embeddings: np.ndarray, labels: list[str]) -> float:
    """V-measure (×100) of k-means clusters (k = number of distinct labels) against ``labels``."""
    k = len(set(labels))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(embeddings)
    return 100.0 * float(v_measure_score(labels, clusters))


def evaluate_clustering(encoder: Encoder, path: str | Path = MEDQUAD_FILE) -> dict[str, float]:
    """``{"v_measure": ...}`` of k-means over the answer embeddings."""
    texts, labels = clustering_sample(path)
    return {"v_measure": kmeans_v_measure(encoder.encode_documents(texts), labels)}
