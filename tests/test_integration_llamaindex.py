"""llama_index.embeddings.medeir: a native BaseEmbedding, end to end with llama-index-core."""

import asyncio

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.embeddings.medeir import MedEIREmbedding

from medeir.encode import Embedder
from medeir.loading import load_model

TEXTS = ["Warfarin interacts with many antibiotics.", "Pneumonia on chest X-ray.", "Statins lower LDL cholesterol.",
         "Sepsis needs early antibiotics.", "Anaemia of chronic kidney disease."]


@pytest.fixture(scope="module")
def embed_model(tiny_model_folder):
    return MedEIREmbedding(str(tiny_model_folder), device="cpu", embed_batch_size=2)


@pytest.fixture(scope="module")
def embedder(tiny_model_folder):
    return Embedder(tiny_model_folder, device="cpu")


def test_is_a_base_embedding_that_serialises_its_settings_only(embed_model, tiny_model_folder):
    assert isinstance(embed_model, BaseEmbedding)
    assert MedEIREmbedding.class_name() == "MedEIREmbedding"
    data = embed_model.to_dict()
    assert data["class_name"] == "MedEIREmbedding"
    assert data["model_path"] == str(tiny_model_folder) and data["model_name"] == str(tiny_model_folder)
    assert (data["query_prompt"], data["text_prompt"]) == ("query: ", "passage: ")  # the model's own prompts
    assert data["embed_batch_size"] == 2 and data["normalize"] is True
    assert not any("embedder" in key for key in data)


def test_query_text_and_batch_embeddings_match_the_embedder(embed_model, embedder):
    queries, documents = embedder.encode_queries(TEXTS), embedder.encode_documents(TEXTS)
    np.testing.assert_allclose(embed_model.get_query_embedding(TEXTS[0]), queries[0], atol=1e-5)
    np.testing.assert_allclose(embed_model.get_text_embedding(TEXTS[1]), documents[1], atol=1e-5)
    batch = embed_model.get_text_embedding_batch(TEXTS)  # 5 texts in batches of 2
    np.testing.assert_allclose(np.array(batch), documents, atol=1e-5)


def test_async_methods_match_the_sync_ones(embed_model):
    async def run():
        return await asyncio.gather(
            embed_model.aget_query_embedding(TEXTS[0]),
            embed_model.aget_text_embedding(TEXTS[1]),
            embed_model.aget_text_embedding_batch(TEXTS),
        )

    query, text, batch = asyncio.run(run())
    np.testing.assert_allclose(query, embed_model.get_query_embedding(TEXTS[0]), atol=1e-6)
    np.testing.assert_allclose(text, embed_model.get_text_embedding(TEXTS[1]), atol=1e-6)
    np.testing.assert_allclose(batch, embed_model.get_text_embedding_batch(TEXTS), atol=1e-6)


def test_prompts_and_normalisation_are_settable(tiny_model_folder, embedder):
    raw = MedEIREmbedding(str(tiny_model_folder), device="cpu", query_prompt="", text_prompt="", normalize=False)
    query = np.array(raw.get_query_embedding(TEXTS[2]))
    assert abs(np.linalg.norm(query) - 1) > 1e-2
    np.testing.assert_allclose(query / np.linalg.norm(query), embedder.encode([TEXTS[2]])[0], atol=1e-5)
    np.testing.assert_allclose(raw.get_text_embedding(TEXTS[2]), query, atol=1e-6)


def test_bad_input(tiny_model_folder, tiny_model_and_tokenizer):
    plain = MedEIREmbedding(str(tiny_model_folder), device="cpu", query_prompt="", text_prompt="")
    assert plain.get_text_embedding_batch([]) == []
    # An empty string is embedded as [CLS] [SEP]: the mean of those two token states, normalised.
    model, tokenizer = load_model(tiny_model_folder, device="cpu"), tiny_model_and_tokenizer[1]
    ids = tokenizer("", return_tensors="pt")["input_ids"]
    assert ids.tolist() == [[tokenizer.cls_token_id, tokenizer.sep_token_id]]
    with torch.no_grad():
        expected = F.normalize(model(input_ids=ids).last_hidden_state.mean(1), dim=-1)[0].numpy()
    np.testing.assert_allclose(plain.get_text_embedding(""), expected, atol=1e-5)
    np.testing.assert_allclose(plain.get_query_embedding(""), plain.get_text_embedding(""), atol=1e-6)
    with pytest.raises(TypeError, match=r"texts\[3\] is int"):
        plain.get_text_embedding_batch(["a", "b", "c", 4])
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        asyncio.run(plain.aget_text_embedding_batch(["a", None]))
    with pytest.raises(TypeError, match="query must be a str, got bytes"):
        plain.get_query_embedding(b"fever")
    with pytest.raises(TypeError, match="text must be a str, got list"):
        plain.get_text_embedding(["fever"])


def test_vector_store_index_retrieves_a_document_by_its_own_text(tiny_model_folder, medical_corpus):
    """Wiring only: a random model cannot match paraphrases, but a text is nearest to itself."""
    passages, _ = medical_corpus
    embed_model = MedEIREmbedding(str(tiny_model_folder), device="cpu", query_prompt="passage: ")
    documents = [Document(text=text, id_=key) for key, text in passages.items()]
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=3)
    for key, text in passages.items():
        hits = retriever.retrieve(text)
        assert hits[0].node.ref_doc_id == key
        assert hits[0].score == pytest.approx(1.0, abs=1e-4) and hits[1].score < hits[0].score


def test_shipped_model_ranks_the_answer_first(shipped_model_folder, medical_corpus):
    passages, queries = medical_corpus
    embed_model = MedEIREmbedding(str(shipped_model_folder), device="cpu")
    index = VectorStoreIndex.from_documents(
        [Document(text=text, id_=key) for key, text in passages.items()], embed_model=embed_model
    )
    retriever = index.as_retriever(similarity_top_k=2)
    ranked = {query: retriever.retrieve(query)[0].node.ref_doc_id for query in queries}
    assert ranked == queries
