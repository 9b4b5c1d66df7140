"""BEIR loading: clear errors (missing files, bad JSON lines, empty corpus); unknown qrel docs are warned + counted."""

import json
import logging

import pytest

from medeir.evaluation.beir_data import load_beir, read_jsonl


def write_beir(folder, corpus, queries, qrels_lines):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(qrels_lines))
    return folder


CORPUS = [{"_id": "d1", "title": "Aspirin", "text": "lowers fever"}, {"_id": "d2", "title": "", "text": "insulin"}]
QUERIES = [{"_id": "q1", "text": "fever"}, {"_id": "q2", "text": "diabetes"}, {"_id": "q3", "text": "unjudged"}]


def test_loads_titles_and_keeps_only_judged_queries(tmp_path):
    data = load_beir(write_beir(tmp_path / "set", CORPUS, QUERIES, ["q1\td1\t1\n", "q2\td2\t2\n"]))
    assert data.name == "set"
    assert data.corpus == {"d1": "Aspirin lowers fever", "d2": "insulin"}
    assert data.queries == {"q1": "fever", "q2": "diabetes"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    assert data.skipped_qrels == 0


def test_qrels_naming_unknown_documents_are_warned_counted_and_skipped(tmp_path, caplog):
    lines = ["q1\td1\t1\n", "q1\tghost\t1\n", "q2\tghost2\t1\n", "q9\td1\t1\n"]
    with caplog.at_level(logging.WARNING):
        data = load_beir(write_beir(tmp_path / "set", CORPUS, QUERIES, lines))
    assert data.skipped_qrels == 3
    assert data.qrels == {"q1": {"d1": 1}}
    assert list(data.queries) == ["q1"]
    assert "skipped 3 qrel(s)" in caplog.text


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_file_is_named(tmp_path, missing):
    folder = write_beir(tmp_path / "set", CORPUS, QUERIES, ["q1\td1\t1\n"])
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load_beir(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_beir(tmp_path / "nope")


def test_bad_json_line_names_file_and_line(tmp_path):
    folder = write_beir(tmp_path / "set", CORPUS, QUERIES, ["q1\td1\t1\n"])
    with open(folder / "corpus.jsonl", "a") as handle:
        handle.write('{"_id": "d3", "text": \n')
    with pytest.raises(ValueError, match=r"corpus\.jsonl:3: invalid JSON"):
        load_beir(folder)


def test_record_missing_field_names_file_and_line(tmp_path):
    folder = write_beir(tmp_path / "set", CORPUS, [{"_id": "q1"}], ["q1\td1\t1\n"])
    with pytest.raises(ValueError, match=r"queries\.jsonl:1: missing field\(s\) \['text'\]"):
        load_beir(folder)


def test_bad_qrels_row_names_file_and_line(tmp_path):
    folder = write_beir(tmp_path / "set", CORPUS, QUERIES, ["q1\td1\t1\n", "q2\td2\thigh\n"])
    with pytest.raises(ValueError, match=r"test\.tsv:3: score 'high' is not an integer"):
        load_beir(folder)


def test_empty_corpus_is_a_clear_error(tmp_path):
    folder = write_beir(tmp_path / "set", [], QUERIES, ["q1\td1\t1\n"])
    with pytest.raises(ValueError, match="empty corpus"):
        load_beir(folder)


def test_no_usable_qrels_is_a_clear_error(tmp_path):
    folder = write_beir(tmp_path / "set", CORPUS, QUERIES, ["q1\tghost\t1\n"])
    with pytest.raises(ValueError, match="no usable qrels"):
        load_beir(folder)


def test_read_jsonl_reads_gzip_and_skips_blank_lines(tmp_path):
    import gzip

    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"a": 1}\n\n{"a": 2}\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]
