"""Regenerate medeir/data/medquad_demo.jsonl, the corpus of `medeir demo`, from the staged MedQuAD training pairs.

Deterministic (seeded): 20 records whose focus mentions the demo question's topic (diabetes), the rest a sample of
all other records. Records of the evaluation's clustering sample are skipped, and nothing is read from eval/.
Usage (medeir installed, e.g. pip install -e .): python scripts/make_demo_corpus.py [--source P] [--output P] [--size N]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from medeir.demo import DEMO_CORPUS
from medeir.evaluation.beir_data import read_jsonl
from medeir.evaluation.clustering import clustering_indices
from medeir.evaluation.data_paths import MEDQUAD_FILE

SEED = 2019
SIZE = 300
TOPIC = "diabetes"  # the demo question's topic
ON_TOPIC = 20  # records about TOPIC in the corpus, so that the demo question has answers
MIN_CHARS, MAX_CHARS = 200, 2000  # skip stubs and very long answers (keeps the file small and the demo fast)


def select(source: Path, size: int) -> list[dict]:
    """The demo records, in the order of the source file."""
    skip = clustering_indices(source)
    seen, eligible = set(), []
    for index, (_, record) in enumerate(read_jsonl(source)):
        answer = record["positive"]
        if index in skip or answer in seen or not MIN_CHARS <= len(answer) <= MAX_CHARS:
            continue
        seen.add(answer)
        eligible.append((index, record))
    on_topic = [item for item in eligible if TOPIC in item[1]["focus"].lower()]
    rest = [item for item in eligible if TOPIC not in item[1]["focus"].lower()]
    rng = random.Random(SEED)
    pinned = rng.sample(on_topic, min(ON_TOPIC, len(on_topic), size))
    chosen = pinned + rng.sample(rest, size - len(pinned))
    return [
        {"id": f"medquad-{index}", "title": record["query"], "text": record["positive"], "focus": record["focus"],
         "qtype": record["qtype"], "source": record["source"]}
        for index, record in sorted(chosen, key=lambda item: item[0])
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=MEDQUAD_FILE, help="medquad_pairs.jsonl.gz (training split)")
    parser.add_argument("--output", type=Path, default=DEMO_CORPUS)
    parser.add_argument("--size", type=int, default=SIZE)
    args = parser.parse_args()
    records = select(args.source, args.size)
    args.output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(f"wrote {len(records)} records ({args.output.stat().st_size:,} bytes) to {args.output}")


if __name__ == "__main__":
    main()
