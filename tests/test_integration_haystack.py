"""haystack_integrations.components.embedders.medeir: components, pipelines, serialisation, bad input."""

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import ComponentDevice
from haystack_integrations.components.embedders.medeir import MedEIRDocumentEmbedder, MedEIRTextEmbedder

from medeir.encode import Embedder
from medeir.evaluation.fusion import reciprocal_rank_fusion
from medeir.evaluation.metrics import ranked

TEXT_TYPE = "haystack_integrations.components.embedders.medeir.text_embedder.MedEIRTextEmbedder"


@pytest.fixture(scope="module")
def embedder(tiny_model_folder):
    return Embedder(tiny_model_folder, device="cpu")


@pytest.fixture
def documents(medical_corpus):
    passages, _ = medical_corpus
    return [Document(id=key, content=text, meta={"topic": key}) for key, text in passages.items()]


def text_embedder(folder, **kwargs):
    return MedEIRTextEmbedder(str(folder), device=ComponentDevice.from_str("cpu"), progress_bar=False, **kwargs)


def document_embedder(folder, **kwargs):
    return MedEIRDocumentEmbedder(str(folder), device=ComponentDevice.from_str("cpu"), progress_bar=False, **kwargs)


def test_to_dict_and_from_dict_round_trip(tiny_model_folder):
    component = document_embedder(tiny_model_folder, prefix="", suffix=" .", batch_size=4, normalize_embeddings=False,
                                  max_length=256, meta_fields_to_embed=["title"], embedding_separator=" | ")
    data = component.to_dict()
    assert data["type"] == "haystack_integrations.components.embedders.medeir.document_embedder.MedEIRDocumentEmbedder"
    assert data["init_parameters"] == {
        "model": str(tiny_model_folder), "device": {"type": "single", "device": "cpu"}, "prefix": "", "suffix": " .",
        "batch_size": 4, "progress_bar": False, "normalize_embeddings": False, "max_length": 256,
        "meta_fields_to_embed": ["title"], "embedding_separator": " | ",
    }
    restored = MedEIRDocumentEmbedder.from_dict(data)
    assert restored.to_dict() == data and restored.device == ComponentDevice.from_str("cpu")

    default = MedEIRTextEmbedder().to_dict()
    assert default == {"type": TEXT_TYPE, "init_parameters": {
        "model": None, "device": None, "prefix": None, "suffix": "", "batch_size": 32, "progress_bar": True,
        "normalize_embeddings": True, "max_length": None}}
    assert MedEIRTextEmbedder.from_dict(default).to_dict() == default


def test_warm_up_loads_once_and_run_warms_up(tiny_model_folder):
    component = text_embedder(tiny_model_folder)
    assert component._embedder is None  # constructing loads nothing
    component.run("fever")
    loaded = component._embedder
    component.warm_up()
    assert component._embedder is loaded


def test_embeddings_match_the_embedder_with_the_model_prompts(tiny_model_folder, embedder, documents):
    embedding = text_embedder(tiny_model_folder).run("chest pain")["embedding"]
    assert isinstance(embedding, list) and len(embedding) == 32
    np.testing.assert_allclose(embedding, embedder.encode_queries(["chest pain"])[0], atol=1e-5)

    out = document_embedder(tiny_model_folder, batch_size=2).run(documents)["documents"]
    assert [d.id for d in out] == [d.id for d in documents]
    assert all(d.embedding is None for d in documents)  # inputs are not modified
    np.testing.assert_allclose([d.embedding for d in out], embedder.encode_documents([d.content for d in documents]),
                               atol=1e-5)


def test_prefix_suffix_meta_fields_and_normalisation(tiny_model_folder, embedder):
    doc = Document(content="Pyrexia of unknown origin.", meta={"title": "Fever", "year": 2020, "empty": None})
    component = document_embedder(tiny_model_folder, prefix="doc: ", suffix=" end",
                                  meta_fields_to_embed=["title", "empty", "missing", "year"], embedding_separator=" | ")
    embedding = component.run([doc])["documents"][0].embedding
    expected = embedder.encode(["doc: Fever | 2020 | Pyrexia of unknown origin. end"])[0]
    np.testing.assert_allclose(embedding, expected, atol=1e-5)

    raw = np.array(text_embedder(tiny_model_folder, normalize_embeddings=False).run("fever")["embedding"])
    assert abs(np.linalg.norm(raw) - 1) > 1e-2
    np.testing.assert_allclose(raw / np.linalg.norm(raw), embedder.encode_queries(["fever"])[0], atol=1e-5)


