"""Degraded BEIR copies: documents preprocessed like nfcorpus-degraded's, queries and qrels untouched, loadable."""

import json

import pytest

from medeir.evaluation.beir_data import load_beir
from medeir.evaluation.degrade import degrade_beir, degrade_text
from tests.test_eval_beir_data import QUERIES, write_beir


def test_degrade_text_lowercases_drops_stop_words_and_punctuation_and_masks_numbers():
    text = "The Low-Dose/Short-Term statin (HR 0.46; 95% CI) was given to Crohn's patients in 2,004 trials."
    assert degrade_text(text) == "low-dose/short-term statin hr num num ci given crohn's patients num trials"


def test_degrade_text_of_only_stop_words_and_punctuation_is_empty():
    assert degrade_text("It is what it is, as it was.") == ""


def test_degrade_beir_rewrites_documents_and_copies_queries_and_qrels(tmp_path):
    corpus = [
        {"_id": "d1", "title": "Aspirin and Fever", "text": "It lowers fever in 2 hours."},
        {"_id": "d2", "text": "IL-6"},
    ]
    source = write_beir(tmp_path / "set", corpus, QUERIES, ["q1\td1\t1\n", "q2\td2\t2\n"])
    assert degrade_beir(source, tmp_path / "out") == 2
    rows = [json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()]
    assert rows == [
        {"_id": "d1", "title": "", "text": "aspirin fever lowers fever num hours"},
        {"_id": "d2", "title": "", "text": "num"},
    ]
    assert (tmp_path / "out" / "queries.jsonl").read_bytes() == (source / "queries.jsonl").read_bytes()
    assert load_beir(tmp_path / "out").qrels == load_beir(source).qrels


def test_degrade_beir_refuses_a_folder_without_corpus_a_document_without_text_and_writing_over_its_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="no corpus.jsonl"):
        degrade_beir(tmp_path, tmp_path / "out")
    source = write_beir(tmp_path / "bad", [{"_id": "d1", "title": "x"}], QUERIES, ["q1\td1\t1\n"])
    with pytest.raises(ValueError, match=r"corpus.jsonl:1: missing field\(s\) \['text'\]"):
        degrade_beir(source, tmp_path / "out")
    source = write_beir(tmp_path / "set", [{"_id": "d1", "title": "", "text": "x"}], QUERIES, ["q1\td1\t1\n"])
    with pytest.raises(ValueError, match="must differ"):
        degrade_beir(source, source)
