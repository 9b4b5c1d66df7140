"""Medical question-pair similarity: average precision (×100) of cosine similarity for telling similar from dissimilar.

Data: ``train/mqp_pairs.jsonl.gz`` (Curai Medical Question Pairs; fields ``query``, ``positive`` = a doctor-written
similar rewrite, ``negative`` = a related but dissimilar question). The evaluation holds out the records whose
0-based line index ``i`` satisfies ``i % MQP_HOLDOUT_MOD == 0`` (305 of 1,524); training code must skip them, in any
copy of the file, by their questions (each question occurs once):

    from medeir.evaluation.pair_classification import mqp_holdout_questions
    records = [r for r in records if r["query"] not in mqp_holdout_questions()]

Each held-out record gives one similar pair ``(query, positive)`` and one dissimilar pair ``(query, negative)``.
AP ranks all pairs by one cosine scale, as a fixed duplicate threshold would; the within-question accuracy asks only
whether each question's similar rewrite scores above its dissimilar question, as ranking candidates for one question
would. A model can lose AP while keeping the accuracy when its cosines sit at different heights for different questions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from .beir_data import read_jsonl, require_fields
from .data_paths import MQP_FILE
from .encoders import Encoder
from .sts import pair_cosines

MQP_HOLDOUT_MOD = 5


def is_mqp_holdout(index: int) -> bool:
    """True when record ``index`` (0-based, in file order) of mqp_pairs is held out for evaluation."""
    return index % MQP_HOLDOUT_MOD == 0


@lru_cache(maxsize=4)
def mqp_holdout_questions(path: str | Path = MQP_FILE) -> frozenset[str]:
    """The questions (``query``) of the held-out records."""
    return frozenset(record["query"] for index, (_, record) in enumerate(read_jsonl(path)) if is_mqp_holdout(index))


def load_mqp_holdout(
    path: str | Path = MQP_FILE, select: Callable[[int], bool] = is_mqp_holdout
) -> tuple[list[str], list[str], np.ndarray]:
    """The held-out pairs as ``(first texts, second texts, labels)``, label 1 = similar, 0 = dissimilar; ``select``
    picks the records by their index in the file (by default the held-out fifth)."""
    path = Path(path)
    first, second, labels = [], [], []
    for index, (number, record) in enumerate(read_jsonl(path)):
        if not select(index):
            continue
        require_fields(record, ("query", "positive", "negative"), path, number)
        first += [record["query"], record["query"]]
        second += [record["positive"], record["negative"]]
        labels += [1, 0]
    if not labels:
        raise ValueError(f"{path} has no records")
    return first, second, np.asarray(labels)


def pair_average_precision(similarity: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (×100) of ranking pairs by ``similarity`` with label 1 as the positive class."""
    return 100.0 * float(average_precision_score(labels, similarity))


def within_question_accuracy(first: list[str], similarity: np.ndarray, labels: np.ndarray) -> float:
    """Share (×100) of the questions in ``first`` whose every similar pair scores above every dissimilar pair of the
    same question; a question needs at least one pair of each label."""
    similar: dict[str, list[float]] = {}
    dissimilar: dict[str, list[float]] = {}
    for question, score, label in zip(first, similarity, labels, strict=True):
        (similar if label == 1 else dissimilar).setdefault(question, []).append(float(score))
    questions = similar.keys() & dissimilar.keys()
    if not questions:
        raise ValueError("no question has both a similar and a dissimilar pair")
    return 100.0 * sum(min(similar[q]) > max(dissimilar[q]) for q in questions) / len(questions)


def evaluate_pairs(
    encoder: Encoder, path: str | Path = MQP_FILE, select: Callable[[int], bool] = is_mqp_holdout
) -> dict[str, float]:
    """AP and within-question accuracy of cosine on the held-out MQP pairs (``select``: as in ``load_mqp_holdout``);
    questions go through ``encode_queries``."""
    first, second, labels = load_mqp_holdout(path, select)
    similarity = pair_cosines(encoder.encode_queries, first, second)
    return {"cos_sim_ap": pair_average_precision(similarity, labels),
            "cos_sim_question_accuracy": within_question_accuracy(first, similarity, labels)}