def test_indexing_and_query_pipelines_retrieve_a_document_by_its_own_text(tiny_model_folder, documents):
    """Wiring only (random model): the same prompt on both sides, so each text is nearest to itself."""
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    indexing = Pipeline()
    indexing.add_component("embedder", document_embedder(tiny_model_folder))
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("embedder.documents", "writer.documents")
    assert indexing.run({"embedder": {"documents": documents}})["writer"]["documents_written"] == len(documents)

    query = Pipeline()
    query.add_component("embedder", text_embedder(tiny_model_folder, prefix="passage: "))
    query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=3))
    query.connect("embedder.embedding", "retriever.query_embedding")
    for doc in documents:
        hits = query.run({"embedder": {"text": doc.content}})["retriever"]["documents"]
        assert hits[0].id == doc.id and hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_pipeline_yaml_round_trip(tiny_model_folder):
    pipeline = Pipeline()
    pipeline.add_component("embedder", text_embedder(tiny_model_folder, suffix="?", batch_size=8))
    yaml_text = pipeline.dumps()
    assert f"type: {TEXT_TYPE}" in yaml_text
    restored = Pipeline.loads(yaml_text)
    assert restored.get_component("embedder").to_dict() == pipeline.get_component("embedder").to_dict()
    assert restored.dumps() == yaml_text
    np.testing.assert_allclose(restored.run({"embedder": {"text": "angina"}})["embedder"]["embedding"],
                               pipeline.run({"embedder": {"text": "angina"}})["embedder"]["embedding"], atol=1e-6)


def test_bad_input(tiny_model_folder, embedder):
    texts, docs = text_embedder(tiny_model_folder, prefix=""), document_embedder(tiny_model_folder, prefix="")
    assert docs.run([]) == {"documents": []}
    # An empty string is embedded as [CLS] [SEP], like Embedder (which the LlamaIndex tests check against the model).
    np.testing.assert_allclose(texts.run("")["embedding"], embedder.encode([""])[0], atol=1e-5)
    np.testing.assert_allclose(docs.run([Document(content="")])["documents"][0].embedding, embedder.encode([""])[0],
                               atol=1e-5)
    with pytest.raises(TypeError, match="got list; to embed a list of Documents, use MedEIRDocumentEmbedder"):
        texts.run(["fever"])
    with pytest.raises(TypeError, match="got str; to embed a query string, use MedEIRTextEmbedder"):
        docs.run("fever")
    with pytest.raises(TypeError, match=r"documents\[1\] is str"):
        docs.run([Document(content="a"), "b"])
    with pytest.raises(ValueError, match=r"document 'no-text' \(documents\[1\]\) has no text content"):
        docs.run([Document(content="a"), Document(id="no-text", content=None)])


@pytest.fixture
def shipped_store(shipped_model_folder, documents):
    """The medical passages embedded by the shipped model in an in-memory store."""
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    store.write_documents(document_embedder(shipped_model_folder).run(documents)["documents"])
    return store


def test_shipped_model_ranks_the_answer_first(shipped_model_folder, medical_corpus, shipped_store):
    _, queries = medical_corpus
    query = Pipeline()
    query.add_component("embedder", text_embedder(shipped_model_folder))
    query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=shipped_store, top_k=2))
    query.connect("embedder.embedding", "retriever.query_embedding")
    ranked = {q: query.run({"embedder": {"text": q}})["retriever"]["documents"][0].id for q in queries}
    assert ranked == queries


def test_document_joiner_fuses_ranks_as_the_hybrid_evaluation_does():
    """Haystack's reciprocal rank fusion (README: hybrid search) orders documents as `medeir eval --task hybrid`."""
    bm25 = [Document(id=i, content=i, score=s) for i, s in (("a", 9.0), ("b", 4.0), ("c", 1.0), ("e", 0.5))]
    dense = [Document(id=i, content=i, score=s) for i, s in (("c", 0.9), ("a", 0.8), ("f", 0.1))]
    joined = DocumentJoiner(join_mode="reciprocal_rank_fusion").run(documents=[bm25, dense])["documents"]
    ours = reciprocal_rank_fusion([{"q": {d.id: d.score for d in run}} for run in (bm25, dense)])["q"]
    assert [d.id for d in joined] == [doc_id for doc_id, _ in ranked(ours)] == ["a", "c", "b", "f", "e"]


def test_hybrid_pipeline_finds_what_either_retriever_finds(shipped_model_folder, medical_corpus, shipped_store):
    """BM25 and the shipped model joined by reciprocal rank fusion: each paraphrased query (no shared key term with
    its answer, so BM25 alone misses some) still gets its answer first."""
    _, queries = medical_corpus
    hybrid = Pipeline()
    hybrid.add_component("embedder", text_embedder(shipped_model_folder))
    hybrid.add_component("dense", InMemoryEmbeddingRetriever(document_store=shipped_store, top_k=3))
    hybrid.add_component("bm25", InMemoryBM25Retriever(document_store=shipped_store, top_k=3))
    hybrid.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=3))
    hybrid.connect("embedder.embedding", "dense.query_embedding")
    hybrid.connect("dense.documents", "joiner.documents")
    hybrid.connect("bm25.documents", "joiner.documents")
    runs = {q: hybrid.run({"embedder": {"text": q}, "bm25": {"query": q}}, include_outputs_from={"bm25"})
            for q in queries}
    assert {q: run["joiner"]["documents"][0].id for q, run in runs.items()} == queries
    assert all(run["joiner"]["documents"][0].score > run["joiner"]["documents"][1].score for run in runs.values())
    bm25_first = {q: (run["bm25"]["documents"] or [Document(id="none")])[0].id for q, run in runs.items()}
    assert bm25_first != queries  # BM25 alone gets some wrong
