"""Degraded copies of BEIR folders: documents preprocessed the way nfcorpus-degraded's are, queries left as they are.

nfcorpus-degraded's documents are lowercased, stripped of stop-words and punctuation, with every number replaced by
``num`` (its README.md). A model that scores lower there may read such keyword lists worse, or retrieve worse. Giving
a second set (e.g. SciFact, whose text is intact) the same treatment tells the two apart: compare two models on the
original folder and on its degraded copy.

Usage: ``python -m medeir.evaluation.degrade SOURCE_FOLDER OUTPUT_FOLDER``, then ``medeir eval --data OUTPUT_FOLDER``.
The stop-word list is scikit-learn's English one, an approximation of NFCorpus's (which this project does not have).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .beir_data import read_corpus

# a number with decimal or thousands separators ("0.46", "2,004"), or a word: letters or digits, possibly joined by
# inner hyphens, slashes or apostrophes ("low-dose/short-term", "crohn's")
WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:[-/'][^\W_]+)*")


def content_words(text: str) -> list[str]:
    """The words of ``text``, lowercased, without punctuation and stop-words, in order."""
    return [word for word in WORD.findall(text.lower()) if word not in ENGLISH_STOP_WORDS]


def degrade_text(text: str) -> str:
    """Lowercase ``text``, keep its words without punctuation, drop stop-words, and write any word with a digit as
    ``num``."""
    return " ".join("num" if any(char.isdigit() for char in word) else word for word in content_words(text))


def degrade_beir(source: str | Path, output: str | Path) -> int:
    """Write a copy of the BEIR folder ``source`` to ``output`` whose documents are ``degrade_text`` of title and text
    (title emptied, as in nfcorpus-degraded); queries and qrels are copied unchanged. Returns the number of
    documents."""
    source, output = Path(source), Path(output)
    corpus = source / "corpus.jsonl"
    if not corpus.is_file():
        raise FileNotFoundError(f"not a BEIR folder (no corpus.jsonl): {source}")
    if output.resolve() == source.resolve():
        raise ValueError("the output folder must differ from the source folder")
    documents = read_corpus(corpus)
    (output / "qrels").mkdir(parents=True, exist_ok=True)
    with (output / "corpus.jsonl").open("w", encoding="utf-8") as writer:
        for doc_id, text in documents.items():
            writer.write(json.dumps({"_id": doc_id, "title": "", "text": degrade_text(text)}) + "\n")
    shutil.copyfile(source / "queries.jsonl", output / "queries.jsonl")
    for qrels in (source / "qrels").glob("*.tsv"):
        shutil.copyfile(qrels, output / "qrels" / qrels.name)
    return len(documents)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m medeir.evaluation.degrade SOURCE_FOLDER OUTPUT_FOLDER")
    print(f"{degrade_beir(sys.argv[1], sys.argv[2])} documents written to {sys.argv[2]}")
