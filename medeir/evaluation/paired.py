"""Is one model's nDCG@10 really above another's? A paired test over the queries of BEIR sets.

Both models rank the same queries, so the per-query differences carry the comparison: their mean is the difference
in nDCG@10, a bootstrap over queries gives its 95% interval, and a sign-flip (paired permutation) test its two-sided
p-value. Usage::

    python -m medeir.evaluation.paired DATA_FOLDER BASE MODEL [MODEL ...]

compares each MODEL with BASE; a model is a model folder or ``minilm``; documents are read at up to 256 tokens, as
``medeir eval`` reads them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .beir_data import BeirDataset, load_beir
from .query_length import per_query_ndcg


@dataclass(frozen=True)
class PairedDifference:
    """Mean of B − A over ``queries`` paired scores, its bootstrap 95% interval and sign-flip p-value."""

    queries: int
    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    p_value: float

    def __str__(self) -> str:
        return (f"{self.queries} queries: {self.mean_a:.2f} -> {self.mean_b:.2f}, difference {self.difference:+.2f} "
                f"(95% interval {self.low:+.2f} to {self.high:+.2f}, p = {self.p_value:.4f})")


def paired_difference(
    a: dict[str, float], b: dict[str, float], *, samples: int = 10_000, seed: int = 0
) -> PairedDifference:
    """Compare two models' scores of the same queries (``{query id: score}``).

    ValueError when the two hold different query ids or none, or a score that is not finite. The p-value counts the
    observed statistic among the sign flips, so it is never below 1 / (samples + 1)."""
    if set(a) != set(b):
        raise ValueError(f"the models scored different queries ({len(set(a) ^ set(b))} not shared)")
    if not a or samples < 1:
        raise ValueError("need at least one query and one sample")
    ids = sorted(a)
    x = np.array([a[q] for q in ids], dtype=np.float64)
    diff = np.array([b[q] for q in ids], dtype=np.float64) - x
    if not np.isfinite(diff).all():
        raise ValueError("a score is not finite")
    rng = np.random.default_rng(seed)
    boot = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    flipped = np.abs((diff * rng.choice([-1.0, 1.0], size=(samples, len(diff)))).mean(axis=1))
    observed = abs(diff.mean())
    p_value = (1 + np.count_nonzero(flipped >= observed - 1e-12)) / (samples + 1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return PairedDifference(len(ids), float(x.mean()), float(x.mean() + diff.mean()), float(diff.mean()),
                            float(low), float(high), float(p_value))


def grouped_differences(
    data: BeirDataset, groups: dict[str, list[str]], base: str, models: list[str]
) -> Iterator[tuple[str, str, PairedDifference]]:
    """``(model, group label, paired difference against base)`` for each model and each non-empty group of query
    ids of ``data``, each model scored once (``per_query_ndcg``)."""
    base_scores = per_query_ndcg(data, base)
    for spec in models:
        scores = per_query_ndcg(data, spec)
        for label, ids in groups.items():
            if ids:
                yield spec, label, paired_difference({q: base_scores[q] for q in ids}, {q: scores[q] for q in ids})


def main(folder: str, base: str, models: list[str]) -> None:
    data = load_beir(folder)
    for spec, _, difference in grouped_differences(data, {"all": list(data.qrels)}, base, models):
        print(f"{folder}: nDCG@10 {base} -> {spec}, {difference}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: python -m medeir.evaluation.paired DATA_FOLDER BASE MODEL [MODEL ...]")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
