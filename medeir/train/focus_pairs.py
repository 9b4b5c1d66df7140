"""Topic queries: each MedQuAD question's focus (e.g. "Glaucoma") as a query for its answer.

People often type a bare topic into a search box, while the staged pairs' queries are questions, claims and titles.
Most foci are one to three words; about a quarter are longer, some of them page titles. ``python -m
medeir.train.focus_pairs DATA_DIR OUTPUT_DIR`` reads ``train/medquad_pairs.jsonl.gz`` under ``DATA_DIR`` and writes
``train/medquad_pairs_focus.jsonl.gz`` under ``OUTPUT_DIR`` (a run's ``data_dir``, e.g. beside mined copies): one
record per distinct focus and answer, grouped by focus (``qid``) so that no batch holds two answers on one topic from
this file. Records held out for evaluation are left out, and since the name starts with ``medquad_pairs`` training
would skip them anyway. Another pair's passage on the same topic, most often a MedQuAD question's answer or its mined
negative, can still meet a focus query as an in-batch negative.
"""

from __future__ import annotations

import sys
from pathlib import Path

from medeir.evaluation.beir_data import read_jsonl, write_jsonl

from .tasks import holdout_filter

SOURCE = Path("train") / "medquad_pairs.jsonl.gz"
TARGET = Path("train") / "medquad_pairs_focus.jsonl.gz"


def focus_records(records: list[dict]) -> list[dict]:
    """``{"query": focus, "positive": answer, "qid": "focus:<focus lowercased>"}`` for each distinct (focus, answer)
    of MedQuAD records, in file order; records without a focus, or whose question is its bare focus, are skipped."""
    out, seen = [], set()
    for record in records:
        focus, answer = (record.get("focus") or "").strip(), record.get("positive")
        key = (focus.lower(), answer)
        if not focus or not answer or focus.lower() == (record.get("query") or "").strip().lower() or key in seen:
            continue
        seen.add(key)
        out.append({"query": focus, "positive": answer, "qid": f"focus:{focus.lower()}", "source": "medquad-focus"})
    return out


def write_focus_pairs(data_dir: str | Path, output_dir: str | Path) -> int:
    """Write the focus pairs of ``data_dir``'s MedQuAD file under ``output_dir``; returns how many."""
    source = Path(data_dir) / SOURCE
    records = [r for _, r in read_jsonl(source) if holdout_filter(source.name, r)]
    pairs = focus_records(records)
    write_jsonl(Path(output_dir) / TARGET, pairs)
    return len(pairs)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m medeir.train.focus_pairs DATA_DIR OUTPUT_DIR")
    print(f"{write_focus_pairs(sys.argv[1], sys.argv[2])} focus pairs written to {Path(sys.argv[2]) / TARGET}")
