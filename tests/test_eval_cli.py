"""`medeir eval` / `medeir eval-card` end to end on a tiny random MedEIR folder and hand-made data (no MiniLM)."""

import json

import pytest
import typer
import yaml
from eval_helpers import make_tiny_medeir
from test_eval_beir_data import CORPUS, QUERIES, write_beir
from typer.testing import CliRunner

from medeir.cli_eval import eval_card_command, eval_command


@pytest.fixture
def app():
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("eval-card")(eval_card_command)
    return app


def test_eval_then_eval_card(app, tmp_path):
    model = make_tiny_medeir(tmp_path / "tiny-model")
    beir = write_beir(tmp_path / "scifact", CORPUS, QUERIES, ["q1\td1\t1\n", "q2\td2\t1\n"])
    sts = tmp_path / "sts.jsonl"
    sts.write_text("".join(json.dumps({"sentence1": f"s{i}", "sentence2": f"t{i}", "score": i}) + "\n"
                           for i in range(5)))
    mqp = tmp_path / "mqp.jsonl"
    mqp.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}", "negative": f"n{i}"}) + "\n"
                           for i in range(10)))
    out = tmp_path / "out"
    args = ["eval", "--model", str(model), "--data", str(beir), "--baseline", "bm25", "--task", "retrieval",
            "--task", "rerank", "--task", "sts", "--task", "pairs", "--sts-file", str(sts), "--mqp-file", str(mqp),
            "--output", str(out), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # a folder named like a staged set but elsewhere is not reported (or put into a card) as that set
    assert "| retrieval | scifact-custom | nDCG@10 |" in result.output
    # files other than the staged standard ones are named by their file names, never as STS-B test / MQP held-out
    assert "| sts | sts | Spearman (cosine) |" in result.output and "| pairs | mqp |" in result.output
    summary = json.loads((out / "results.json").read_text())
    assert summary["model"] == "tiny-model" and summary["models"] == ["tiny-model", "BM25"]
    # every record says how it was produced
    assert summary["options"] == {"model": str(model), "max_length": None, "batch_size": 32}
    assert all(r["options"] == summary["options"] and r["machine"]["device"] == "cpu" for r in summary["results"])
    assert {(r["model"], r["task"]) for r in summary["results"]} == {
        ("BM25", "retrieval"), ("tiny-model", "retrieval"), ("tiny-model", "rerank"), ("tiny-model", "sts"),
        ("tiny-model", "pairs")}
    assert all(0 <= v <= 100 for r in summary["results"] if r["task"] != "sts" for v in r["metrics"].values())

    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: mit\n---\n# card\n")
    result = CliRunner().invoke(app, ["eval-card", str(out / "results.json"), "--model-card", str(readme)])
    assert result.exit_code == 0, result.output
    metadata = yaml.safe_load(readme.read_text().split("---")[1])
    assert metadata["license"] == "mit" and metadata["model-index"][0]["name"] == "tiny-model"
    results = metadata["model-index"][0]["results"]
    assert [r["task"]["type"] for r in results] == ["Retrieval", "Reranking", "STS", "PairClassification"]
    assert results[0]["dataset"]["type"] == "scifact-custom"
    assert sum(len(r["metrics"]) for r in results) == 3 + 2 + 1 + 1


def test_eval_reports_bad_input_as_a_usage_error(app, tmp_path):
    result = CliRunner().invoke(app, ["eval", "--task", "retreival", "--baseline", "none", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "unknown task(s) ['retreival']" in result.output
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path / "missing"), "--task", "retrieval"])
    assert result.exit_code == 2 and "BEIR folder not found" in result.output


def test_only_the_staged_standard_files_get_the_standard_names(tmp_path, monkeypatch):
    from medeir.evaluation.runner import dataset_label

    standard = tmp_path / "eval" / "stsb" / "test.jsonl"
    standard.parent.mkdir(parents=True)
    standard.write_text("")
    monkeypatch.chdir(tmp_path)
    assert dataset_label("eval/stsb/../stsb/test.jsonl", standard, "stsb-test") == "stsb-test"  # same file
    assert dataset_label(tmp_path / "stsb_dev.jsonl", standard, "stsb-test") == "stsb_dev"
    assert dataset_label("mqp_pairs.jsonl.gz", tmp_path / "train" / "mqp_pairs.jsonl.gz", "mqp-holdout") == "mqp_pairs"


def test_a_beir_folder_named_like_a_staged_set_is_not_reported_as_it(tmp_path, monkeypatch):
    from medeir.evaluation.runner import beir_label

    staged = [tmp_path / "eval" / "scifact", tmp_path / "eval" / "nfcorpus-degraded"]
    monkeypatch.chdir(tmp_path)
    assert beir_label("eval/../eval/scifact", staged) == "scifact"  # the staged folder itself
    assert beir_label(tmp_path / "subset" / "scifact", staged) == "scifact-custom"
    assert beir_label(tmp_path / "scifact-degraded", staged) == "scifact-degraded"


def test_paired_command_scores_the_run_that_medeir_eval_scores(app, tmp_path, capsys):
    from medeir.evaluation.beir_data import load_beir
    from medeir.evaluation.paired import grouped_differences
    from medeir.evaluation.paired import main as paired_main
    from medeir.evaluation.query_length import per_query_ndcg

    model = make_tiny_medeir(tmp_path / "tiny-model", max_positions=256)  # read at 256 tokens, as the commands do
    words = ["fever", "insulin", "asthma", "statins", "anemia", "gout", "migraine", "eczema", "malaria", "rickets"]
    corpus = [{"_id": f"d{i}", "title": "", "text": f"{w} {words[(i + 3) % 10]}"} for i, w in enumerate(words * 2)]
    corpus += [{"_id": f"dup{i}", "title": "", "text": corpus[i]["text"]} for i in range(8)]  # ties, as in nfcorpus
    queries = [{"_id": f"q{i}", "text": w} for i, w in enumerate(words)]
    qrels = [f"q{i}\td{i}\t1\n" for i in range(10)] + [f"q{i}\tdup{i}\t2\n" for i in range(0, 8, 2)]
    beir = write_beir(tmp_path / "set", corpus, queries, qrels)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", "--model", str(model), "--data", str(beir), "--baseline", "none",
                                      "--task", "retrieval", "--max-length", "256", "--output", str(out)])
    assert result.exit_code == 0, result.output
    ndcg = next(r["metrics"]["ndcg_at_10"] for r in json.loads((out / "results.json").read_text())["results"])
    scores = per_query_ndcg(load_beir(beir), str(model))
    assert len(scores) == 10 and sum(scores.values()) / 10 == pytest.approx(ndcg, abs=0.005)

    paired_main(str(beir), str(model), [str(model)])
    line = capsys.readouterr().out.strip()
    assert line.endswith("difference +0.00 (95% interval +0.00 to +0.00, p = 1.0000)") and "10 queries" in line
    groups = {"first": [f"q{i}" for i in range(4)], "none": [], "rest": [f"q{i}" for i in range(4, 10)]}
    grouped = list(grouped_differences(load_beir(beir), groups, str(model), [str(model)]))
    assert [(spec, label, d.queries) for spec, label, d in grouped] == [(str(model), "first", 4),
                                                                       (str(model), "rest", 6)]
    for _, label, difference in grouped:
        assert difference.mean_a == pytest.approx(sum(scores[q] for q in groups[label]) / len(groups[label]))
