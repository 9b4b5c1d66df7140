"""Development scores, to choose candidates without looking at the test sets.

MQP's held-out test is every fifth record of ``train/mqp_pairs.jsonl.gz`` (indices 0, 5, 10, ...; never trained on).
``split`` holds out the next fifth (indices 1, 6, 11, ...) as a development set, the way the test was drawn.

Usage::

    python scripts/dev_scores.py split DATA_DIR OUT_DIR
    python scripts/dev_scores.py score OUT_DIR MODEL [MODEL ...]

``split`` writes ``OUT_DIR/train/mqp_pairs.jsonl.gz`` (the other three fifths, for training), ``OUT_DIR/dev/
mqp_dev.jsonl`` (the development fifth), copies of ``train/rqe_pairs.jsonl.gz`` and ``train/stsb_train.jsonl``, so a
run config with ``data_dir: OUT_DIR`` trains on MQP without its test or development pairs, ``OUT_DIR/dev/
stsb_dev.jsonl``, and ``OUT_DIR/dev/<file>_sample.jsonl``: up to 1,000 pairs (seed 0, one pair a passage) of each of
MedQuAD's, PubMedQA's and SciFact train's pair files. ``score`` prints, for
each model (a folder, or ``minilm``), AP and within-question accuracy on the development pairs (as ``medeir eval
--task pairs`` computes them on the test), Spearman on STS-B dev, and MRR@10 of finding each sampled query's passage
among its file's sampled passages, all cut at 256 tokens. The shipped
model and its predecessors were trained on the MQP development fifth and on those pairs (a new stage trained with
``data_dir: OUT_DIR`` is not trained on the development fifth), so these scores show how a change moves a model, not
how it generalises.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np

from medeir.evaluation.beir_data import read_jsonl
from medeir.evaluation.encoders import load_encoder
from medeir.evaluation.pair_classification import (
    MQP_HOLDOUT_MOD,
    is_mqp_holdout,
    pair_average_precision,
    within_question_accuracy,
)
from medeir.evaluation.sts import load_sts, pair_cosines, spearman_x100
from medeir.train.tasks import holdout_filter

RETRIEVAL_FILES = ("medquad_pairs.jsonl.gz", "pubmedqa_pairs.jsonl.gz", "scifact_train_pairs.jsonl")
RETRIEVAL_SAMPLE = 1000
COPIED = {"train/rqe_pairs.jsonl.gz": "train", "train/stsb_train.jsonl": "train", "train/stsb_dev.jsonl": "dev"}


def is_dev(index: int) -> bool:
    """Record ``index`` of mqp_pairs belongs to the development fifth (the one after the test's)."""
    return index % MQP_HOLDOUT_MOD == 1


def split(data_dir: Path, out_dir: Path) -> None:
    records = [record for _, record in read_jsonl(data_dir / "train" / "mqp_pairs.jsonl.gz")]
    (out_dir / "train").mkdir(parents=True, exist_ok=True)
    (out_dir / "dev").mkdir(parents=True, exist_ok=True)
    train = [r for i, r in enumerate(records) if not is_mqp_holdout(i) and not is_dev(i)]
    dev = [r for i, r in enumerate(records) if is_dev(i)]
    with gzip.open(out_dir / "train" / "mqp_pairs.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in train)
    (out_dir / "dev" / "mqp_dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dev), encoding="utf-8")
    for name, folder in COPIED.items():
        shutil.copyfile(data_dir / name, out_dir / folder / Path(name).name)
    for name in RETRIEVAL_FILES:  # a sample of training pairs for the retrieval scores
        pairs = [r for _, r in read_jsonl(data_dir / "train" / name) if holdout_filter(name, r)]
        pairs = list({r["positive"]: r for r in pairs}.values())  # one pair per passage
        sample = random.Random(0).sample(pairs, min(RETRIEVAL_SAMPLE, len(pairs)))
        (out_dir / "dev" / f"{name.split('.')[0]}_sample.jsonl").write_text(
            "".join(json.dumps({"query": r["query"], "positive": r["positive"]}) + "\n" for r in sample),
            encoding="utf-8")
    print(f"{len(train)} training and {len(dev)} development MQP records in {out_dir}")


def score(out_dir: Path, models: list[str]) -> None:
    first, second, labels = [], [], []
    for _, record in read_jsonl(out_dir / "dev" / "mqp_dev.jsonl"):
        first += [record["query"], record["query"]]
        second += [record["positive"], record["negative"]]
        labels += [1, 0]
    sts_first, sts_second, gold = load_sts(out_dir / "dev" / "stsb_dev.jsonl")
    for model in models:
        encoder = load_encoder(model, max_length=256)
        similarity = pair_cosines(encoder.encode_queries, first, second)
        labels_array = np.asarray(labels)
        sts = spearman_x100(pair_cosines(encoder.encode_queries, sts_first, sts_second), gold)
        accuracy = within_question_accuracy(first, similarity, labels_array)
        retrieval = {path.stem.removesuffix("_sample"): retrieval_mrr(encoder, path)
                     for path in sorted((out_dir / "dev").glob("*_sample.jsonl"))}
        print(f"{model}: MQP dev AP {pair_average_precision(similarity, labels_array):.2f}, within question "
              f"{accuracy:.2f} ({len(labels) // 2} questions); STS-B dev {sts:.2f}; MRR@10 "
              + ", ".join(f"{name} {value:.2f}" for name, value in retrieval.items()), flush=True)


def retrieval_mrr(encoder, path: Path) -> float:
    """MRR@10 (×100) of each query's own passage among all the file's passages, by cosine."""
    records = [record for _, record in read_jsonl(path)]
    queries = encoder.encode_queries([r["query"] for r in records])
    passages = encoder.encode_documents([r["positive"] for r in records])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    scores = queries @ passages.T
    rank = (scores > np.diag(scores)[:, None]).sum(axis=1)  # documents ahead of the right one
    return 100.0 * float(np.mean(np.where(rank < 10, 1.0 / (rank + 1), 0.0)))


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["help"]
    if command == "split" and len(args) == 2:
        split(Path(args[0]), Path(args[1]))
    elif command == "score" and len(args) >= 2:
        score(Path(args[0]), args[1:])
    else:
        sys.exit(__doc__)
