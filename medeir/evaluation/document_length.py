"""nDCG@10 by the length of the relevant documents: is a model's lead or loss a matter of long documents?

The queries of a BEIR set fall into thirds by the mean length, in whitespace-separated words of title + text, of
their relevant documents (grade > 0). Usage::

    python -m medeir.evaluation.document_length DATA_FOLDER BASE MODEL [MODEL ...]

prints, for each third, each MODEL's nDCG@10 against BASE's with the paired difference (``medeir.evaluation.paired``);
a model is a model folder or ``minilm``; documents are read at up to 256 tokens, as ``medeir eval`` reads them.
"""

from __future__ import annotations

import sys
from itertools import pairwise

from .beir_data import BeirDataset, load_beir
from .paired import grouped_differences


def length_thirds(data: BeirDataset) -> dict[str, list[str]]:
    """``{"documents of A-B words": query ids}``: the queries with a relevant document, sorted by their relevant
    documents' mean word count (ties by id) and cut into three groups as even as can be (shortest first)."""
    words = {}
    for query, judged in data.qrels.items():
        relevant = [len(data.corpus[doc].split()) for doc, grade in judged.items() if grade > 0]
        if relevant:
            words[query] = sum(relevant) / len(relevant)
    ordered = sorted(words, key=lambda q: (words[q], q))
    cuts = [len(ordered) * i // 3 for i in range(4)]
    groups = {}
    for start, end in pairwise(cuts):
        ids = ordered[start:end]
        if ids:
            groups[f"documents of {words[ids[0]]:.0f}-{words[ids[-1]]:.0f} words"] = ids
    return groups


def main(folder: str, base: str, models: list[str]) -> None:
    data = load_beir(folder)
    for spec, label, difference in grouped_differences(data, length_thirds(data), base, models):
        print(f"{folder}, {label}: {base} -> {spec}, {difference}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: python -m medeir.evaluation.document_length DATA_FOLDER BASE MODEL [MODEL ...]")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
