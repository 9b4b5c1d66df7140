"""nDCG@10 on the queries that a tokenizer cuts as all-MiniLM-L6-v2's does, and on the rest.

Our model's layers come from all-MiniLM-L6-v2; this split shows whether a model loses where its tokenizer cuts words
into other pieces than the teacher's (docs/TRAINING.md, "the teacher's word pieces"). Usage::

    python -m medeir.evaluation.segmentation DATA_FOLDER TOKENIZER_FOLDER MODEL [MODEL ...]

groups the queries by TOKENIZER_FOLDER's tokenizer (e.g. ``.``) and, within each group, by length as
``medeir.evaluation.query_length`` does; MODEL is a model folder or ``minilm``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .beir_data import load_beir
from .query_length import format_groups, length_buckets, mean_by_group, per_query_ndcg

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def cut_alike(
    queries: dict[str, str], query_ids: list[str], ours: PreTrainedTokenizerBase, teacher: PreTrainedTokenizerBase
) -> dict[str, list[str]]:
    """``{"cut alike": ids, "cut otherwise": ids}``: whether the two tokenizers give a query the same pieces."""
    alike = {q: ours.tokenize(queries[q]) == teacher.tokenize(queries[q]) for q in query_ids}
    return {
        "cut alike": [q for q in query_ids if alike[q]],
        "cut otherwise": [q for q in query_ids if not alike[q]],
    }


def main(folder: str, tokenizer_folder: str, models: list[str]) -> None:
    from transformers import AutoTokenizer

    from medeir.loading import load_tokenizer, minilm_path

    data = load_beir(folder)
    teacher = AutoTokenizer.from_pretrained(str(minilm_path()))
    groups = cut_alike(data.queries, sorted(data.qrels), load_tokenizer(tokenizer_folder), teacher)
    for spec in models:
        scores = per_query_ndcg(data, spec)
        for label, ids in groups.items():
            buckets = {"all": ids, **length_buckets(data.queries, ids)}
            print(f"{spec}, {label}: {format_groups(mean_by_group(scores, buckets))}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: python -m medeir.evaluation.segmentation DATA_FOLDER TOKENIZER_FOLDER MODEL [MODEL ...]")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
