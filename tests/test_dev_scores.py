"""scripts/dev_scores.py: the MQP development fifth is kept out of training and away from the test fifth, and the
retrieval score is MRR@10."""

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from medeir.evaluation.beir_data import load_beir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dev_scores():
    spec = importlib.util.spec_from_file_location("dev_scores", REPO / "scripts" / "dev_scores.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_jsonl(path: Path, records: list[dict]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_split_keeps_the_development_fifth_out_of_training(dev_scores, tmp_path):
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    mqp = [{"query": f"question {i}?", "positive": f"rewrite {i}?", "negative": f"other {i}?"} for i in range(12)]
    write_jsonl(data / "mqp_pairs.jsonl.gz", mqp)
    pairs = [{"query": f"query {i}", "positive": f"passage {i}"} for i in range(30)]
    for name in ("rqe_pairs.jsonl.gz", *dev_scores.RETRIEVAL_FILES):
        write_jsonl(data / name, pairs)
    write_jsonl(data / "stsb_train.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 1.0}])
    write_jsonl(data / "stsb_dev.jsonl", [{"sentence1": "c", "sentence2": "d", "score": 2.0}])
    write_abstracts(tmp_path / "data")
    out = tmp_path / "split"
    dev_scores.split(tmp_path / "data", out)
    with gzip.open(out / "train" / "mqp_pairs.jsonl.gz", "rt", encoding="utf-8") as handle:
        trained = [json.loads(line)["query"] for line in handle]
    developed = [json.loads(line)["query"] for line in (out / "dev" / "mqp_dev.jsonl").read_text().splitlines()]
    assert developed == ["question 1?", "question 6?", "question 11?"]
    assert trained == [f"question {i}?" for i in (2, 3, 4, 7, 8, 9)]  # neither the test (0, 5, 10) nor dev fifth
    for name in ("rqe_pairs.jsonl.gz", "stsb_train.jsonl"):
        assert (out / "train" / name).read_bytes() == (data / name).read_bytes()
    sample = (out / "dev" / "medquad_pairs_sample.jsonl").read_text().splitlines()
    assert len(sample) == 30 and len(set(sample)) == 30
    degraded = [json.loads(line) for line in (out / "dev" / "conclusions-degraded" / "corpus.jsonl").open()]
    assert [d["text"] for d in degraded][0].startswith("sodium intake measured num adults")


KEPT = ("Sodium intake was measured in 40 adults. Blood pressure was recorded twice. Diet logs were kept. "
        "Lower sodium intake went with lower systolic blood pressure in these adults.")


def write_abstracts(data: Path) -> None:
    """Staged abstracts: one a title -> abstract pair's positive, one too short, one whose last sentence is too short,
    and two that become conclusion queries."""
    (data / "extra").mkdir(parents=True, exist_ok=True)
    (data / "extra2").mkdir(parents=True, exist_ok=True)
    paired = "Aspirin was given. Pain was scored. Scores fell. Aspirin lowered pain scores in the treated group."
    lines = [
        "A title. " + paired,
        "Two sentences only. The second one is long enough to be a finding of the study here.",
        "One. Two. Three. Too short.",
        KEPT,
        "Mice were fed fat. Weights were taken. Livers were weighed! Mice fed fat gained weight and grew fatty "
        "livers over twelve weeks.",
    ]
    write_jsonl(data / "extra" / "pubmed_title_pairs.jsonl.gz", [{"query": "A title", "positive": paired}])
    write_jsonl(data / "extra2" / "pubmed_title_pairs2.jsonl.gz", [{"query": "B", "positive": "Not staged."}])
    with gzip.open(data / "extra2" / "pubmed_abstracts.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def test_conclusions_are_the_last_sentences_of_abstracts_no_pair_holds(dev_scores, tmp_path):
    write_abstracts(tmp_path)
    assert dev_scores.write_conclusions(tmp_path, tmp_path / "out") == 2
    data = load_beir(tmp_path / "out")
    assert data.queries == {
        "q3": "Lower sodium intake went with lower systolic blood pressure in these adults.",
        "q4": "Mice fed fat gained weight and grew fatty livers over twelve weeks.",
    }
    assert data.corpus["a3"] == KEPT.rsplit(" Lower", 1)[0]
    assert data.corpus["a4"] == "Mice were fed fat. Weights were taken. Livers were weighed!"
    assert data.qrels == {"q3": {"a3": 1}, "q4": {"a4": 1}}


class Exact:
    """Embeds a text as the one-hot vector of its number: each query matches its own passage alone."""

    @staticmethod
    def _embed(texts: list[str]) -> np.ndarray:
        return np.eye(20)[[int(t.split()[-1]) for t in texts]]

    encode_queries = encode_documents = _embed


class Second(Exact):
    """Every query finds passage (i + 1) mod 20 first and its own one second."""

    @staticmethod
    def encode_queries(texts: list[str]) -> np.ndarray:
        own = Exact._embed(texts)
        return own + 2 * np.roll(own, 1, axis=1)


def test_conclusion_ndcg_is_100_for_an_exact_encoder_and_lower_when_shifted(dev_scores, tmp_path):
    (tmp_path / "qrels").mkdir()
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": f"a{i}", "title": "", "text": f"passage {i}"} for i in range(20)])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": f"q{i}", "text": f"query {i}"} for i in range(20)])
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                 + "".join(f"q{i}\ta{i}\t1\n" for i in range(20)))
    assert dev_scores.conclusion_ndcg(Exact(), tmp_path) == pytest.approx(100.0)
    assert dev_scores.conclusion_ndcg(Second(), tmp_path) == pytest.approx(100 / np.log2(3))


