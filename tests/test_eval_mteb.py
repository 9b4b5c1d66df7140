"""The mteb adapter: prompt-type routing, similarity functions, and mteb's own offline mock tasks."""

import numpy as np
import pytest
import torch
from eval_helpers import TableEncoder

mteb = pytest.importorskip("mteb")
from mteb.types import PromptType  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from medeir.evaluation.mteb_adapter import MTEBEncoder  # noqa: E402


def test_encode_routes_queries_documents_and_symmetric_inputs():
    encoder = TableEncoder({"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]})
    model = MTEBEncoder(encoder, embed_dim=3)
    assert isinstance(model, mteb.EncoderProtocol)
    assert model.mteb_model_meta.name == "medeir/table" and model.mteb_model_meta.similarity_fn_name == "cosine"
    loader = DataLoader([{"text": t} for t in "abc"], batch_size=2)
    kwargs = {"task_metadata": None, "hf_split": "test", "hf_subset": "default"}
    docs = model.encode(loader, prompt_type=PromptType.document, **kwargs)
    queries = model.encode(loader, prompt_type=PromptType.query, **kwargs)
    symmetric = model.encode(loader, **kwargs)
    np.testing.assert_allclose(docs, np.eye(3))
    np.testing.assert_allclose(queries, symmetric)
    assert encoder.calls == [("document", 3), ("query", 3), ("query", 3)]


def test_similarity_is_cosine():
    model = MTEBEncoder(TableEncoder())
    a, b = np.array([[3.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(model.similarity(a, b), torch.tensor([[1.0, 0.0], [2**-0.5, 2**-0.5]]))
    torch.testing.assert_close(model.similarity_pairwise(a, b), torch.tensor([1.0, 2**-0.5]))
    assert model.similarity(a[0], b).shape == (1, 2)


@pytest.mark.slow  # 40-120 s on the shared 2-core box
def test_mteb_mock_tasks_all_pass_offline():
    results = mteb.mock_run(MTEBEncoder(TableEncoder(dim=16), embed_dim=16))
    ran = [r for r in results.task_results.values() if r is not None]
    assert results.all_passed and len(ran) > 10
