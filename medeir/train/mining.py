"""Hard negatives for the contrastive stage, mined with a trained model.

For every query/positive record of a pair file, the model ranks the file's other positives against the query; the
negative is the highest-ranked one that belongs to no positive of the same question (group) and scores below
``max_ratio`` x the query's similarity to its own positive. That margin keeps unlabelled near-duplicates of the positive
(false negatives) out. Output files mirror the inputs record for record, so index-based hold-outs still apply.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from medeir.atomic import atomic_write
from medeir.encode import Embedder
from medeir.evaluation.beir_data import read_jsonl, write_jsonl

from .data import PairFilter, expand_files, pair_group

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningStats:
    records: int
    mined: int  # records that gained a negative; the rest pass through unchanged


def choose_negatives(
    query_vectors: np.ndarray,
    positive_index: list[int],
    pool_vectors: np.ndarray,
    excluded: list[set[int]],
    depth: int,
    max_ratio: float,
) -> list[int | None]:
    """For query i (row i, whose positive is pool row ``positive_index[i]``), the pool row of its negative, or None.

    Candidates are the ``depth`` pool rows most similar to the query, best first; rows in ``excluded[i]`` (the
    positives of the query's group) and rows scoring ``max_ratio`` x the positive's similarity or more (for a negative
    similarity: within ``1 - max_ratio`` of its size below it, or more) are skipped.
    Vectors are L2-normalised, so the dot product is the cosine.
    """
    chosen: list[int | None] = []
    for start in range(0, len(query_vectors), 1024):
        sims = query_vectors[start : start + 1024] @ pool_vectors.T
        for row, ranked in enumerate(np.argsort(-sims, axis=1, kind="stable")[:, :depth]):
            i = start + row
            positive = sims[row, positive_index[i]]
            ceiling = positive - (1 - max_ratio) * abs(positive)  # max_ratio x positive, and below it when negative
            chosen.append(next((int(c) for c in ranked if c not in excluded[i] and sims[row, c] < ceiling), None))
    return chosen


def mine_file(
    source: Path,
    target: Path,
    queries: Embedder,
    passages: Embedder,
    keep: PairFilter,
    depth: int,
    max_ratio: float,
) -> MiningStats:
    """Write ``source``'s records to ``target`` (gzip'd JSONL if it ends in .gz), adding a mined ``negative`` to each
    query/positive record that has none and passes ``keep(file name, record)``."""
    records = [record for _, record in read_jsonl(source)]
    minable = [
        i
        for i, r in enumerate(records)
        if r.get("query") and r.get("positive") and not r.get("negative") and keep(source.name, r)
    ]
    pool = sorted({records[i]["positive"] for i in minable})
    row_of = {text: row for row, text in enumerate(pool)}
    group_rows: dict[str, set[int]] = {}
    for i in minable:
        group_rows.setdefault(pair_group(records[i]), set()).add(row_of[records[i]["positive"]])
    negatives: list[int | None] = []
    if len(pool) > 1:
        pool_vectors = passages.encode_documents(pool, show_progress=True)
        texts = sorted({records[i]["query"] for i in minable})  # a question with many positives is embedded once
        vectors = queries.encode_queries(texts, show_progress=True)
        query_row = {text: row for row, text in enumerate(texts)}
        negatives = choose_negatives(
            vectors[[query_row[records[i]["query"]] for i in minable]],
            [row_of[records[i]["positive"]] for i in minable],
            pool_vectors,
            [group_rows[pair_group(records[i])] for i in minable],
            depth,
            max_ratio,
        )
        for i, row in zip(minable, negatives, strict=True):
            if row is not None:
                records[i] = {**records[i], "negative": pool[row]}
    mined = sum(row is not None for row in negatives)
    write_jsonl(target, records)
    return MiningStats(records=len(records), mined=mined)


def mine_negatives(
    model: str | Path,
    data_dir: str | Path,
    pair_files: list[str],
    output_dir: str | Path,
    *,
    query_max_length: int = 64,
    passage_max_length: int = 160,
    depth: int = 30,
    max_ratio: float = 0.95,
    batch_size: int = 64,
) -> dict[str, MiningStats]:
    """Mine one negative per record for every pair file (names or globs under ``data_dir``); each output lands at
    the same relative path under ``output_dir``, so a run config can point its ``data_dir`` there. ``mining.json``
    there records the model, the settings and the counts."""
    from .tasks import holdout_filter

    if not 0 < max_ratio <= 1:
        raise ValueError(f"max_ratio must be in (0, 1], got {max_ratio}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    data_dir, output_dir = Path(data_dir), Path(output_dir)
    if output_dir.resolve() == data_dir.resolve():
        raise ValueError("output_dir must differ from data_dir (the inputs would be overwritten)")
    passages = Embedder(model, batch_size=batch_size, max_length=passage_max_length)
    queries = Embedder(
        model, batch_size=batch_size, max_length=query_max_length, model=passages.model, tokenizer=passages.tokenizer
    )
    stats = {}
    for file in expand_files(data_dir, pair_files):
        relative = file.relative_to(data_dir)
        stats[str(relative)] = mine_file(
            file, output_dir / relative, queries, passages, holdout_filter, depth, max_ratio
        )
        logger.info("%s: %s", relative, stats[str(relative)])
    report = {
        "model": str(model),
        "data_dir": str(data_dir),
        "query_max_length": query_max_length,
        "passage_max_length": passage_max_length,
        "depth": depth,
        "max_ratio": max_ratio,
        "files": {name: asdict(counts) for name, counts in stats.items()},
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(output_dir / "mining.json") as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    return stats
