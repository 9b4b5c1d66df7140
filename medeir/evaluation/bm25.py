"""BM25 with ``bm25s`` (Lucene BM25, k1=1.5, b=0.75; English stop words and Snowball stemming): the evaluation's
baseline, the candidate lists that the embedding models re-rank, and the keyword half of hybrid search.
"""

from __future__ import annotations

import bm25s
import Stemmer
from bm25s.tokenization import Tokenizer

from .metrics import Run


class BM25Index:
    """``texts`` indexed for BM25; ``search`` gives each query's best rows with their scores."""

    def __init__(self, texts: list[str], *, show_progress: bool = False):
        if not texts:
            raise ValueError("BM25 needs at least one text to index")
        self.size = len(texts)
        self.tokenizer = Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english").stemWord)
        tokens = self.tokenizer.tokenize(texts, update_vocab=True, show_progress=show_progress)
        self.index = bm25s.BM25()
        self.index.index(tokens, show_progress=show_progress)

    def search(self, queries: list[str], k: int, *, show_progress: bool = False) -> list[list[tuple[int, float]]]:
        """For each query, up to ``k`` (row, score) pairs, best first; rows sharing no term with it are left out."""
        tokens = self.tokenizer.tokenize(queries, update_vocab=False, show_progress=False)
        rows, scores = self.index.retrieve(tokens, k=min(k, self.size), show_progress=show_progress)
        return [
            [(int(row), float(score)) for row, score in zip(query_rows, query_scores, strict=True) if score > 0]
            for query_rows, query_scores in zip(rows, scores, strict=True)
        ]


def bm25_search(corpus: dict[str, str], queries: dict[str, str], k: int = 100, *, show_progress: bool = False) -> Run:
    """A run ``{query_id: {doc_id: bm25 score}}`` with each query's top ``k`` documents (fewer if it matches fewer)."""
    doc_ids, query_ids = list(corpus), list(queries)
    index = BM25Index([corpus[i] for i in doc_ids], show_progress=show_progress)
    hits = index.search([queries[i] for i in query_ids], k, show_progress=show_progress)
    return {
        query_id: {doc_ids[row]: score for row, score in query_hits}
        for query_id, query_hits in zip(query_ids, hits, strict=True)
    }
