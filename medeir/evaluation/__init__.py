"""Evaluation harness: BEIR retrieval, BM25 re-ranking, hybrid BM25 + model retrieval, STS, medical pair similarity
and clustering.

Entry point: :func:`medeir.evaluation.runner.run_eval` (CLI: ``medeir eval``). Training code uses
:func:`.pair_classification.is_mqp_holdout` and :func:`.clustering.clustering_indices` to skip held-out records.
"""
