"""Focus and aspect pairs: MedQuAD's topic, alone or with its question type's word, as a query for each of its
answers, grouped per topic, hold-outs left out."""

import gzip
import json

from medeir.evaluation.clustering import clustering_answers
from medeir.train.data import PairMixture, read_pairs
from medeir.train.focus_pairs import ASPECT_TARGET, TARGET, aspect_records, focus_records, write_focus_pairs
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
        {"query": "How is topic A treated?", "positive": held, "focus": "Topic A", "qtype": "treatment"},
        {"query": "What is topic B?", "positive": "kept answer", "focus": "Topic B"},
        {"query": "How is topic B treated?", "positive": "other answer", "focus": "topic b", "qtype": "treatment"},
    ]
    source = tmp_path / "data" / "train" / "medquad_pairs.jsonl.gz"
    source.parent.mkdir(parents=True)
    with gzip.open(source, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    assert write_focus_pairs(tmp_path / "data", tmp_path / "out") == {TARGET: 2, ASPECT_TARGET: 1}
    aspect = read_pairs(tmp_path / "out" / ASPECT_TARGET, holdout_filter)
    assert [(p.query, p.positive, p.group) for p in aspect] == [("topic b treatment", "other answer", "focus:topic b")]
    pairs = read_pairs(tmp_path / "out" / TARGET, holdout_filter)
    assert [(p.query, p.positive) for p in pairs] == [("Topic B", "kept answer"), ("topic b", "other answer")]
    assert pairs[0].group == pairs[1].group == "focus:topic b"
    assert not holdout_filter(TARGET.name, {"query": "Topic A", "positive": held})  # the loader would skip it too
    batch = PairMixture({"focus": pairs}, {"focus": 1.0}, seed=0).batch(2)
    assert len(batch) == 1  # the queries differ; one topic, so one of its answers a batch


def test_aspect_records_name_the_question_type_and_skip_types_without_a_search_word():
    records = [
        {"query": "How to treat glaucoma?", "positive": "A1", "focus": "Glaucoma", "qtype": "treatment"},
        {"query": "What tests find glaucoma?", "positive": "A2", "focus": "Glaucoma", "qtype": "exams and tests"},
        {"query": "What is glaucoma?", "positive": "A3", "focus": "Glaucoma", "qtype": "information"},  # bare topic
        {"query": "Glaucoma support?", "positive": "A4", "focus": "Glaucoma", "qtype": "support groups"},  # no word
        {"query": "Glaucoma treatment", "positive": "A5", "focus": "Glaucoma", "qtype": "treatment"},  # is the query
        {"query": "Treating glaucoma?", "positive": "A1", "focus": "glaucoma", "qtype": "treatment"},  # seen
        {"query": "How common is it?", "positive": "A6", "qtype": "frequency"},  # no focus
    ]
    pairs = [(r["query"], r["positive"], r["qid"]) for r in aspect_records(records)]
    assert pairs == [("Glaucoma treatment", "A1", "focus:glaucoma"), ("Glaucoma diagnosis", "A2", "focus:glaucoma")]
    # Grouped with the bare-topic pairs: a batch never holds "Glaucoma" and "Glaucoma treatment" from these files.
    assert {r["qid"] for r in focus_records(records)} == {"focus:glaucoma"}
