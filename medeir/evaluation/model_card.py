"""Write evaluation results into a model card's (README.md) YAML ``model-index`` metadata.

Other front-matter keys and the card body are kept. Results already in the card for the same model, task and dataset
are replaced; the rest stay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from .report import METRIC_LABELS

# The tasks whose results go into the card; ``hybrid`` stays out: it scores BM25 and the model together, not the model.
TASK_TYPES = {
    "retrieval": ("Retrieval", "Retrieval"),
    "rerank": ("Reranking", "Re-ranking of BM25 top-100"),
    "sts": ("STS", "Semantic textual similarity"),
    "pairs": ("PairClassification", "Medical question-pair similarity"),
    "clustering": ("Clustering", "Clustering"),
}
# dataset name in our results -> (model-index dataset.type, dataset.name, split)
DATASETS = {
    "scifact": ("BeIR/scifact", "SciFact (BEIR)", "test"),
    "medicalqa-approx": ("medeir/medicalqa-approx", "MedQuAD QA retrieval (approximation of MTEB MedicalQA)", "test"),
    "nfcorpus-degraded": ("medeir/nfcorpus-degraded", "NFCorpus (preprocessed documents)", "test"),
    "stsb-test": ("mteb/stsbenchmark-sts", "STS Benchmark", "test"),
    "mqp-holdout": ("curai/medical-question-pair-dataset", "Medical Question Pairs (held-out: index % 5 == 0)",
                    "holdout"),
    "medquad-qtype": ("abachaa/MedQuAD", "MedQuAD answers by question type (1,000-answer sample)", "sample"),
}
CARD_METRICS = ("ndcg_at_10", "recall_at_100", "mrr_at_10", "cos_sim_spearman", "cos_sim_ap", "v_measure")


def result_entry(record: dict) -> dict:
    """One model-index result (task, dataset, metrics) from one evaluation record."""
    task_type, task_name = TASK_TYPES[record["task"]]
    dataset_type, dataset_name, split = DATASETS.get(record["dataset"], (record["dataset"], record["dataset"], "test"))
    metrics = [{"type": metric, "value": round(value, 2), "name": METRIC_LABELS[metric]}
               for metric, value in record["metrics"].items() if metric in CARD_METRICS]
    return {"task": {"type": task_type, "name": task_name},
            "dataset": {"type": dataset_type, "name": dataset_name, "split": split}, "metrics": metrics}


def split_front_matter(text: str) -> tuple[dict, str]:
    """``(metadata, body)`` of a card; a card without a ``---`` YAML block has empty metadata."""
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        raise ValueError("model card front matter starts with '---' but has no closing '---'")
    metadata = yaml.safe_load(text[3:end]) or {}
    if not isinstance(metadata, dict):
        raise ValueError("model card front matter is not a YAML mapping")
    return metadata, text[end + 4 :].lstrip("\n")


def update_model_index(readme: str | Path, records: Sequence[dict], model_name: str) -> dict:
    """Put ``model_name``'s records into ``readme``'s ``model-index`` (created if missing); returns the metadata."""
    path = Path(readme)
    metadata, body = split_front_matter(path.read_text(encoding="utf-8") if path.is_file() else "")
    own = [r for r in records if r["model"] == model_name]
    if not own:
        present = sorted({r["model"] for r in records})
        raise ValueError(f"no results for model {model_name!r}; models present: {present}")
    new = [result_entry(r) for r in own if r["task"] in TASK_TYPES]
    if not new:
        raise ValueError(f"none of {model_name!r}'s results belongs in a model card (tasks {sorted(TASK_TYPES)})")
    index = metadata.get("model-index") or []
    entry = next((e for e in index if e.get("name") == model_name), None)
    if entry is None:
        entry = {"name": model_name, "results": []}
        index.append(entry)

    def key(result: dict) -> tuple:
        return result["task"]["type"], result["dataset"]["type"], result["dataset"].get("split")

    replaced = {key(result) for result in new}
    entry["results"] = [r for r in entry.get("results", []) if key(r) not in replaced] + new
    metadata["model-index"] = index
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    path.write_text(f"---\n{front}---\n\n{body}", encoding="utf-8")
    return metadata


def update_model_index_from_file(readme: str | Path, results_json: str | Path, model_name: str | None = None) -> dict:
    """:func:`update_model_index` with the records of a ``results.json`` (default model: the run's evaluated model)."""
    summary = json.loads(Path(results_json).read_text())
    return update_model_index(readme, summary["results"], model_name or summary["model"])
