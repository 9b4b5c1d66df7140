"""model-index written into a README.md card: parsed by huggingface_hub, other keys and the body kept."""

import json

import pytest
import yaml

from medeir.evaluation.model_card import update_model_index, update_model_index_from_file

CARD = """---
license: apache-2.0
pipeline_tag: sentence-similarity
widget:
- source_sentence: fever
  sentences: [pyrexia, fracture]
---

# MedEIR

Body text stays.
"""


def record(model, dataset, task, metrics):
    return {"model": model, "dataset": dataset, "task": task, "metrics": metrics, "encode_seconds": 1.0}


RECORDS = [
    record("medeir", "scifact", "retrieval", {"ndcg_at_10": 70.123, "recall_at_100": 90.0, "mrr_at_10": 66.6}),
    record("medeir", "scifact", "rerank", {"ndcg_at_10": 71.0, "mrr_at_10": 67.0, "bm25_ndcg_at_10": 68.6,
                                           "dense_ndcg_at_10": 70.1}),
    record("medeir", "scifact", "hybrid", {"ndcg_at_10": 72.0, "recall_at_100": 95.0, "mrr_at_10": 68.0}),
    record("medeir", "stsb-test", "sts", {"cos_sim_spearman": 80.5}),
    record("all-MiniLM-L6-v2", "stsb-test", "sts", {"cos_sim_spearman": 82.03}),
]


def test_model_index_is_written_and_parsed_by_huggingface_hub(tmp_path):
    from huggingface_hub import ModelCard

    readme = tmp_path / "README.md"
    readme.write_text(CARD)
    update_model_index(readme, RECORDS, "medeir")
    card = ModelCard.load(readme)
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == "sentence-similarity"
    assert card.data.to_dict()["widget"] == [{"source_sentence": "fever", "sentences": ["pyrexia", "fracture"]}]
    assert card.text.strip() == "# MedEIR\n\nBody text stays."
    results = {(r.task_type, r.dataset_type, r.metric_type): r for r in card.data.eval_results}
    assert results[("Retrieval", "BeIR/scifact", "ndcg_at_10")].metric_value == 70.12
    assert results[("Retrieval", "BeIR/scifact", "ndcg_at_10")].dataset_split == "test"
    assert results[("Reranking", "BeIR/scifact", "ndcg_at_10")].metric_value == 71.0
    assert results[("STS", "mteb/stsbenchmark-sts", "cos_sim_spearman")].metric_value == 80.5
    # 3 retrieval + 2 rerank + 1 sts; no baseline, no BM25/dense extras, no hybrid (BM25 and the model together)
    assert len(card.data.eval_results) == 6


def test_rerunning_replaces_results_instead_of_duplicating(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(CARD)
    update_model_index(readme, RECORDS, "medeir")
    update_model_index(readme, [record("medeir", "stsb-test", "sts", {"cos_sim_spearman": 83.0})], "medeir")
    index = yaml.safe_load(readme.read_text().split("---")[1])["model-index"]
    assert [entry["name"] for entry in index] == ["medeir"]
    sts = [r for r in index[0]["results"] if r["task"]["type"] == "STS"]
    assert len(index[0]["results"]) == 3 and sts[0]["metrics"][0]["value"] == 83.0


def test_card_without_front_matter_gets_one_and_results_file_defaults_to_the_evaluated_model(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "results.json"
    readme.write_text("# Plain card\n")
    results.write_text(json.dumps({"model": "all-MiniLM-L6-v2", "results": RECORDS}))
    metadata = update_model_index_from_file(readme, results)
    assert metadata["model-index"][0]["name"] == "all-MiniLM-L6-v2"
    assert readme.read_text().startswith("---\nmodel-index:") and readme.read_text().endswith("# Plain card\n")
    with pytest.raises(ValueError, match="no results for model 'nobody'"):
        update_model_index(readme, RECORDS, "nobody")
    with pytest.raises(ValueError, match="none of 'medeir'.s results belongs in a model card"):
        update_model_index(readme, [r for r in RECORDS if r["task"] == "hybrid"], "medeir")
