"""Markdown tables of evaluation results: one column per model, plus re-ranking and encode-time tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .task_names import BM25_TASKS

METRIC_LABELS = {
    "ndcg_at_10": "nDCG@10",
    "recall_at_100": "Recall@100",
    "mrr_at_10": "MRR@10",
    "cos_sim_spearman": "Spearman (cosine)",
    "cos_sim_ap": "AP (cosine)",
    "cos_sim_question_accuracy": "Accuracy within question (cosine)",
    "bm25_overlap_at_10": "model's top 10 also in BM25's (%)",
    "v_measure": "V-measure",
}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_tables(records: Sequence[dict], models: Sequence[str]) -> str:
    """Scores (×100) per task/dataset/metric and model; re-ranking nDCG@10; encode seconds; the machine."""
    by_key = {(r["model"], r["dataset"], r["task"]): r for r in records}
    slots = list(dict.fromkeys((r["task"], r["dataset"]) for r in records))
    score_rows = []
    for task, dataset in slots:
        if task == "rerank":
            continue
        metrics = list(dict.fromkeys(m for r in records if (r["task"], r["dataset"]) == (task, dataset)
                                     for m in r["metrics"]))
        for metric in metrics:
            values = [by_key.get((model, dataset, task), {}).get("metrics", {}).get(metric) for model in models]
            score_rows.append([task, dataset, METRIC_LABELS.get(metric, metric)] + [cell(v) for v in values])
    lines = table(["task", "dataset", "metric", *models], score_rows)
    rerank_rows = [
        [r["dataset"], r["model"], cell(r["metrics"]["bm25_ndcg_at_10"]), cell(r["metrics"]["dense_ndcg_at_10"]),
         cell(r["metrics"]["ndcg_at_10"])]
        for r in records if r["task"] == "rerank"
    ]
    if rerank_rows:
        lines += ["", "Re-ranking, nDCG@10:", ""]
        lines += table(["dataset", "model", "BM25 alone", "model alone", "BM25 top-100 → model"], rerank_rows)
    time_rows = [
        [task, dataset] + [cell(by_key[(m, dataset, task)]["encode_seconds"]) if (m, dataset, task) in by_key else "–"
                           for m in models]
        for task, dataset in slots
        if task not in BM25_TASKS  # they reuse the retrieval embeddings
    ]
    lines += ["", "Encode time, seconds (BM25: index + search; re-ranking and hybrid reuse the retrieval embeddings):",
              ""]
    lines += table(["task", "dataset", *models], time_rows)
    if records:
        machine = records[0]["machine"]
        lines += ["", "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items())]
    return "\n".join(lines) + "\n"


def write_markdown(records: Sequence[dict], models: Sequence[str], path: str | Path) -> None:
    Path(path).write_text(markdown_tables(records, models))
