"""The two real encoders: all-MiniLM-L6-v2 offline, and a tiny random MedEIR folder through medeir.encode.Embedder."""

import os

import numpy as np
import pytest
from eval_helpers import make_tiny_medeir

from medeir.evaluation.encoders import MINILM_NAME, Encoder, MedEIREncoder, MiniLMEncoder, load_encoder

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEncoder(device="cpu", batch_size=8)


def test_minilm_embeddings_are_normalised_float32_and_meaningful(minilm):
    texts = ["How is type 2 diabetes treated?", "Treatment options for diabetes mellitus type 2", "The cat sat."]
    queries, documents = minilm.encode_queries(texts), minilm.encode_documents(texts)
    assert isinstance(minilm, Encoder) and minilm.name == MINILM_NAME
    assert queries.shape == (3, 384) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(queries, documents, atol=1e-6)  # MiniLM has no query/document prompts
    cosine = queries @ queries.T
    assert cosine[0, 1] > 0.6 > cosine[0, 2]
    assert minilm.encode_queries([]).shape == (0, 384)
    assert minilm.model.max_seq_length == 256  # the published setting


@pytest.fixture(scope="module")
def tiny_medeir(tmp_path_factory):
    return make_tiny_medeir(tmp_path_factory.mktemp("tiny-medeir"))


def test_medeir_encoder_applies_the_folders_prompts(tiny_medeir):
    encoder = load_encoder(str(tiny_medeir), device="cpu", batch_size=2)
    assert isinstance(encoder, MedEIREncoder) and isinstance(encoder, Encoder)
    assert encoder.name == tiny_medeir.name
    texts = ["fever after surgery", "insulin dosage", ""]
    queries, documents = encoder.encode_queries(texts), encoder.encode_documents(texts)
    assert queries.shape == documents.shape == (3, 32) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    plain = encoder.embedder.encode(["query: " + t for t in texts] + ["passage: " + t for t in texts])
    np.testing.assert_allclose(queries, plain[:3], atol=1e-5)
    np.testing.assert_allclose(documents, plain[3:], atol=1e-5)
    assert not np.allclose(queries, documents, atol=1e-3)
    assert encoder.encode_documents([]).shape == (0, 32)


def test_medeir_encoder_names_a_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        load_encoder(str(tmp_path / "no-such-model"), device="cpu")
