"""MedEIR sentence embeddings as a LlamaIndex ``BaseEmbedding``."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from medeir.encode import Embedder, check_texts
from medeir.hub import resolve_model_path


def _check_text(text: Any, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}: {text!r:.80}")
    return text


class MedEIREmbedding(BaseEmbedding):
    """Embed queries and nodes with a MedEIR model folder (default: the shipped model).

    Queries get ``query_prompt`` and texts get ``text_prompt`` put in front of them; left as None they are the model's
    own query/document prompts (``config_sentence_transformers.json``). An empty string is embedded as the special
    tokens alone (``[CLS] [SEP]``), a non-string raises TypeError naming the item, an empty batch gives ``[]``.
    """

    embed_batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    model_path: str | None = Field(
        default=None, description="Model folder or Hub id (owner/name); None = the shipped MedEIR model."
    )
    device: str = Field(default="auto", description="'auto' (CUDA if available, else CPU), 'cpu', 'cuda', 'cuda:1'...")
    normalize: bool = Field(default=True, description="L2-normalise the embeddings (cosine = dot product).")
    query_prompt: str | None = Field(default=None, description="Text put before queries; None = the model's own.")
    text_prompt: str | None = Field(default=None, description="Text put before documents; None = the model's own.")
    max_length: int | None = Field(
        default=None, gt=0, description="Truncate inputs to this many tokens; None = the model's limit (8192)."
    )

    _embedder: Embedder = PrivateAttr()

    def __init__(self, model_path: str | None = None, **kwargs: Any):
        kwargs.setdefault("model_name", str(model_path or "medeir"))
        super().__init__(model_path=model_path, **kwargs)
        self._embedder = Embedder(
            resolve_model_path(model_path), device=self.device, batch_size=self.embed_batch_size,
            max_length=self.max_length,
        )
        if self.query_prompt is None:
            self.query_prompt = self._embedder.prompts.get("query", "")
        if self.text_prompt is None:
            self.text_prompt = self._embedder.prompts.get("document", "")

    @classmethod
    def class_name(cls) -> str:
        return "MedEIREmbedding"

    def _embed(self, texts: list[str], prompt: str) -> list[Embedding]:
        batch_size, normalize = self.embed_batch_size, self.normalize
        return self._embedder.encode(texts, prompt=prompt, batch_size=batch_size, normalize=normalize).tolist()

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embed([_check_text(query, "query")], self.query_prompt)[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embed([_check_text(text, "text")], self.text_prompt)[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embed(check_texts(texts), self.text_prompt)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        """The base class, after checking the whole list so a bad item is named by its index in ``texts``."""
        return super().get_text_embedding_batch(check_texts(texts), show_progress=show_progress, **kwargs)

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        return await super().aget_text_embedding_batch(check_texts(texts), show_progress=show_progress, **kwargs)
