"""Focus pairs: MedQuAD's topic as a query for each of its answers, grouped per topic, hold-outs left out."""

import gzip
import json

from medeir.evaluation.clustering import clustering_answers
from medeir.train.data import PairMixture, read_pairs
from medeir.train.focus_pairs import TARGET, focus_records, write_focus_pairs
from medeir.train.tasks import holdout_filter


def test_focus_records_keep_one_pair_per_topic_and_answer():
    records = [
        {"query": "What is glaucoma?", "positive": "A1", "focus": "Glaucoma"},
        {"query": "What causes glaucoma?", "positive": "A2", "focus": " Glaucoma "},
        {"query": "Is glaucoma inherited?", "positive": "A1", "focus": "glaucoma"},  # topic and answer seen: skipped
        {"query": "Tell me more", "positive": "A3"},  # no focus
        {"query": "anemia", "positive": "A4", "focus": "Anemia"},  # the question is its bare focus
    ]
    pairs = [(r["query"], r["positive"], r["qid"]) for r in focus_records(records)]
    assert pairs == [("Glaucoma", "A1", "focus:glaucoma"), ("Glaucoma", "A2", "focus:glaucoma")]


def test_written_focus_pairs_leave_out_the_clustering_sample_and_share_a_group_per_topic(tmp_path):
    held = min(clustering_answers())
    records = [
        {"query": "What is topic A?", "positive": held, "focus": "Topic A"},
        {"query": "What is topic B?", "positive": "kept answer", "focus": "Topic B"},
        {"query": "How is topic B treated?", "positive": "other answer", "focus": "topic b"},
    ]
    source = tmp_path / "data" / "train" / "medquad_pairs.jsonl.gz"
    source.parent.mkdir(parents=True)
    with gzip.open(source, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    assert write_focus_pairs(tmp_path / "data", tmp_path / "out") == 2
    pairs = read_pairs(tmp_path / "out" / TARGET, holdout_filter)
    assert [(p.query, p.positive) for p in pairs] == [("Topic B", "kept answer"), ("topic b", "other answer")]
    assert pairs[0].group == pairs[1].group == "focus:topic b"
    assert not holdout_filter(TARGET.name, {"query": "Topic A", "positive": held})  # the loader would skip it too
    batch = PairMixture({"focus": pairs}, {"focus": 1.0}, seed=0).batch(2)
    assert len(batch) == 1  # the queries differ; one topic, so one of its answers a batch
