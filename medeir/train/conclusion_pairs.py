"""Finding -> abstract pairs: the last sentence of a PubMed abstract as the query, the rest of it as the passage.

A SciFact claim reads like the finding an abstract ends with. The staged abstracts (``extra2/pubmed_abstracts.txt.gz``)
fall in two parts: those that a title -> abstract pair file holds as a positive (already trained on) and the rest,
which no contrastive stage here has read (the MLM text of ``configs/base-6b-mlm.yaml`` includes them). Training pairs
come from the first part (``write_pairs``); the development set of ``scripts/dev_scores.py`` comes from the second,
so the two never share an abstract. Usage::

    python -m medeir.train.conclusion_pairs DATA_DIR OUTPUT_FILE

writes JSON lines ``query``, ``positive``, ``source`` (gzip'd when OUTPUT_FILE ends in ``.gz``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..evaluation.beir_data import read_jsonl, write_jsonl
from ..tokenizer import iter_lines
from .data import SENTENCE_END

ABSTRACTS = "extra2/pubmed_abstracts.txt.gz"
TITLE_PAIR_FILES = ("extra/pubmed_title_pairs.jsonl.gz", "extra2/pubmed_title_pairs2.jsonl.gz")
CONCLUSION_WORDS = (8, 50)  # the last sentence's length in words, inclusive, for it to become a query
MIN_SENTENCES = 4
PAIRED_TAIL = 20  # characters of an abstract's end looked up among the pairs' positives


def split_conclusion(abstract: str) -> tuple[str, str] | None:
    """``(rest, last sentence)`` of an abstract with at least MIN_SENTENCES sentences whose last sentence has
    CONCLUSION_WORDS words; None otherwise."""
    *rest, last = SENTENCE_END.split(abstract)
    if len(rest) + 1 < MIN_SENTENCES or not CONCLUSION_WORDS[0] <= len(last.split()) <= CONCLUSION_WORDS[1]:
        return None
    return " ".join(rest), last


def staged_abstracts(data_dir: Path, paired: bool) -> list[tuple[int, str]]:
    """``(index among the non-empty lines, abstract)`` of the staged abstracts that a title -> abstract pair file
    holds as a positive (``paired``: the abstract ends as the positive does) or of those that none holds."""
    positives: dict[str, list[str]] = {}  # by their last PAIRED_TAIL characters
    short: list[str] = []  # positives shorter than that, compared with every abstract
    for name in TITLE_PAIR_FILES:
        for _, record in read_jsonl(data_dir / name):
            positive = record["positive"]
            if len(positive) < PAIRED_TAIL:
                short.append(positive)
            else:
                positives.setdefault(positive[-PAIRED_TAIL:], []).append(positive)

    def is_paired(line: str) -> bool:
        candidates = [*positives.get(line[-PAIRED_TAIL:], ()), *short]
        return any(line.endswith(positive) for positive in candidates)

    return [(number, line) for number, line in enumerate(iter_lines(data_dir / ABSTRACTS)) if is_paired(line) == paired]


def conclusion_splits(data_dir: Path, paired: bool) -> list[tuple[int, str, str]]:
    """``(index, rest, last sentence)`` of each qualifying abstract of ``staged_abstracts(data_dir, paired)``."""
    return [
        (number, *split)
        for number, abstract in staged_abstracts(data_dir, paired)
        if (split := split_conclusion(abstract)) is not None
    ]


def write_pairs(data_dir: Path, output: Path) -> int:
    """Write a finding -> abstract pair for each qualifying abstract that a title pair file holds; returns how many."""
    pairs = [{"query": last, "positive": rest, "source": "pubmed_conclusion"}
             for _, rest, last in conclusion_splits(data_dir, paired=True)]
    output.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(output, pairs)
    return len(pairs)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m medeir.train.conclusion_pairs DATA_DIR OUTPUT_FILE")
    print(f"{write_pairs(Path(sys.argv[1]), Path(sys.argv[2]))} finding -> abstract pairs in {sys.argv[2]}")
