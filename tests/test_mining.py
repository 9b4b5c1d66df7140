"""Hard-negative mining: the choice rule on hand-made vectors, record-for-record output files, the CLI on a tiny model,
and batches that never show a query its own positive as a negative."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from medeir.cli import app
from medeir.evaluation.beir_data import read_jsonl
from medeir.train.data import Pair, PairMixture, read_pairs
from medeir.train.mining import choose_negatives, mine_file
from medeir.train.tasks import holdout_filter

REPO = Path(__file__).resolve().parent.parent


def unit(*angles_deg: float) -> np.ndarray:
    radians = np.radians(angles_deg)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def test_choose_negatives_takes_the_hardest_candidate_outside_group_and_margin():
    pool = unit(0, 5, 10, 40, 90)  # rows: 0 positive, 1 same-group positive, 2 near-duplicate, 3 hard, 4 easy
    query = unit(0)
    [row] = choose_negatives(query, [0], pool, [{0, 1}], depth=5, max_ratio=0.95)
    assert row == 3  # cos 10 deg = 0.985 >= 0.95 x 1.0 is skipped as a likely false negative; cos 40 deg = 0.77 is not
    assert choose_negatives(query, [0], pool, [{0, 1}], depth=3, max_ratio=0.95) == [None]  # only rows 0-2 considered
    assert choose_negatives(query, [0], pool, [{0, 1}], depth=5, max_ratio=0.999) == [2]
    # a positive at cosine -0.5 (120 deg): a candidate at -0.49 (119.4 deg) is more similar and must not be chosen
    assert choose_negatives(query, [0], unit(120, 119.4, 150), [{0}], depth=3, max_ratio=0.95) == [2]


class ToyEmbedder:
    """Stands in for medeir.encode.Embedder: each text's vector is looked up in a table."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def encode_queries(self, texts, **_):
        return np.stack([self.table[t] for t in texts])

    encode_documents = encode_queries


def write_gz(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_mine_file_mirrors_records_and_mines_only_where_allowed(tmp_path):
    records = [
        {"query": "q0", "positive": "p0", "qid": "a"},
        {"query": "q0 again", "positive": "p0b", "qid": "a"},  # same question: p0 and p0b never negatives of each other
        {"query": "q1", "positive": "p1"},
        {"query": "q2", "positive": "p2", "negative": "own"},  # keeps its own negative
        {"sentence1": "s1", "sentence2": "s2", "score": 5.0},  # STS-style: passed through
        {"query": "held", "positive": "p-held"},  # held out by `keep`: unchanged and not a candidate
    ]
    angles = {"q0": 0, "q0 again": 3, "q1": 60, "p0": 0, "p0b": 2, "p1": 60, "p2": 120, "p-held": 1, "q2": 120}
    toy = ToyEmbedder({text: unit(a)[0] for text, a in angles.items()})
    source = write_gz(tmp_path / "in" / "pairs.jsonl.gz", records)
    target = tmp_path / "out" / "pairs.jsonl.gz"
    stats = mine_file(source, target, toy, toy, lambda name, r: r.get("query") != "held", depth=10, max_ratio=0.99)
    out = [record for _, record in read_jsonl(target)]
    assert len(out) == len(records) and [r.get("query") for r in out] == [r.get("query") for r in records]
    # q0 and "q0 again" share group a, so p0/p0b are their own; p-held is held out and no candidate
    assert out[0]["negative"] == "p1" and out[1]["negative"] == "p1"
    # q1 at 60 deg: p0b (58 deg away) beats p0 (60); p2 is no candidate (its record has its own negative)
    assert out[2]["negative"] == "p0b"
    assert out[3:] == records[3:]
    assert (stats.records, stats.mined) == (6, 3)


def test_mine_negatives_cli_on_a_tiny_model(tmp_path, tiny_model_folder):
    data = tmp_path / "data"
    medquad = [{"query": f"what causes disease {i}?", "positive": f"gene {i} causes disease {i}."} for i in range(12)]
    mqp = [{"query": f"is {i} bad?", "positive": f"is {i} harmful?", "negative": f"what is {i}?"} for i in range(4)]
    write_gz(data / "train" / "medquad_pairs.jsonl.gz", medquad)
    write_gz(data / "train" / "mqp_pairs.jsonl.gz", mqp)
    out = tmp_path / "mined"
    args = ["mine-negatives", "--config", REPO / "configs" / "tiny.yaml", "--model", tiny_model_folder,
            "--data", data, "--output", out, "--max-ratio", "1.0"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "mining.json").read_text())
    assert report["files"]["train/mqp_pairs.jsonl.gz"] == {"records": 4, "mined": 0}
    mined = [record for _, record in read_jsonl(out / "train" / "medquad_pairs.jsonl.gz")]
    assert [r["query"] for r in mined] == [r["query"] for r in medquad]
    with_negative = [r for r in mined if "negative" in r]
    assert len(with_negative) == report["files"]["train/medquad_pairs.jsonl.gz"]["mined"]
    assert all(r["negative"] != r["positive"] for r in with_negative)
    assert {r["negative"] for r in with_negative} <= {r["positive"] for r in medquad}
    assert len(read_pairs(out / "train" / "medquad_pairs.jsonl.gz", holdout_filter)) > 0


def test_mine_negatives_refuses_to_overwrite_its_inputs(tmp_path, tiny_model_folder):
    write_gz(tmp_path / "train" / "medquad_pairs.jsonl.gz", [{"query": "q", "positive": "p"}])
    args = ["mine-negatives", "--config", REPO / "configs" / "tiny.yaml", "--model", tiny_model_folder,
            "--data", tmp_path, "--output", tmp_path]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1 and "must differ" in result.output


def test_mixture_never_shows_a_passage_twice_in_one_batch():
    pairs = [Pair("q0", "p0", negative="p1", group="0"), Pair("q1", "p1", negative="p0", group="1")]
    pairs += [Pair(f"q{i}", f"p{i}", negative=f"n{i}", group=str(i)) for i in range(2, 6)]
    for seed in range(20):
        batch = PairMixture({"a": pairs}, {"a": 1.0}, seed=seed).batch(4)
        texts = [p.positive for p in batch] + [p.negative for p in batch]
        assert len(texts) == len(set(texts))


def test_mine_negatives_reports_a_missing_model_folder(tmp_path):
    write_gz(tmp_path / "data" / "train" / "medquad_pairs.jsonl.gz", [{"query": "q", "positive": "p"}])
    args = ["mine-negatives", "--config", REPO / "configs" / "tiny.yaml", "--model", tmp_path / "no-model",
            "--data", tmp_path / "data", "--output", tmp_path / "out"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1 and "no-model" in result.output and "Traceback" not in result.output
