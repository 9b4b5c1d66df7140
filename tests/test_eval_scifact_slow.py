"""Sanity check of the whole retrieval path: all-MiniLM-L6-v2 must reproduce its published SciFact nDCG@10 (64.51)."""

import os

import pytest

from medeir.evaluation.beir_data import load_beir
from medeir.evaluation.data_paths import BEIR_DIRS
from medeir.evaluation.encoders import MiniLMEncoder
from medeir.evaluation.metrics import retrieval_metrics
from medeir.evaluation.search import search

os.environ["HF_HUB_OFFLINE"] = "1"
SCIFACT = BEIR_DIRS[0]
PUBLISHED_NDCG_AT_10 = 64.51  # MTEB leaderboard, sentence-transformers/all-MiniLM-L6-v2, SciFact test


@pytest.mark.slow  # encodes 5,183 abstracts: minutes on a 2-core CPU
@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"staged SciFact not found at {SCIFACT}")
def test_minilm_reproduces_published_scifact_ndcg():
    data = load_beir(SCIFACT)
    assert (len(data.corpus), len(data.queries), data.skipped_qrels) == (5183, 300, 0)
    encoder = MiniLMEncoder(batch_size=64)
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    run = search(query_ids, encoder.encode_queries([data.queries[i] for i in query_ids]),
                 doc_ids, encoder.encode_documents([data.corpus[i] for i in doc_ids]), k=100)
    assert retrieval_metrics(data.qrels, run)["ndcg_at_10"] == pytest.approx(PUBLISHED_NDCG_AT_10, abs=0.5)
