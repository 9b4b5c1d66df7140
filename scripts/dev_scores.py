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

import random
import shutil
import sys
from pathlib import Path

from medeir.evaluation.beir_data import read_jsonl, write_jsonl
from medeir.evaluation.encoders import load_encoder
from medeir.evaluation.metrics import retrieval_metrics
from medeir.evaluation.pair_classification import MQP_HOLDOUT_MOD, evaluate_pairs, is_mqp_holdout
from medeir.evaluation.search import search
from medeir.evaluation.sts import evaluate_sts
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
    write_jsonl(out_dir / "train" / "mqp_pairs.jsonl.gz", train)
    write_jsonl(out_dir / "dev" / "mqp_dev.jsonl", dev)
    for name, folder in COPIED.items():
        shutil.copyfile(data_dir / name, out_dir / folder / Path(name).name)
    for name in RETRIEVAL_FILES:  # a sample of training pairs for the retrieval scores
        pairs = [r for _, r in read_jsonl(data_dir / "train" / name) if holdout_filter(name, r)]
        pairs = list({r["positive"]: r for r in pairs}.values())  # one pair per passage
        sample = random.Random(0).sample(pairs, min(RETRIEVAL_SAMPLE, len(pairs)))
        write_jsonl(out_dir / "dev" / f"{name.split('.')[0]}_sample.jsonl",
                    [{"query": r["query"], "positive": r["positive"]} for r in sample])
    print(f"{len(train)} training and {len(dev)} development MQP records in {out_dir}")


def score(out_dir: Path, models: list[str]) -> None:
    dev = out_dir / "dev"
    for model in models:
        encoder = load_encoder(model, max_length=256)
        pairs = evaluate_pairs(encoder, dev / "mqp_dev.jsonl", select=lambda index: True)  # every record is dev
        sts = evaluate_sts(encoder, dev / "stsb_dev.jsonl")["cos_sim_spearman"]
        retrieval = {path.stem.removesuffix("_sample"): retrieval_mrr(encoder, path)
                     for path in sorted(dev.glob("*_sample.jsonl"))}
        print(f"{model}: MQP dev AP {pairs['cos_sim_ap']:.2f}, within question "
              f"{pairs['cos_sim_question_accuracy']:.2f}; STS-B dev {sts:.2f}; MRR@10 "
              + ", ".join(f"{name} {value:.2f}" for name, value in retrieval.items()), flush=True)


def retrieval_mrr(encoder, path: Path) -> float:
    """MRR@10 (×100, trec_eval's) of each query's own passage among all the file's passages, by cosine."""
    records = [record for _, record in read_jsonl(path)]
    ids = [str(i) for i in range(len(records))]
    queries = encoder.encode_queries([r["query"] for r in records])
    passages = encoder.encode_documents([r["positive"] for r in records])
    run = search(ids, queries, ids, passages, k=10)
    return retrieval_metrics({i: {i: 1} for i in ids}, run)["mrr_at_10"]


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["help"]
    if command == "split" and len(args) == 2:
        split(Path(args[0]), Path(args[1]))
    elif command == "score" and len(args) >= 2:
        score(Path(args[0]), args[1:])
    else:
        sys.exit(__doc__)
