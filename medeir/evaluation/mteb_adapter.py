"""Run any of our encoders through the ``mteb`` package (needs ``pip install mteb``; real tasks download from the Hub).

Query-side inputs (``prompt_type == query``) go through ``encode_queries``, documents through ``encode_documents``,
and inputs of symmetric tasks (no prompt type: STS, clustering, classification, ...) through ``encode_queries``.
See docs/EVALUATION.md for usage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mteb.models import ModelMeta
from mteb.types import PromptType

from .encoders import Encoder


def as_tensor(array) -> torch.Tensor:
    tensor = torch.as_tensor(array, dtype=torch.float32)
    return tensor.unsqueeze(0) if tensor.ndim == 1 else tensor


class MTEBEncoder:
    """mteb ``EncoderProtocol`` over an :class:`~medeir.evaluation.encoders.Encoder` (cosine similarity)."""

    def __init__(self, encoder: Encoder, *, name: str | None = None, revision: str | None = None,
                 embed_dim: int | None = None, max_tokens: int | None = None):
        self.encoder = encoder
        self.mteb_model_meta = ModelMeta.create_empty({
            "name": name or f"medeir/{encoder.name}",
            "revision": revision,
            "embed_dim": embed_dim,
            "max_tokens": max_tokens,
            "similarity_fn_name": "cosine",
            "modalities": ["text"],
            "framework": ["PyTorch"],
        })

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:
        """Embed every ``"text"`` of the DataLoader's dict batches; returns ``[n, dim]`` float32."""
        texts = [text for batch in inputs for text in batch["text"]]
        if prompt_type == PromptType.document:
            return self.encoder.encode_documents(texts)
        return self.encoder.encode_queries(texts)

    def similarity(self, embeddings1, embeddings2) -> torch.Tensor:
        """Cosine matrix ``[n1, n2]``."""
        a = torch.nn.functional.normalize(as_tensor(embeddings1), dim=-1)
        b = torch.nn.functional.normalize(as_tensor(embeddings2), dim=-1)
        return a @ b.T

    def similarity_pairwise(self, embeddings1, embeddings2) -> torch.Tensor:
        """Cosine of each row pair ``[n]``."""
        a = torch.nn.functional.normalize(as_tensor(embeddings1), dim=-1)
        b = torch.nn.functional.normalize(as_tensor(embeddings2), dim=-1)
        return (a * b).sum(dim=-1)
