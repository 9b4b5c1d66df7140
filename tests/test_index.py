"""medeir.index: chunking, add/replace, search, atomic saves (also under SIGKILL) and load errors."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import make_tiny_medeir

import medeir.index
from medeir.documents import Document
from medeir.encode import Embedder
from medeir.evaluation.beir_data import document_text
from medeir.evaluation.bm25 import bm25_search
from medeir.evaluation.fusion import reciprocal_rank_fusion
from medeir.evaluation.metrics import ranked
from medeir.extras import MissingExtraError
from medeir.index import (
    MANIFEST,
    Searcher,
    VectorIndex,
    add_documents,
    load_index,
    model_fingerprint,
    read_manifest,
    split_text,
)
from medeir.loading import load_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """Random 2-layer model with a 128-token context and prompts "query: " / "passage: "."""
    return make_tiny_medeir(tmp_path_factory.mktemp("tiny-128"))


@pytest.fixture(scope="module")
def embedder(tiny_folder):
    return Embedder(tiny_folder, device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def single_token_words():
    """Whole vocabulary words: each is exactly one token, so token windows map back to words exactly."""
    vocab = load_tokenizer().get_vocab()
    return sorted(w for w in vocab if w.isascii() and w.isalpha() and len(w) > 4)[:400]


def test_split_text_windows_of_budget_tokens_overlapping_by_overlap(single_token_words):
    tokenizer = load_tokenizer()
    words = single_token_words[:250]
    text = " ".join(words)
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 250
    pieces = split_text(text, tokenizer, budget=100, overlap=30)
    # windows start at 0, 70, 140, 210 (the last one reaches the end)
    assert pieces == [" ".join(words[s : s + 100]) for s in (0, 70, 140, 210)]
    assert split_text(text, tokenizer, budget=250, overlap=30) == [text]
    assert split_text("short text", tokenizer, budget=3, overlap=1) == ["short text"]  # 2 tokens fit


def test_split_text_cuts_between_words(single_token_words):
    tokenizer = load_tokenizer()
    words = [a + b for a, b in zip(single_token_words[::2], single_token_words[1::2], strict=True)]  # 2+ tokens each
    text = ", ".join(words)
    pieces = split_text(text, tokenizer, budget=40, overlap=10)
    assert len(pieces) > 5
    previous_start, previous_end = -1, 0
    for piece in pieces:
        start = text.find(piece, previous_start + 1)
        end = start + len(piece)
        assert len(tokenizer(piece, add_special_tokens=False)["input_ids"]) <= 40
        assert start == 0 or not (text[start - 1] + text[start]).isalpha()  # no word is cut
        assert end == len(text) or not (text[end - 1] + text[end]).isalpha()
        assert 0 <= start < previous_end or previous_start == -1  # consecutive pieces overlap
        previous_start, previous_end = start, end
    assert text.startswith(pieces[0]) and text.endswith(pieces[-1])


def test_add_documents_builds_an_index_with_manifest_and_document_embeddings(tmp_path, embedder, tiny_folder):
    docs = [Document("a", "Insulin lowers blood glucose.", "Insulin", "kb.jsonl:1"),
            Document("b", "Asthma is treated with inhaled steroids.", "", "b.txt")]
    report = add_documents(docs, tmp_path / "idx", embedder=embedder, origin="kb")
    assert (report.added, report.replaced, report.chunks_added, report.documents, report.chunks) == (2, 0, 2, 2, 2)
    manifest = read_manifest(tmp_path / "idx")
    assert manifest["dim"] == 32 and manifest["max_length"] == 128 and manifest["overlap"] == 32
    assert manifest["model"] == str(tiny_folder.resolve()) and manifest["inputs"] == ["kb"]
    assert manifest["model_fingerprint"] == model_fingerprint(tiny_folder)
    index = load_index(tmp_path / "idx")
    expected = embedder.encode_documents(["Insulin Insulin lowers blood glucose.",
                                          "Asthma is treated with inhaled steroids."])
    np.testing.assert_allclose(index.embeddings, expected, atol=1e-6)
    assert [r["doc_id"] for r in index.records] == ["a", "b"]
    assert index.records[0] == {"doc_id": "a", "chunk": 0, "chunks": 1, "title": "Insulin", "source": "kb.jsonl:1",
                                "text": "Insulin lowers blood glucose."}


def test_adding_again_appends_and_replaces_documents_with_the_same_id(tmp_path, embedder):
    folder = tmp_path / "idx"
    add_documents([Document("a", "first a"), Document("b", "first b")], folder, embedder=embedder, origin="one")
    report = add_documents([Document("b", "second b"), Document("c", "new c")], folder, embedder=embedder, origin="two")
    assert (report.added, report.replaced, report.documents, report.chunks) == (1, 1, 3, 3)
    index = load_index(folder)
    assert [(r["doc_id"], r["text"]) for r in index.records] == [("a", "first a"), ("b", "second b"), ("c", "new c")]
    np.testing.assert_allclose(index.embeddings[1], embedder.encode_documents(["second b"])[0], atol=1e-6)
    assert index.manifest["inputs"] == ["one", "two"]
    assert len(list(folder.glob("embeddings-*.npy"))) == 1 and len(list(folder.glob("metadata-*.jsonl"))) == 1
    rebuilt = add_documents([Document("z", "only z")], folder, embedder=embedder, rebuild=True)
    assert (rebuilt.documents, load_index(folder).records[0]["doc_id"]) == (1, "z")


def test_long_documents_are_split_only_beyond_the_context(tmp_path, embedder, single_token_words):
    tokenizer = embedder.tokenizer
    long_text = " ".join(single_token_words[:300])
    short_text = " ".join(single_token_words[:120])  # 120 + 2 special + 2 prompt tokens <= 128: one chunk
    report = add_documents([Document("long", long_text), Document("short", short_text)], tmp_path / "idx",
                           embedder=embedder)
    budget = 128 - 2 - len(tokenizer("passage: ", add_special_tokens=False)["input_ids"])
    overlap = 32
    expected_chunks = 1 + math.ceil((300 - budget) / (budget - overlap))
    assert report.chunks == expected_chunks + 1
    records = load_index(tmp_path / "idx").records
    long_chunks = [r for r in records if r["doc_id"] == "long"]
    assert [r["chunk"] for r in long_chunks] == list(range(expected_chunks))
    assert all(r["chunks"] == expected_chunks for r in long_chunks)
    assert long_chunks[0]["text"] == " ".join(single_token_words[:budget])
    assert long_chunks[1]["text"].startswith(" ".join(single_token_words[budget - overlap : budget]))
    assert long_chunks[-1]["text"].endswith(single_token_words[299])


def test_a_long_title_is_an_error_only_for_a_document_that_must_be_split(tmp_path, embedder, single_token_words):
    title = " ".join(single_token_words[:100])  # leaves 128 - 2 special - prompt - 100 < 32 (overlap) tokens
    folder = tmp_path / "idx"
    add_documents([Document("fits", "short text", title=title)], folder, embedder=embedder)
    assert load_index(folder).records[0]["chunks"] == 1
    with pytest.raises(ValueError, match=r"document 'long' \(\): its title leaves \d+ of 128 tokens for text, too few"):
        add_documents([Document("long", " ".join(single_token_words[:60]), title=title)], folder, embedder=embedder)


def test_an_index_keeps_its_model_and_chunking(tmp_path, embedder, tiny_folder):
    folder = tmp_path / "idx"
    add_documents([Document("a", "text")], folder, embedder=embedder)
    with pytest.raises(ValueError, match="was built with overlap=32, got 5"):
        add_documents([Document("b", "text")], folder, embedder=embedder, overlap=5)
    other = make_tiny_medeir(tmp_path / "other")  # same seed, same weights: change config.json to change the model
    (other / "config.json").write_text((other / "config.json").read_text().replace('"hidden_dropout_prob": 0.1',
                                                                                   '"hidden_dropout_prob": 0.2'))
    with pytest.raises(ValueError, match="was built with another model"):
        add_documents([Document("b", "text")], folder, model=other, device="cpu")


@pytest.mark.parametrize("change", ["prompts", "tokenizer"])
def test_the_fingerprint_covers_prompts_and_tokenizer(tmp_path, embedder, tiny_folder, change):
    """Same weights, different prompts or tokenizer settings: different embeddings, so a different model."""
    folder = tmp_path / "idx"
    add_documents([Document("a", "text")], folder, embedder=embedder)
    other = make_tiny_medeir(tmp_path / "other")
    assert model_fingerprint(other) == model_fingerprint(tiny_folder)
    if change == "prompts":
        (other / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"document": "doc: "}}))
    else:
        config = json.loads((other / "tokenizer_config.json").read_text())
        (other / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    texts = ["Text"]
    assert not np.allclose(Embedder(other, device="cpu").encode_documents(texts), embedder.encode_documents(texts))
    with pytest.raises(ValueError, match="was built with another model"):
        add_documents([Document("b", "text")], folder, model=other, device="cpu")


def test_saving_removes_only_the_index_own_stale_files(tmp_path, embedder):
    folder = tmp_path / "idx"
    folder.mkdir()
    foreign = [folder / name for name in ("metadata-schema.json", ".notes.tmp", "embeddings-0123456789ab.npy.bak")]
    for file in foreign:
        file.write_text("not the index's")
    (folder / "embeddings-old").mkdir()
    add_documents([Document("a", "one")], folder, embedder=embedder)
    first = read_manifest(folder)["files"]
    add_documents([Document("b", "two")], folder, embedder=embedder)
    assert not any((folder / name).exists() for name in first.values())
    assert all(file.read_text() == "not the index's" for file in foreign) and (folder / "embeddings-old").is_dir()
    assert load_index(folder).manifest["documents"] == 2


def test_vector_index_search_ranks_by_cosine_and_returns_the_best_chunk_per_document():
    embeddings = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    records = [
        {"doc_id": "x", "chunk": 0, "chunks": 2, "title": "X", "source": "x.txt", "text": "x0"},
        {"doc_id": "x", "chunk": 1, "chunks": 2, "title": "X", "source": "x.txt", "text": "x1"},
        {"doc_id": "y", "chunk": 0, "chunks": 1, "title": "", "source": "y.txt", "text": "y"},
        {"doc_id": "z", "chunk": 0, "chunks": 1, "title": "", "source": "z.txt", "text": "z"},
    ]
    index = VectorIndex(embeddings, records, {"dim": 3})
    query = np.array([[0.0, 0.8, 0.6]], dtype=np.float32)
    hits = index.search(query, top_k=5)[0]
    assert [(h.doc_id, h.chunk) for h in hits] == [("y", 0), ("x", 1), ("z", 0)]
    assert [h.score for h in hits] == pytest.approx([0.8, 0.64, 0.6])
    assert (hits[1].title, hits[1].source, hits[1].text, hits[1].chunks) == ("X", "x.txt", "x1", 2)
    assert [h.doc_id for h in index.search(query, top_k=2)[0]] == ["y", "x"]
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        index.search(query, top_k=0)


def test_searcher_scores_are_query_document_cosines(tmp_path, embedder):
    docs = [Document("a", "Insulin lowers blood glucose."), Document("b", "Asthma inhalers."),
            Document("c", "Fractures of the wrist.")]
    add_documents(docs, tmp_path / "idx", embedder=embedder)
    searcher = Searcher(tmp_path / "idx", embedder=embedder)
    hits = searcher.search("how is diabetes treated", top_k=3)
    query = embedder.encode_queries(["how is diabetes treated"])[0]
    expected = embedder.encode_documents([d.text for d in docs]) @ query
    assert sorted(h.doc_id for h in hits) == ["a", "b", "c"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert hit.score == pytest.approx(float(expected["abc".index(hit.doc_id)]), abs=1e-5)
    with pytest.raises(ValueError, match="the question is empty"):
        searcher.search("   ")


HYBRID_DOCS = [
    Document("insulin", "Insulin lowers blood glucose in diabetes.", title="Insulin"),
    Document("asthma", "Asthma is treated with inhaled corticosteroids."),
    Document("wrist", "A fall on the outstretched hand can fracture the scaphoid."),
    Document("statin", "Statins lower cholesterol and the risk of heart attacks."),
]


@pytest.mark.parametrize("depth", [100, 2])
def test_hybrid_search_fuses_the_cosine_and_bm25_rankings_of_documents(
    tmp_path, embedder, single_token_words, monkeypatch, depth
):
    """hybrid=True: each document's cosine rank and its BM25 rank (best chunk each, over title + chunk text), the first
    ``depth`` documents of each list, merged by reciprocal rank fusion, the fused score reported; a document split
    into chunks counts once, however many of its chunks match."""
    monkeypatch.setattr(medeir.index, "HYBRID_DEPTH", depth)
    words = " ".join(single_token_words[:300])
    long_doc = Document("long", f"scaphoid {words} scaphoid fracture fall", title="Words")
    add_documents([*HYBRID_DOCS, long_doc], tmp_path / "idx", embedder=embedder)
    index = load_index(tmp_path / "idx")
    assert index.manifest["count"] > len(HYBRID_DOCS) + 1  # the long document has chunks
    question = "scaphoid fracture after a fall or a heart attack"
    dense = Searcher(tmp_path / "idx", embedder=embedder).search(question, top_k=depth)
    chunks = {f"{r['doc_id']}#{r['chunk']}": document_text(r) for r in index.records}
    chunk_scores = bm25_search(chunks, {"q": question})["q"]
    lexical: dict[str, float] = {}
    for key, score in ranked(chunk_scores):
        lexical.setdefault(key.split("#")[0], score)  # each document's best chunk
    assert sorted(lexical) == ["long", "statin", "wrist"]  # the others share no term with the question
    assert sum(key.startswith("long#") for key in chunk_scores) == 2  # two chunks match
    runs = [{"q": {h.doc_id: h.score for h in dense}}, {"q": dict(list(lexical.items())[:depth])}]
    expected = ranked(reciprocal_rank_fusion(runs)["q"])

    hits = Searcher(tmp_path / "idx", embedder=embedder, hybrid=True).search(question, top_k=depth)
    assert [(h.doc_id, h.score) for h in hits] == [(doc_id, pytest.approx(score)) for doc_id, score in expected][:depth]
    assert len({h.doc_id for h in hits}) == len(hits) == min(depth, 5)


def test_hybrid_search_puts_a_document_only_bm25_finds_first(tmp_path, embedder):
    """A rare term the random tiny model does not rank first: BM25 alone matches it, so fusion puts it first; a
    question sharing no term with any document falls back to the cosine order."""
    add_documents(HYBRID_DOCS, tmp_path / "idx", embedder=embedder)
    dense, hybrid = (Searcher(tmp_path / "idx", embedder=embedder, hybrid=h) for h in (False, True))
    assert dense.search("corticosteroids", top_k=4)[0].doc_id != "asthma"
    assert hybrid.search("corticosteroids", top_k=2)[0].doc_id == "asthma"
    unmatched = "zzyzx qwerty"
    assert [h.doc_id for h in hybrid.search(unmatched, top_k=4)] == [h.doc_id for h in dense.search(unmatched, 4)]


def test_hybrid_search_checks_top_k_and_answers_from_an_empty_index(tmp_path, embedder):
    add_documents(HYBRID_DOCS, tmp_path / "idx", embedder=embedder)
    with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
        Searcher(tmp_path / "idx", embedder=embedder, hybrid=True).search("asthma", top_k=0)
    add_documents([], tmp_path / "empty", embedder=embedder)
    assert Searcher(tmp_path / "empty", embedder=embedder, hybrid=True).search("asthma") == []


def test_search_needs_neither_the_eval_nor_the_hybrid_extra(tmp_path):
    """Without pytrec_eval (the eval extra) and bm25s (the hybrid extra), the index, search and demo modules still
    import, and plain search works."""
    code = ("import sys; sys.modules['pytrec_eval'] = sys.modules['bm25s'] = None\n"
            "import medeir.cli, medeir.demo, medeir.index\n"
            "from medeir.evaluation.fusion import reciprocal_rank_fusion\n"
            "print(reciprocal_rank_fusion([{'q': {'a': 1.0}}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'q': {'a': 0.01639344262295082}}"


def test_hybrid_search_without_bm25s_says_what_to_install(tmp_path, embedder, without_bm25s):
    add_documents(HYBRID_DOCS[:1], tmp_path / "idx", embedder=embedder)
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'medeir[hybrid]'")):
        Searcher(tmp_path / "idx", embedder=embedder, hybrid=True)


def test_load_errors_name_the_problem(tmp_path, embedder):
    with pytest.raises(FileNotFoundError, match="no such index folder"):
        load_index(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match=f"is not a MedEIR index: it has no {MANIFEST}"):
        load_index(tmp_path / "plain")
    folder = tmp_path / "idx"
    add_documents([Document("a", "one"), Document("b", "two")], folder, embedder=embedder)
    manifest = json.loads((folder / MANIFEST).read_text())
    metadata = folder / manifest["files"]["metadata"]
    metadata.write_text(metadata.read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match=r"has shape \(2, 32\) and metadata-\w+\.jsonl 1 rows, but manifest"):
        load_index(folder)
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: not valid JSON"):
        load_index(folder)


def test_a_save_that_fails_before_the_commit_leaves_the_previous_index(tmp_path, embedder, monkeypatch):
    folder = tmp_path / "idx"
    add_documents([Document("a", "one")], folder, embedder=embedder)
    before = load_index(folder)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing the manifest")

    monkeypatch.setattr("medeir.index.json.dump", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        add_documents([Document("b", "two")], folder, embedder=embedder)
    monkeypatch.undo()
    after = load_index(folder)
    assert after.manifest == before.manifest and after.records == before.records
    assert len(list(folder.glob("embeddings-*.npy"))) == 2  # the uncommitted generation is still on disk
    add_documents([Document("b", "two")], folder, embedder=embedder)
    assert len(list(folder.glob("embeddings-*.npy"))) == 1 and load_index(folder).manifest["documents"] == 2


@pytest.mark.slow
def test_sigkill_during_the_write_leaves_the_previous_index_loadable(tmp_path, embedder, tiny_folder):
    folder = tmp_path / "idx"
    add_documents([Document("old", "the previous index")], folder, embedder=embedder)
    before = load_index(folder)
    # Big metadata, cheap to embed: short texts with a 150 kB `source` each (stored, never tokenized), so that writing
    # the metadata file takes a noticeable time.
    with open(tmp_path / "big.jsonl", "w") as handle:
        for i in range(200):
            handle.write(json.dumps({"id": f"d{i}", "text": f"document {i} about asthma", "source": "s" * 150_000}))
            handle.write("\n")
    command = [sys.executable, "-m", "medeir", "index", str(tmp_path / "big.jsonl"), "--index", str(folder),
               "--model", str(tiny_folder), "--device", "cpu", "--batch-size", "64"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    temp_seen = None
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        temp_seen = next((e.name for e in os.scandir(folder) if e.name.endswith(".tmp")), None)
        if temp_seen:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    process.wait()
    stderr = process.stderr.read().decode()
    assert temp_seen, f"the run ended (rc={process.returncode}) before its write could be interrupted: {stderr[-500:]}"
    assert process.returncode == -signal.SIGKILL
    after = load_index(folder)
    assert after.manifest == before.manifest and after.records == before.records
    np.testing.assert_array_equal(after.embeddings, before.embeddings)
    add_documents([Document("new", "text")], folder, embedder=embedder)  # the next save clears the leftovers
    assert not [e.name for e in os.scandir(folder) if e.name.endswith(".tmp")]
    assert sorted(r["doc_id"] for r in load_index(folder).records) == ["new", "old"]
