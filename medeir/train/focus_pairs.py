"""Topic queries: each MedQuAD question's focus (e.g. "Glaucoma") as a query for its answer, alone and with a word
for the question's type (e.g. "Glaucoma treatment").

People often type a bare topic, or a topic and an aspect of it, into a search box, while the staged pairs' queries
are questions, claims and titles. Most foci are one to three words; about a quarter are longer, some of them page
titles. ``python -m medeir.train.focus_pairs DATA_DIR OUTPUT_DIR`` reads ``train/medquad_pairs.jsonl.gz`` under
``DATA_DIR`` and writes two files under ``OUTPUT_DIR`` (a run's ``data_dir``, e.g. beside mined copies):
``train/medquad_pairs_focus.jsonl.gz``, one record per distinct focus and answer, and
``train/medquad_pairs_aspect.jsonl.gz``, one per distinct focus-and-aspect query and answer for the question types in
``ASPECTS``. Both group their records by focus (``qid`` ``focus:<focus lowercased>``), so that no batch holds two
answers on one topic from them. Records held out for evaluation are left out, and since the names start with
``medquad_pairs`` training would skip them anyway. Another file's pair on the same topic can still share a batch
with a topic query: most often a MedQuAD question's answer or its mined negative, which for an aspect query may be a
right answer from another source (e.g. a second answer to "How is glaucoma treated?") counted as a negative.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from medeir.evaluation.beir_data import read_jsonl, write_jsonl

from .tasks import holdout_filter

SOURCE = Path("train") / "medquad_pairs.jsonl.gz"
TARGET = Path("train") / "medquad_pairs_focus.jsonl.gz"
ASPECT_TARGET = Path("train") / "medquad_pairs_aspect.jsonl.gz"

# MedQuAD question type -> the word a searcher would add to the topic. "information" is the bare topic (TARGET);
# "considerations" and "support groups" have no word a searcher would type.
ASPECTS = {
    "treatment": "treatment", "symptoms": "symptoms", "frequency": "prevalence", "genetic changes": "genetics",
    "inheritance": "inheritance", "causes": "causes", "exams and tests": "diagnosis", "outlook": "prognosis",
    "susceptibility": "risk factors", "research": "research", "prevention": "prevention", "stages": "stages",
    "complications": "complications",
}


def _topic_records(
    records: list[dict], query_of: Callable[[dict, str], str | None], source: str
) -> list[dict]:
    """One record per distinct (query, answer), in file order, grouped by focus; ``query_of(record, focus)`` gives
    the query or None to skip. Records without a focus or answer, or whose question is the query, are skipped."""
    out, seen = [], set()
    for record in records:
        focus, answer = (record.get("focus") or "").strip(), record.get("positive")
        query = query_of(record, focus) if focus and answer else None
        key = (query or "").lower(), answer
        if not query or query.lower() == (record.get("query") or "").strip().lower() or key in seen:
            continue
        seen.add(key)
        out.append({"query": query, "positive": answer, "qid": f"focus:{focus.lower()}", "source": source})
    return out


def focus_records(records: list[dict]) -> list[dict]:
    """``{"query": focus, "positive": answer, "qid": "focus:<focus lowercased>"}`` for each distinct (focus, answer)
    of MedQuAD records, in file order; records without a focus, or whose question is its bare focus, are skipped."""
    return _topic_records(records, lambda record, focus: focus, "medquad-focus")


def aspect_records(records: list[dict]) -> list[dict]:
    """``{"query": "<focus> <aspect>", "positive": answer, "qid": "focus:<focus lowercased>"}`` for each distinct
    query and answer of MedQuAD records whose ``qtype`` is in ``ASPECTS``, in file order."""
    def query_of(record: dict, focus: str) -> str | None:
        aspect = ASPECTS.get(record.get("qtype") or "")
        return f"{focus} {aspect}" if aspect else None

    return _topic_records(records, query_of, "medquad-aspect")


def write_focus_pairs(data_dir: str | Path, output_dir: str | Path) -> dict[Path, int]:
    """Write the focus and aspect pairs of ``data_dir``'s MedQuAD file under ``output_dir``; returns how many pairs
    each file (relative path) got."""
    source = Path(data_dir) / SOURCE
    records = [r for _, r in read_jsonl(source) if holdout_filter(source.name, r)]
    counts = {}
    for target, build in ((TARGET, focus_records), (ASPECT_TARGET, aspect_records)):
        pairs = build(records)
        write_jsonl(Path(output_dir) / target, pairs)
        counts[target] = len(pairs)
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m medeir.train.focus_pairs DATA_DIR OUTPUT_DIR")
    for path, count in write_focus_pairs(sys.argv[1], sys.argv[2]).items():
        print(f"{count} pairs written to {Path(sys.argv[2]) / path}")
