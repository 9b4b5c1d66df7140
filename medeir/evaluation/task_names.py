"""The evaluation's task names and how deep its runs go, shared by the runner, the report and hybrid search."""

TASKS = ("retrieval", "rerank", "hybrid", "sts", "pairs", "clustering")
BEIR_TASKS = frozenset({"retrieval", "rerank", "hybrid"})  # the tasks that read the BEIR folders
BM25_TASKS = frozenset({"rerank", "hybrid"})  # the BEIR tasks that use BM25's run and the retrieval embeddings
TOP_K = 100  # documents in each run: the model's, BM25's (re-ranked, or fused with the model's)
