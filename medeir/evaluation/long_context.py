"""Long-context check: does the model use text past 512 tokens?

Built from a BEIR folder with one relevant document per query (default: medicalqa-approx). For each of ``n_queries``
sampled queries, a long document is made of unrelated filler documents (other corpus documents, not relevant to any
sampled query) until ``filler_tokens`` tokens, followed by the query's relevant document: the answer starts past
token ``filler_tokens``. Every query is then searched over all long documents, once with documents encoded in full
and once truncated to ``truncate_at`` tokens (which cuts the answer off). Full-length retrieval clearly above the
truncated one means the model reads and uses the late text.
"""

from __future__ import annotations

import random
from pathlib import Path

from .beir_data import load_beir
from .data_paths import BEIR_DIRS
from .metrics import retrieval_metrics
from .search import search

SEED = 0


def build_long_documents(
    folder: str | Path, tokenizer, n_queries: int, filler_tokens: int
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """(long documents, queries, qrels): document ``long-<qid>`` = filler + the query's relevant document."""
    data = load_beir(folder)
    single = [q for q, rel in data.qrels.items() if len(rel) == 1 and q in data.queries]
    rng = random.Random(SEED)
    chosen = sorted(rng.sample(single, min(n_queries, len(single))))
    relevant = {q: next(iter(data.qrels[q])) for q in chosen}
    used = set(relevant.values())
    pool = [d for d in data.corpus if d not in used]
    documents, queries, qrels = {}, {}, {}
    for q in chosen:
        parts, length = [], 0
        while length < filler_tokens:
            text = data.corpus[rng.choice(pool)]
            parts.append(text)
            length += len(tokenizer(text, add_special_tokens=False)["input_ids"])
        doc_id = f"long-{q}"
        documents[doc_id] = " ".join(parts + [data.corpus[relevant[q]]])
        queries[q] = data.queries[q]
        qrels[q] = {doc_id: 1}
    return documents, queries, qrels


def evaluate_long_context(
    embedder,
    folder: str | Path = BEIR_DIRS[1],
    *,
    n_queries: int = 40,
    filler_tokens: int = 2048,
    truncate_at: int = 512,
) -> dict[str, float]:
    """nDCG@10 and MRR@10 with full-length vs truncated documents; ``embedder`` is a ``medeir.encode.Embedder``."""
    documents, queries, qrels = build_long_documents(folder, embedder.tokenizer, n_queries, filler_tokens)
    doc_ids, texts = list(documents), list(documents.values())
    query_vectors = embedder.encode_queries(list(queries.values()))
    results = {"documents": len(texts), "filler_tokens": filler_tokens}
    full_limit = embedder.max_length
    for label, limit in (("full", full_limit), (f"truncated_{truncate_at}", truncate_at)):
        embedder.max_length = limit
        try:
            vectors = embedder.encode_documents(texts)
        finally:
            embedder.max_length = full_limit
        metrics = retrieval_metrics(qrels, search(list(queries), query_vectors, doc_ids, vectors, k=10))
        results[f"{label}_ndcg_at_10"] = metrics["ndcg_at_10"]
        results[f"{label}_mrr_at_10"] = metrics["mrr_at_10"]
    return results


def main() -> None:
    """``python -m medeir.evaluation.long_context [MODEL_FOLDER] [N_QUERIES] [FILLER_TOKENS]``: print the results."""
    import json
    import sys

    from medeir.encode import Embedder

    args = sys.argv[1:]
    embedder = Embedder(args[0] if args else None, batch_size=4)
    n_queries = int(args[1]) if len(args) > 1 else 40
    filler = int(args[2]) if len(args) > 2 else 2048
    print(json.dumps(evaluate_long_context(embedder, n_queries=n_queries, filler_tokens=filler), indent=2))


if __name__ == "__main__":
    main()
