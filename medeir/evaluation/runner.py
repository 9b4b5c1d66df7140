"""Run every evaluation task for a model and its baselines; write one JSON file per result plus a markdown table.

Tasks: ``retrieval`` (exact cosine top-100 on each BEIR folder: nDCG@10, Recall@100, MRR@10), ``rerank`` (the model
re-orders BM25's top-100: nDCG@10 of BM25 alone, the model alone and BM25 -> model),
``hybrid`` (BM25's and the model's top-100 merged by reciprocal rank fusion: nDCG@10, Recall@100, MRR@10), ``sts``
(STS-B test Spearman), ``pairs`` (held-out medical question pairs: AP, accuracy within question) and ``clustering``
(MedQuAD answers by question type, V-measure). Baselines: ``minilm`` (all-MiniLM-L6-v2, offline) and ``bm25``
(retrieval only; BM25 also gives the first stage of ``rerank`` and the other list of ``hybrid`` whenever they run).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from medeir.loading import DEFAULT_MODEL_PATH, resolve_device
from medeir.machine import cpu_name

from .beir_data import BeirDataset, load_beir
from .bm25 import bm25_search
from .clustering import evaluate_clustering
from .data_paths import BEIR_DIRS, MEDQUAD_FILE, MQP_FILE, STS_FILE
from .encoders import Encoder, load_encoder
from .fusion import RRF_K, reciprocal_rank_fusion
from .metrics import retrieval_metrics, top_overlap
from .pair_classification import evaluate_pairs
from .report import write_markdown
from .rerank import rerank
from .search import search
from .sts import evaluate_sts
from .task_names import BEIR_TASKS, BM25_TASKS, TASKS, TOP_K

logger = logging.getLogger(__name__)

BASELINES = ("minilm", "bm25")
BM25_NAME = "BM25"


class TimedEncoder:
    """Wraps an encoder and adds the wall time of every encode call to ``seconds``."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.name = encoder.name
        self.seconds = 0.0

    def _timed(self, method: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        embeddings = method(texts)
        self.seconds += time.perf_counter() - start
        return embeddings

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._timed(self.encoder.encode_queries, texts)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._timed(self.encoder.encode_documents, texts)


def machine_info(device: torch.device) -> dict[str, str | int]:
    """CPU model, core count, torch version and the device the models ran on."""
    info = {"cpu": cpu_name(), "cores": os.cpu_count() or 0, "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


class ResultWriter:
    """Collects result records and writes each one to ``<output>/<model>__<dataset>__<task>.json`` as it arrives.
    Each record carries the machine and the evaluation's ``options`` (e.g. ``max_length``), so that it can be traced
    to the command that produced it."""

    def __init__(self, output_dir: Path, machine: dict, options: dict):
        self.output_dir = output_dir
        self.machine = machine
        self.options = options
        self.records: list[dict] = []
        output_dir.mkdir(parents=True, exist_ok=True)

    def add(
        self, model: str, dataset: str, task: str, metrics: dict[str, float], encode_seconds: float, **extra
    ) -> None:
        record = {"model": model, "dataset": dataset, "task": task, "metrics": metrics,
                  "encode_seconds": round(encode_seconds, 2), **extra, "options": self.options, "machine": self.machine}
        self.records.append(record)
        path = self.output_dir / f"{slug(model)}__{slug(dataset)}__{task}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        logger.info("%s / %s / %s: %s", model, dataset, task, {k: round(v, 2) for k, v in metrics.items()})


def evaluate_beir(
    dataset: BeirDataset,
    encoders: Sequence[TimedEncoder],
    writer: ResultWriter,
    *,
    tasks: Sequence[str],
    with_bm25: bool,
    device: torch.device,
) -> None:
    """Retrieval, re-ranking and/or hybrid results of every encoder (and BM25's retrieval) on one BEIR dataset."""
    doc_ids, query_ids = list(dataset.corpus), list(dataset.queries)
    sizes = {"queries": len(query_ids), "documents": len(doc_ids), "skipped_qrels": dataset.skipped_qrels}
    bm25_run = None
    if with_bm25 or BM25_TASKS & set(tasks):
        start = time.perf_counter()
        bm25_run = bm25_search(dataset.corpus, dataset.queries, TOP_K)
        bm25_seconds = time.perf_counter() - start
        bm25_metrics = retrieval_metrics(dataset.qrels, bm25_run)
        if with_bm25 and "retrieval" in tasks:
            writer.add(BM25_NAME, dataset.name, "retrieval", bm25_metrics, bm25_seconds, **sizes)
    for encoder in encoders:
        logger.info("%s: encoding %d queries and %d documents with %s", dataset.name, len(query_ids), len(doc_ids),
                    encoder.name)
        encoder.seconds = 0.0
        queries = encoder.encode_queries([dataset.queries[i] for i in query_ids])
        documents = encoder.encode_documents([dataset.corpus[i] for i in doc_ids])
        dense_run = search(query_ids, queries, doc_ids, documents, TOP_K, device=device)
        dense = retrieval_metrics(dataset.qrels, dense_run)
        if "retrieval" in tasks:
            writer.add(encoder.name, dataset.name, "retrieval", dense, encoder.seconds, **sizes)
        if "rerank" in tasks:
            reranked = retrieval_metrics(dataset.qrels, rerank(bm25_run, query_ids, queries, doc_ids, documents))
            metrics = {"ndcg_at_10": reranked["ndcg_at_10"], "mrr_at_10": reranked["mrr_at_10"],
                       "bm25_ndcg_at_10": bm25_metrics["ndcg_at_10"], "dense_ndcg_at_10": dense["ndcg_at_10"]}
            writer.add(encoder.name, dataset.name, "rerank", metrics, encoder.seconds, first_stage=f"BM25 top-{TOP_K}",
                       **sizes)
        if "hybrid" in tasks:
            fused = retrieval_metrics(dataset.qrels, reciprocal_rank_fusion([bm25_run, dense_run]))
            fused["bm25_overlap_at_10"] = top_overlap(dense_run, bm25_run)  # how much the model adds to BM25
            fusion = f"reciprocal rank fusion (k = {RRF_K}) of BM25 top-{TOP_K} and model top-{TOP_K}"
            writer.add(encoder.name, dataset.name, "hybrid", fused, encoder.seconds, fusion=fusion, **sizes)


def check_choices(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; choose from {list(allowed)}")
    return list(dict.fromkeys(values))


def dataset_label(path: str | Path, default: str | Path, label: str) -> str:
    """``label`` for the staged standard file; any other file is named by its file name without extensions, so that a
    dev split or a custom file is never reported (or written into a model card) as the standard set."""
    path = Path(path)
    return label if path.resolve() == Path(default).resolve() else path.name.split(".")[0]


def beir_label(folder: str | Path, staged: Sequence[str | Path] = BEIR_DIRS) -> str:
    """A BEIR folder's name in the results: its folder name, with ``-custom`` added when it has a staged set's name but
    is another folder (a subset, a modified copy), so that it is never reported (or written into a model card) as the
    staged set."""
    folder = Path(folder)
    same_name = [Path(s).resolve() for s in staged if Path(s).name == folder.name]
    return f"{folder.name}-custom" if same_name and folder.resolve() not in same_name else folder.name


def run_eval(
    model: str | Path | Encoder | None = None,
    data_dirs: Sequence[str | Path] = BEIR_DIRS,
    baselines: Sequence[str] = BASELINES,
    output_dir: str | Path = "runs/eval/latest",
    tasks: Sequence[str] = TASKS,
    *,
    sts_file: str | Path = STS_FILE,
    mqp_file: str | Path = MQP_FILE,
    medquad_file: str | Path = MEDQUAD_FILE,
    device: str = "auto",
    batch_size: int = 32,
    max_length: int | None = None,
    model_name: str | None = None,
    show_progress: bool = True,
) -> dict:
    """Evaluate ``model`` and ``baselines`` on ``tasks``.

    ``model``: a MedEIR model folder (None: the shipped model), ``"minilm"``, or an already built encoder.

    Writes ``<output_dir>/<model>__<dataset>__<task>.json`` per result, ``results.json`` and ``results.md``
    (tables). Returns the summary stored in results.json: ``{"model": name of ``model``, "models": [...],
    "machine": {...}, "results": [one record per model/dataset/task]}``.
    """
    tasks = check_choices(tasks, TASKS, "task(s)")
    baselines = check_choices(baselines, BASELINES, "baseline(s)")
    if not tasks:
        raise ValueError(f"no tasks given; choose from {list(TASKS)}")
    if BEIR_TASKS & set(tasks) and not data_dirs:
        raise ValueError("retrieval/rerank/hybrid need at least one BEIR folder (data_dirs)")
    torch_device = resolve_device(device)
    datasets = [dataclasses.replace(load_beir(folder), name=beir_label(folder)) for folder in data_dirs] \
        if BEIR_TASKS & set(tasks) else []
    options = {"device": device, "batch_size": batch_size, "max_length": max_length, "show_progress": show_progress}
    main = model if isinstance(model, Encoder) else load_encoder(model, **options)
    extra = [load_encoder(b, **options) for b in baselines if b != "bm25" and b != model]
    encoders = [TimedEncoder(encoder) for encoder in (main, *extra)]
    if model_name:
        encoders[0].name = model_name
    source = main.name if isinstance(model, Encoder) else str(model or DEFAULT_MODEL_PATH)
    writer = ResultWriter(Path(output_dir), machine_info(torch_device),
                          {"model": source, "max_length": max_length, "batch_size": batch_size})
    for dataset in datasets:
        evaluate_beir(dataset, encoders, writer, tasks=tasks, with_bm25="bm25" in baselines, device=torch_device)
    extra_tasks = {
        "sts": (dataset_label(sts_file, STS_FILE, "stsb-test"), lambda enc: evaluate_sts(enc, sts_file)),
        "pairs": (dataset_label(mqp_file, MQP_FILE, "mqp-holdout"), lambda enc: evaluate_pairs(enc, mqp_file)),
        "clustering": (
            dataset_label(medquad_file, MEDQUAD_FILE, "medquad-qtype"),
            lambda enc: evaluate_clustering(enc, medquad_file),
        ),
    }
    for task, (dataset_name, evaluate) in extra_tasks.items():
        if task not in tasks:
            continue
        for encoder in encoders:
            logger.info("%s: %s", task, encoder.name)
            encoder.seconds = 0.0
            writer.add(encoder.name, dataset_name, task, evaluate(encoder), encoder.seconds)
    models = [encoder.name for encoder in encoders] + ([BM25_NAME] if "bm25" in baselines else [])
    summary = {"model": models[0], "models": models, "machine": writer.machine, "options": writer.options,
               "results": writer.records}
    (writer.output_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_markdown(writer.records, models, writer.output_dir / "results.md")
    return summary
