"""Zero-shot quality of all-MiniLM-L6-v2's layers transplanted into MedEIR, by ALiBi slope scale (no training).

Measures nDCG@10 on a SciFact subset (``--queries`` test queries; corpus = their relevant documents plus random others
up to ``--docs``) and Spearman x100 on the first 300 STS-B *dev* pairs, for MiniLM itself and the transplant at each
slope scale. Usage: ``python scripts/transplant_ablation.py [--scales 0 0.0625 1] [--queries 60] [--docs 300]``.
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
from scipy.stats import spearmanr

from configuration_medeir import MedEIRConfig
from medeir.evaluation.beir_data import load_beir
from medeir.evaluation.data_paths import BEIR_DIRS
from medeir.evaluation.encoders import MiniLMEncoder
from medeir.evaluation.metrics import retrieval_metrics
from medeir.evaluation.search import search
from medeir.loading import DEFAULT_MODEL_PATH, load_tokenizer, minilm_path
from medeir.tokenizer import DEFAULT_DATA_DIR
from medeir.train.transplant import init_from_bert
from modeling_medeir import MedEIRModel


def subset(n_queries: int, n_docs: int, seed: int = 0):
    data = load_beir(BEIR_DIRS[0])
    query_ids = sorted(random.Random(seed).sample(sorted(data.qrels), n_queries))
    relevant = {d for q in query_ids for d in data.qrels[q]}
    others = sorted(set(data.corpus) - relevant)
    random.Random(seed + 1).shuffle(others)
    doc_ids = sorted(relevant | set(others[: max(0, n_docs - len(relevant))]))
    return data, query_ids, doc_ids


def score(encode_queries, encode_documents, data, query_ids, doc_ids, sts) -> dict[str, float]:
    run = search(query_ids, encode_queries([data.queries[q] for q in query_ids]), doc_ids,
                 encode_documents([data.corpus[d] for d in doc_ids]), k=100)
    first, second, gold = sts
    a, b = encode_queries(first), encode_queries(second)
    return {
        "scifact_subset_ndcg_at_10": retrieval_metrics({q: data.qrels[q] for q in query_ids}, run)["ndcg_at_10"],
        "stsb_dev300_spearman": 100 * spearmanr((a * b).sum(1), gold).statistic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.0625, 1.0])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--docs", type=int, default=300)
    args = parser.parse_args()
    data, query_ids, doc_ids = subset(args.queries, args.docs)
    rows = [json.loads(line) for line in (DEFAULT_DATA_DIR / "train" / "stsb_dev.jsonl").read_text().splitlines()[:300]]
    sts = ([r["sentence1"] for r in rows], [r["sentence2"] for r in rows], np.array([r["score"] for r in rows]))
    results = {"all-MiniLM-L6-v2": score(*(lambda e: (e.encode_queries, e.encode_documents))(MiniLMEncoder()),
                                         data, query_ids, doc_ids, sts)}
    tokenizer = load_tokenizer(DEFAULT_MODEL_PATH)
    model = MedEIRModel(MedEIRConfig(vocab_size=len(tokenizer))).eval()
    init_from_bert(model, minilm_path(), tokenizer)
    base = model.alibi_slopes.clone()
    for scale in args.scales:
        model.alibi_slopes.copy_(base * scale)  # scale 0 = no order information at all

        def encode(texts, model=model):
            return model.encode(texts, batch_size=32, max_length=256, tokenizer=tokenizer)

        results[f"transplant, slope scale {scale:g}"] = score(encode, encode, data, query_ids, doc_ids, sts)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
