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
MedQuAD's, PubMedQA's and SciFact train's pair files. It also writes
``OUT_DIR/dev/conclusions``, a retrieval set no contrastive stage here trained on (BEIR layout; ``write_conclusions``),
and ``OUT_DIR/dev/conclusions-degraded``, the same with nfcorpus-degraded's keyword-list documents. ``score`` prints,
for each model (a folder, or ``minilm``), AP and within-question accuracy on the development pairs (as ``medeir eval
--task pairs`` computes them on the test), Spearman on STS-B dev, MRR@10 of finding each sampled query's passage
among its file's sampled passages, and nDCG@10 on the two conclusion sets, all cut at 256 tokens. The shipped
model and its predecessors were trained on the MQP development fifth and on those pairs (a new stage trained with
``data_dir: OUT_DIR`` is not trained on the development fifth), so those scores show how a change moves a model, not
how it generalises; the conclusion sets do show that. Two models are compared query by query on them with
``python -m medeir.evaluation.paired OUT_DIR/dev/conclusions BASE MODEL``. A folder split before the conclusion sets
existed must be split again (``split`` rewrites the same MQP files) before ``score`` reads it.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

from medeir.evaluation.beir_data import load_beir, read_jsonl, write_jsonl
from medeir.evaluation.degrade import degrade_beir
from medeir.evaluation.encoders import Encoder, load_encoder
from medeir.evaluation.metrics import retrieval_metrics
from medeir.evaluation.pair_classification import MQP_HOLDOUT_MOD, evaluate_pairs, is_mqp_holdout
from medeir.evaluation.query_length import encoder_ndcg
from medeir.evaluation.search import search
from medeir.evaluation.sts import evaluate_sts
from medeir.train.conclusion_pairs import conclusion_splits
from medeir.train.tasks import holdout_filter

RETRIEVAL_FILES = ("medquad_pairs.jsonl.gz", "pubmedqa_pairs.jsonl.gz", "scifact_train_pairs.jsonl")
RETRIEVAL_SAMPLE = 1000
CONCLUSION_SETS = ("conclusions", "conclusions-degraded")  # as written, and with keyword-list documents
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
    written, degraded = (out_dir / "dev" / name for name in CONCLUSION_SETS)
    conclusions = write_conclusions(data_dir, written)
    degrade_beir(written, degraded)
    print(f"{len(train)} training and {len(dev)} development MQP records, {conclusions} conclusion queries in "
          f"{out_dir}")


def write_conclusions(data_dir: Path, out: Path) -> int:
    """Write a BEIR folder ``out`` whose queries are the last sentences of the staged PubMed abstracts that no title
    -> abstract pair file holds (so no contrastive stage here trained on them; the MLM text of
    ``configs/base-6b-mlm.yaml`` includes them) and whose documents are those abstracts without that sentence: query
    i's one relevant document is abstract i (``medeir.train.conclusion_pairs`` says which abstracts qualify: the
    queries are mostly findings, as SciFact's claims are). Returns the number of queries."""
    splits = conclusion_splits(data_dir, paired=False)
    corpus = [{"_id": f"a{number}", "title": "", "text": rest} for number, rest, _ in splits]
    queries = [{"_id": f"q{number}", "text": last} for number, _, last in splits]
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "corpus.jsonl", corpus)
    write_jsonl(out / "queries.jsonl", queries)
    rows = [f"{q['_id']}\t{d['_id']}\t1" for q, d in zip(queries, corpus, strict=True)]
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return len(queries)


def score(out_dir: Path, models: list[str]) -> None:
    dev = out_dir / "dev"
    for model in models:
        encoder = load_encoder(model, max_length=256)
        pairs = evaluate_pairs(encoder, dev / "mqp_dev.jsonl", select=lambda index: True)  # every record is dev
        sts = evaluate_sts(encoder, dev / "stsb_dev.jsonl")["cos_sim_spearman"]
        retrieval = {path.stem.removesuffix("_sample"): retrieval_mrr(encoder, path)
                     for path in sorted(dev.glob("*_sample.jsonl"))}
        unseen = {name: conclusion_ndcg(encoder, dev / name) for name in CONCLUSION_SETS}
        print(f"{model}: MQP dev AP {pairs['cos_sim_ap']:.2f}, within question "
              f"{pairs['cos_sim_question_accuracy']:.2f}; STS-B dev {sts:.2f}; MRR@10 "
              + ", ".join(f"{name} {value:.2f}" for name, value in retrieval.items()) + "; nDCG@10 "
              + ", ".join(f"{name} {value:.2f}" for name, value in unseen.items()), flush=True)


def conclusion_ndcg(encoder: Encoder, folder: Path) -> float:
    """nDCG@10 (×100) on the BEIR folder ``folder``, scored as the paired test scores it."""
    scores = encoder_ndcg(load_beir(folder), encoder)
    return sum(scores.values()) / len(scores)


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
