"""MedEIRTextEmbedder: one query string -> one embedding."""

from __future__ import annotations

from typing import Any

from haystack import component
from haystack.utils import ComponentDevice
from haystack_integrations.components.embedders.medeir._backend import MedEIREmbedderBase


@component
class MedEIRTextEmbedder(MedEIREmbedderBase):
    """Embed a query with a MedEIR model, for retrieval with documents embedded by ``MedEIRDocumentEmbedder``.

    Args:
        model: model folder or Hub id (owner/name); None = the shipped MedEIR model.
        device: where to run; None = CUDA if available, else CPU.
        prefix: text put before the query; None = the model's own query prompt.
        suffix: text put after the query.
        batch_size: texts per forward pass.
        progress_bar: show a progress bar.
        normalize_embeddings: L2-normalise (cosine similarity = dot product).
        max_length: truncate to this many tokens; None = the model's limit (8192).

    An empty string is embedded as the special tokens alone (``[CLS] [SEP]``).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: ComponentDevice | None = None,
        prefix: str | None = None,
        suffix: str = "",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = True,
        max_length: int | None = None,
    ):
        MedEIREmbedderBase.__init__(
            self, model, device=device, prefix=prefix, suffix=suffix, batch_size=batch_size,
            progress_bar=progress_bar, normalize_embeddings=normalize_embeddings, max_length=max_length,
        )

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        """``{"embedding": list[float]}``; a non-string raises TypeError."""
        if not isinstance(text, str):
            raise TypeError(
                f"MedEIRTextEmbedder takes one string, got {type(text).__name__}; "
                "to embed a list of Documents, use MedEIRDocumentEmbedder"
            )
        return {"embedding": self._embed([text], "query")[0].tolist()}
