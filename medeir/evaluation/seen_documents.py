"""nDCG@10 on the queries whose relevant documents a model was trained to find, and on the rest.

SciFact's training and test claims search one corpus, so many test claims' relevant abstracts are positives of
``train/scifact_train_pairs.jsonl`` (other claims' positives), which the shipped model trained on. Splitting the
queries by that shows how much of a score comes from documents seen in training. Usage::

    python -m medeir.evaluation.seen_documents DATA_FOLDER PAIR_FILE BASE MODEL [MODEL ...]

PAIR_FILE is a training pair file (JSON lines with ``positive``, optionally gzip'd); a document counts as seen when
its title + text is a positive there. Prints, for each group, each MODEL's nDCG@10 against BASE's with the paired
difference (``medeir.evaluation.paired``); a model is a model folder or ``minilm``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .beir_data import BeirDataset, load_beir, read_jsonl
from .paired import grouped_differences


def seen_groups(data: BeirDataset, positives: set[str]) -> dict[str, list[str]]:
    """``{"seen": ids, "unseen": ids}``: the qrels queries with at least one relevant document (grade > 0) whose text
    is among ``positives``, and the others."""
    seen_docs = {doc_id for doc_id, text in data.corpus.items() if text in positives}
    query_ids = sorted(data.qrels)
    seen = {q for q in query_ids if any(d in seen_docs for d, grade in data.qrels[q].items() if grade > 0)}
    return {"seen": [q for q in query_ids if q in seen], "unseen": [q for q in query_ids if q not in seen]}


def main(folder: str, pair_file: str, base: str, models: list[str]) -> None:
    data = load_beir(folder)
    positives = {record["positive"] for _, record in read_jsonl(Path(pair_file)) if "positive" in record}
    for spec, label, difference in grouped_differences(data, seen_groups(data, positives), base, models):
        print(f"{folder}, relevant document {label} in training: {base} -> {spec}, {difference}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit("usage: python -m medeir.evaluation.seen_documents DATA_FOLDER PAIR_FILE BASE MODEL [MODEL ...]")
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
