"""nDCG@10 by query length: on which queries of a BEIR set does a model win or lose?

Queries fall into buckets by their number of whitespace-separated words: 1-3 (keyword queries such as nfcorpus's
"prunes" or "folic acid"), 4-6, and 7 or more. Usage::

    python -m medeir.evaluation.query_length DATA_FOLDER MODEL [MODEL ...]

where MODEL is a model folder or ``minilm``; documents are read at up to 256 tokens, as ``medeir eval`` reads them.
"""

from __future__ import annotations

import sys

from .beir_data import load_beir
from .encoders import load_encoder
from .metrics import Qrels, Run, per_query_measure
from .search import search

BUCKETS = ((1, 3), (4, 6), (7, None))  # word counts, inclusive; None: no upper bound


def bucket_label(low: int, high: int | None) -> str:
    return f"{low}-{high} words" if high else f"{low}+ words"


def ndcg_by_query_length(queries: dict[str, str], qrels: Qrels, run: Run) -> dict[str, tuple[int, float]]:
    """``{bucket label: (number of queries, mean nDCG@10 ×100)}`` over the qrels queries, empty buckets left out."""
    scores = per_query_measure(qrels, run, "ndcg_cut.10", "ndcg_cut_10")
    words = {q: len(queries[q].split()) for q in scores}
    out = {}
    for low, high in BUCKETS:
        chosen = [q for q in scores if low <= words[q] and (high is None or words[q] <= high)]
        if chosen:
            out[bucket_label(low, high)] = (len(chosen), sum(scores[q] for q in chosen) / len(chosen))
    return out


def main(folder: str, models: list[str]) -> None:
    data = load_beir(folder)
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    for spec in models:
        encoder = load_encoder(spec, max_length=256)
        queries = encoder.encode_queries([data.queries[q] for q in query_ids])
        documents = encoder.encode_documents([data.corpus[d] for d in doc_ids])
        run = search(query_ids, queries, doc_ids, documents, k=10)
        buckets = ndcg_by_query_length(data.queries, data.qrels, run)
        print(f"{spec}: " + "; ".join(f"{label} ({n} queries): {ndcg:.2f}" for label, (n, ndcg) in buckets.items()))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -m medeir.evaluation.query_length DATA_FOLDER MODEL [MODEL ...]")
    main(sys.argv[1], sys.argv[2:])
