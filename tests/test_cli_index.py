"""`medeir index`, `search` (one-shot and interactive), `demo` and `info` through the real CLI (CliRunner)."""

import json
import os
import re
import shutil

import pytest
import torch
from eval_helpers import make_tiny_medeir
from typer.testing import CliRunner

from medeir.cli import app
from medeir.demo import ATTRIBUTION, DEMO_QUESTION
from medeir.encode import Embedder
from medeir.index import Searcher, load_index
from medeir.loading import load_model

os.environ["HF_HUB_OFFLINE"] = "1"
HIT_LINE = re.compile(r"^ *(\d+)\. (-?\d\.\d{4})  (.+)$")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_medeir(tmp_path_factory.mktemp("tiny-index"))


def run(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def printed_hits(output: str) -> list[tuple[int, float, str]]:
    return [(int(m[1]), float(m[2]), m[3]) for m in map(HIT_LINE.match, output.splitlines()) if m]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    (folder / "lungs").mkdir(parents=True)
    (folder / "insulin.txt").write_text("Insulin lowers blood glucose in diabetes.", encoding="utf-8")
    (folder / "lungs" / "asthma.md").write_text("Asthma is treated with inhaled corticosteroids.", encoding="utf-8")
    (folder / "wrist.txt").write_text("A fall on the hand can fracture the scaphoid.", encoding="utf-8")
    return folder


def test_index_a_folder_then_search_prints_ranked_hits_with_source(tmp_path, tiny_folder, corpus):
    index_dir = tmp_path / "idx"
    result = run("index", corpus, "--index", index_dir, "--model", tiny_folder, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert re.match(rf"indexed 3 new and 0 replaced documents \(3 chunks\) in \d+\.\ds; {index_dir} now holds "
                    r"3 documents, 3 chunks", result.stdout)
    result = run("search", "--index", index_dir, "how is diabetes treated", "--top-k", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    expected = Searcher(index_dir, device="cpu").search("how is diabetes treated", top_k=2)
    assert printed_hits(result.stdout) == [(i + 1, round(h.score, 4), h.doc_id) for i, h in enumerate(expected)]
    assert f"    source: {expected[0].source}\n    {expected[0].text}\n" in result.stdout


def test_indexing_jsonl_again_adds_and_replaces(tmp_path, tiny_folder):
    index_dir = tmp_path / "idx"
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps({"id": "x", "title": "Old", "text": "old text"}) + "\n"
                     + json.dumps({"id": "y", "text": "kept"}) + "\n")
    second.write_text(json.dumps({"id": "x", "title": "New", "text": "new text", "source": "site"}) + "\n"
                      + json.dumps({"id": "z", "text": "added"}) + "\n")
    assert run("index", first, "--index", index_dir, "--model", tiny_folder).exit_code == 0
    result = run("index", second, "--index", index_dir)  # the model comes from the index
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("indexed 1 new and 1 replaced documents (2 chunks)")
    records = {r["doc_id"]: r for r in load_index(index_dir).records}
    assert sorted(records) == ["x", "y", "z"]
    assert (records["x"]["title"], records["x"]["text"], records["x"]["source"]) == ("New", "new text", "site")
    assert records["y"]["source"] == "a.jsonl:2"


def test_files_without_ids_do_not_replace_each_other(tmp_path, tiny_folder):
    """Without an id field, a record's id is FILE:LINE, so line 1 of one file does not replace line 1 of another."""
    index_dir = tmp_path / "idx"
    for name, text in (("a.jsonl", "asthma inhaler"), ("b.jsonl", "broken wrist")):
        (tmp_path / name).write_text(json.dumps({"text": text}) + "\n")
        result = run("index", tmp_path / name, "--index", index_dir, "--model", tiny_folder)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("indexed 1 new and 0 replaced documents")
    assert sorted(r["doc_id"] for r in load_index(index_dir).records) == ["a.jsonl:1", "b.jsonl:1"]


def test_hybrid_search_prints_the_fused_ranking(tmp_path, tiny_folder, corpus):
    index_dir = tmp_path / "idx"
    assert run("index", corpus, "--index", index_dir, "--model", tiny_folder).exit_code == 0
    result = run("search", "--index", index_dir, "scaphoid", "--hybrid", "--device", "cpu")
    assert result.exit_code == 0, result.output
    expected = Searcher(index_dir, device="cpu", hybrid=True).search("scaphoid", top_k=5)
    assert expected[0].doc_id.endswith("wrist.txt")  # BM25's only match: 1/61, plus 1/(60 + its cosine rank)
    assert 1 / 61 + 1 / 63 <= expected[0].score <= 2 / 61
    assert printed_hits(result.stdout) == [(i + 1, round(h.score, 4), h.doc_id) for i, h in enumerate(expected)]


def test_hybrid_search_without_bm25s_is_a_one_line_error(tmp_path, tiny_folder, corpus, without_bm25s):
    index_dir = tmp_path / "idx"
    assert run("index", corpus, "--index", index_dir, "--model", tiny_folder).exit_code == 0
    result = run("search", "--index", index_dir, "scaphoid", "--hybrid", "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: hybrid search needs the bm25s and PyStemmer packages")
    assert result.stderr.rstrip().endswith("pip install 'medeir[hybrid]'") and result.stderr.count("\n") == 1


def test_interactive_search_answers_each_line_until_an_empty_one(tmp_path, tiny_folder, corpus):
    index_dir = tmp_path / "idx"
    assert run("index", corpus, "--index", index_dir, "--model", tiny_folder).exit_code == 0
    result = run("search", "--index", index_dir, "-k", "1", input="asthma inhaler\nbroken wrist\n\nnot asked\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("question> ") == 3
    searcher = Searcher(index_dir, device="cpu")
    expected = [searcher.search(q, top_k=1)[0].doc_id for q in ("asthma inhaler", "broken wrist")]
    assert [doc for _, _, doc in printed_hits(result.stdout)] == expected


def test_search_truncates_a_question_longer_than_the_context_with_a_warning(tmp_path, tiny_folder, corpus):
    index_dir = tmp_path / "idx"
    assert run("index", corpus, "--index", index_dir, "--model", tiny_folder).exit_code == 0
    result = run("search", "--index", index_dir, "insulin " * 300, "-k", "1")
    assert result.exit_code == 0, result.output
    assert "warning: 1 text(s) exceed 128 tokens and were truncated" in result.stderr
    assert len(printed_hits(result.stdout)) == 1


@pytest.mark.slow
def test_demo_builds_then_reuses_its_index_and_prints_attribution(tmp_path, tiny_folder):
    index_dir = tmp_path / "demo-index"
    result = run("demo", "--model", tiny_folder, "--index", index_dir, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert re.search(rf"Index: {re.escape(str(index_dir))} \(built in \d+\.\ds \(300 documents\)\)", result.stdout)
    assert f"Question: {DEMO_QUESTION}" in result.stdout and result.stdout.rstrip().endswith(ATTRIBUTION)
    hits = printed_hits(result.stdout)
    assert [rank for rank, _, _ in hits] == [1, 2, 3, 4, 5]
    assert [score for _, score, _ in hits] == sorted((score for _, score, _ in hits), reverse=True)
    assert result.stdout.count("source: medquad/") == 5
    expected = Searcher(index_dir, embedder=Embedder(tiny_folder, device="cpu")).search(DEMO_QUESTION, top_k=5)
    assert [title for _, _, title in hits] == [h.title for h in expected]

    again = run("demo", "how is asthma treated", "-k", "3", "--model", tiny_folder, "--index", index_dir)
    assert again.exit_code == 0 and f"Index: {index_dir} (reused)" in again.stdout
    assert len(printed_hits(again.stdout)) == 3

    other = shutil.copytree(tiny_folder, tmp_path / "other-model")  # different weights: the index is rebuilt
    (other / "config.json").write_text((other / "config.json").read_text().replace('"initializer_range": 0.02',
                                                                                   '"initializer_range": 0.03'))
    rebuilt = run("demo", "--model", other, "--index", index_dir)
    assert rebuilt.exit_code == 0 and "(built in " in rebuilt.stdout


def test_info_reports_the_model_and_the_backends(tiny_folder):
    result = run("info", "--model", tiny_folder, "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    parameters = sum(p.numel() for p in load_model(tiny_folder, device="cpu").parameters())
    assert lines["parameters"] == f"{parameters:,}" and lines["dim"] == "32" and lines["context_length"] == "128"
    assert lines["layers"] == "2" and lines["heads"] == "4"
    assert lines["tokenizer_vocab"] == f"{load_model(tiny_folder, device='cpu').config.vocab_size:,}"
    assert lines["prompts"] == "query='query: ', document='passage: '"
    assert lines["model"] == str(tiny_folder.resolve()) and lines["device"] == "cpu"
    backends = lines["attention_backends"].split(", ")
    assert backends[:2] == ["eager", "sdpa"]
    torch_version = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    assert ("flex_attention" in backends) == (torch_version >= (2, 5))  # FlexAttention shipped in torch 2.5
    if not torch.cuda.is_available():
        assert "flash_attention_2" not in backends
