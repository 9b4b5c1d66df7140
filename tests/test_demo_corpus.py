"""The bundled demo corpus: size, fields, attribution, no evaluation data, and reproducible from its script."""

import importlib.util
import json

import pytest

from medeir.demo import ATTRIBUTION, DEMO_CORPUS
from medeir.documents import load_documents
from medeir.evaluation.data_paths import BEIR_DIRS, MEDQUAD_FILE
from medeir.loading import DEFAULT_MODEL_PATH

RECORDS = [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines()]


def test_corpus_has_300_attributed_records_under_500_kb():
    assert len(RECORDS) == 300 and DEMO_CORPUS.stat().st_size < 500_000
    assert len({r["id"] for r in RECORDS}) == 300 and len({r["text"] for r in RECORDS}) == 300
    for record in RECORDS:
        assert set(record) == {"id", "title", "text", "focus", "qtype", "source"}
        assert record["source"].startswith("medquad/") and record["title"].strip() and record["text"].strip()
    assert sum("diabetes" in r["focus"].lower() for r in RECORDS) == 20
    assert "CC BY 4.0" in ATTRIBUTION and "Ben Abacha" in ATTRIBUTION
    assert len(load_documents(DEMO_CORPUS)) == 300  # the documents the demo indexes


def test_corpus_is_packaged_with_its_notice():
    notice = (DEMO_CORPUS.parent / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "Ben Abacha" in notice
    assert 'medeir = ["data/*.jsonl", "data/*.md"]' in (DEFAULT_MODEL_PATH / "pyproject.toml").read_text()


@pytest.mark.skipif(not MEDQUAD_FILE.is_file(), reason="the staged training data is not on this machine")
def test_corpus_is_regenerated_exactly_and_holds_no_evaluation_text():
    from medeir.evaluation.clustering import clustering_sample

    spec = importlib.util.spec_from_file_location("make_demo_corpus",
                                                  DEFAULT_MODEL_PATH / "scripts" / "make_demo_corpus.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.select(MEDQUAD_FILE, 300) == RECORDS
    texts = {r["text"] for r in RECORDS}
    assert not texts & set(clustering_sample(MEDQUAD_FILE)[0])
    for folder in BEIR_DIRS:
        corpus = folder / "corpus.jsonl"
        if corpus.is_file():
            assert not texts & {json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()}
