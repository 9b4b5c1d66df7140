"""BM25 baseline with ``bm25s`` (Lucene BM25, k1=1.5, b=0.75; English stop words and Snowball stemming).

Also gives the BM25 top-100 candidate lists that the embedding models re-rank.
"""

from __future__ import annotations

import bm25s
import Stemmer
from bm25s.tokenization import Tokenizer

from .metrics import Run


def bm25_search(corpus: dict[str, str], queries: dict[str, str], k: int = 100, *, show_progress: bool = False) -> Run:
    """A run ``{query_id: {doc_id: bm25 score}}`` with each query's top ``k`` documents (fewer if it matches fewer)."""
    doc_ids, query_ids = list(corpus), list(queries)
    tokenizer = Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english").stemWord)
    doc_tokens = tokenizer.tokenize([corpus[i] for i in doc_ids], update_vocab=True, show_progress=show_progress)
    query_tokens = tokenizer.tokenize([queries[i] for i in query_ids], update_vocab=False, show_progress=False)
    index = bm25s.BM25()
    index.index(doc_tokens, show_progress=show_progress)
    indices, scores = index.retrieve(query_tokens, k=min(k, len(doc_ids)), show_progress=show_progress)
    return {
        query_id: {doc_ids[j]: float(s) for j, s in zip(row_indices, row_scores, strict=True) if s > 0}
        for query_id, row_indices, row_scores in zip(query_ids, indices, scores, strict=True)
    }