def test_retrieval_mrr_is_100_for_an_exact_encoder_and_counts_only_the_top_ten(dev_scores, tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{"query": f"query {i}", "positive": f"passage {i}"} for i in range(20)])
    assert dev_scores.retrieval_mrr(Exact(), path) == pytest.approx(100.0)
    assert dev_scores.retrieval_mrr(Second(), path) == pytest.approx(50.0)

    class Eleventh(Exact):  # ten other passages first: the own one is 11th and counts nothing
        @staticmethod
        def encode_queries(texts):
            own = Exact._embed(texts)
            return own + 2 * sum(np.roll(own, shift, axis=1) for shift in range(1, 11))

    assert dev_scores.retrieval_mrr(Eleventh(), path) == 0.0


def test_finding_pairs_come_from_the_abstracts_the_development_set_leaves_out(dev_scores, tmp_path):
    from medeir.train.conclusion_pairs import write_pairs

    write_abstracts(tmp_path)
    assert write_pairs(tmp_path, tmp_path / "pairs.jsonl.gz") == 1
    with gzip.open(tmp_path / "pairs.jsonl.gz", "rt", encoding="utf-8") as handle:
        pairs = [json.loads(line) for line in handle]
    assert pairs == [{"query": "Aspirin lowered pain scores in the treated group.",
                      "positive": "A title. Aspirin was given. Pain was scored. Scores fell.",
                      "source": "pubmed_conclusion"}]
    dev_scores.write_conclusions(tmp_path, tmp_path / "dev")
    assert pairs[0]["query"] not in load_beir(tmp_path / "dev").queries.values()


def test_an_abstract_ending_in_a_short_positive_counts_as_paired(tmp_path):
    from medeir.train.conclusion_pairs import PAIRED_TAIL, staged_abstracts

    write_abstracts(tmp_path)
    short = "Fat made mice fat."  # shorter than the tail that positives are looked up by
    assert len(short) < PAIRED_TAIL
    write_jsonl(tmp_path / "extra2" / "pubmed_title_pairs2.jsonl.gz", [{"query": "B", "positive": short}])
    with gzip.open(tmp_path / "extra2" / "pubmed_abstracts.txt.gz", "at", encoding="utf-8") as handle:
        handle.write("Mice ate fat for weeks. Weights rose. Livers grew. " + short + "\n")
    paired = [number for number, _ in staged_abstracts(tmp_path, paired=True)]
    assert paired == [0, 5]  # the first abstract (a title pair's positive) and the new one
    assert 5 not in [number for number, _ in staged_abstracts(tmp_path, paired=False)]
