"""Medical question pairs as graded pairs: MQP's similar and dissimilar rewrites placed on STS-B's 0-5 scale.

The MQP task (``medeir eval``, pairs) scores one threshold over every question pair, so the cosines of similar pairs
must sit above those of dissimilar pairs across questions, not only within each question as the in-batch contrastive
loss asks. As graded pairs (``contrastive.graded_pair_files``) they join STS-B train's pairs in the CoSENT loss, which
orders every two pairs of a batch by their scores. Their two scores come from the teacher: all-MiniLM-L6-v2's mean
cosine over MQP's similar (dissimilar) training pairs, read off as the STS-B train score whose pairs MiniLM gives that
mean cosine (linear between the means of half-point score bins).

``python -m medeir.train.graded_mqp DATA_DIR OUTPUT_DIR`` reads ``train/mqp_pairs.jsonl.gz`` and
``train/stsb_train.jsonl`` under ``DATA_DIR`` and writes ``train/mqp_graded.jsonl`` under ``OUTPUT_DIR``: for each
MQP record not held out for evaluation, its (question, similar rewrite) and (question, dissimilar question) pairs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medeir.evaluation.beir_data import read_jsonl, write_jsonl
from medeir.evaluation.sts import pair_cosines

from .data import read_scored_pairs
from .tasks import holdout_filter

SOURCE = Path("train") / "mqp_pairs.jsonl.gz"
STS_SOURCE = Path("train") / "stsb_train.jsonl"
TARGET = Path("train") / "mqp_graded.jsonl"

Encode = Callable[[list[str]], np.ndarray]


def score_for_cosine(cosines: np.ndarray, scores: np.ndarray, cosine: float, bin_width: float = 0.5) -> float:
    """The graded score whose pairs have mean ``cosine``: linear between the (mean cosine, mean score) points of
    ``bin_width``-wide score bins, clipped to the outer bins. The bins' mean cosines must rise with the score."""
    bins = np.floor(scores / bin_width)
    points = [(cosines[bins == b].mean(), scores[bins == b].mean()) for b in np.unique(bins)]
    x, y = np.array(points).T
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"mean cosines do not rise with the score: {np.round(x, 3).tolist()}")
    return float(np.interp(cosine, x, y))


def graded_mqp_records(records: list[dict], similar: float, dissimilar: float) -> list[dict]:
    """Two graded pairs per MQP record: (query, positive) scored ``similar`` and (query, negative) ``dissimilar``."""
    out = []
    for record in records:
        out.append({"sentence1": record["query"], "sentence2": record["positive"], "score": similar})
        out.append({"sentence1": record["query"], "sentence2": record["negative"], "score": dissimilar})
    return out


def teacher_scores(records: list[dict], sts_file: Path, encode: Encode) -> tuple[float, float]:
    """(similar, dissimilar): the STS scores matching ``encode``'s mean cosine over the records' two pair kinds."""
    sts = read_scored_pairs(sts_file)
    sts_cosines = pair_cosines(encode, [p.first for p in sts], [p.second for p in sts])
    sts_scores = np.array([p.score for p in sts])
    count = len(records)
    cosines = pair_cosines(encode, [r["query"] for r in records] * 2,
                           [r["positive"] for r in records] + [r["negative"] for r in records])
    similar, dissimilar = (score_for_cosine(sts_cosines, sts_scores, float(c.mean()))
                           for c in (cosines[:count], cosines[count:]))
    return similar, dissimilar


def write_graded_mqp(data_dir: str | Path, output_dir: str | Path, encode: Encode) -> tuple[int, float, float]:
    """Write ``TARGET`` under ``output_dir`` from ``data_dir``'s MQP training records (hold-out left out), scored
    by ``encode`` (the teacher's query encoder); returns (pairs written, similar score, dissimilar score)."""
    source = Path(data_dir) / SOURCE
    records = [r for _, r in read_jsonl(source) if holdout_filter(source.name, r)]
    if not records:
        raise ValueError(f"{source} has no training records")
    similar, dissimilar = teacher_scores(records, Path(data_dir) / STS_SOURCE, encode)
    pairs = graded_mqp_records(records, round(similar, 2), round(dissimilar, 2))
    write_jsonl(Path(output_dir) / TARGET, pairs)
    return len(pairs), similar, dissimilar


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m medeir.train.graded_mqp DATA_DIR OUTPUT_DIR")
    from medeir.evaluation.encoders import load_encoder

    count, similar, dissimilar = write_graded_mqp(sys.argv[1], sys.argv[2], load_encoder("minilm").encode_queries)
    print(f"{count} graded pairs (similar {similar:.2f}, dissimilar {dissimilar:.2f}) written to "
          f"{Path(sys.argv[2]) / TARGET}")
