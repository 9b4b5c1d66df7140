"""nDCG@10 by query length: on which queries of a BEIR set does a model win or lose?

Queries fall into buckets by their number of whitespace-separated words: 1-3 (keyword queries such as nfcorpus's
"prunes" or "folic acid"), 4-6, and 7 or more. Usage::

    python -m medeir.evaluation.query_length DATA_FOLDER MODEL [MODEL ...]

where MODEL is a model folder or ``minilm``; documents are read at up to 256 tokens, as ``medeir eval`` reads them.
"""

from __future__ import annotations

import sys

from .beir_data import BeirDataset, load_beir
from .encoders import Encoder, load_encoder
from .metrics import per_query_measure
from .search import search

BUCKETS = ((1, 3), (4, 6), (7, None))  # word counts, inclusive; None: no upper bound


def bucket_label(low: int, high: int | None) -> str:
    return f"{low}-{high} words" if high else f"{low}+ words"


def per_query_ndcg(data: BeirDataset, spec: str) -> dict[str, float]:
    """nDCG@10 ×100 of each qrels query for the model ``spec`` (a folder or ``minilm``), from the run that ``medeir
    eval --max-length 256`` scores: documents read at up to 256 tokens, each query's top 100 (so ties at rank 10,
    e.g. between duplicate documents, are broken as there)."""
    return encoder_ndcg(data, load_encoder(spec, max_length=256))


def encoder_ndcg(data: BeirDataset, encoder: Encoder) -> dict[str, float]:
    """``per_query_ndcg`` for an encoder already loaded (e.g. by ``load_encoder``)."""
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    queries = encoder.encode_queries([data.queries[q] for q in query_ids])
    documents = encoder.encode_documents([data.corpus[d] for d in doc_ids])
    run = search(query_ids, queries, doc_ids, documents)
    return per_query_measure(data.qrels, run, "ndcg_cut.10", "ndcg_cut_10")


def length_buckets(queries: dict[str, str], query_ids: list[str]) -> dict[str, list[str]]:
    """``{bucket label: query ids}`` by word count."""
    words = {q: len(queries[q].split()) for q in query_ids}
    return {
        bucket_label(low, high): [q for q in query_ids if low <= words[q] and (high is None or words[q] <= high)]
        for low, high in BUCKETS
    }


def mean_by_group(scores: dict[str, float], groups: dict[str, list[str]]) -> dict[str, tuple[int, float]]:
    """``{group: (number of queries, mean score)}``, empty groups left out."""
    return {label: (len(ids), sum(scores[q] for q in ids) / len(ids)) for label, ids in groups.items() if ids}


def format_groups(groups: dict[str, tuple[int, float]]) -> str:
    """``label (n queries): score; ...`` for printing."""
    return "; ".join(f"{label} ({n} queries): {ndcg:.2f}" for label, (n, ndcg) in groups.items())


def main(folder: str, models: list[str]) -> None:
    data = load_beir(folder)
    for spec in models:
        scores = per_query_ndcg(data, spec)
        print(f"{spec}: " + format_groups(mean_by_group(scores, length_buckets(data.queries, list(scores)))))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -m medeir.evaluation.query_length DATA_FOLDER MODEL [MODEL ...]")
    main(sys.argv[1], sys.argv[2:])
