"""MedEIRDocumentEmbedder: Documents -> the same Documents with embeddings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component
from haystack.utils import ComponentDevice
from haystack_integrations.components.embedders.medeir._backend import MedEIREmbedderBase


@component
class MedEIRDocumentEmbedder(MedEIREmbedderBase):
    """Embed Documents with a MedEIR model; returns copies with ``embedding`` set (inputs are not modified).

    The embedded text of a document is ``prefix + embedding_separator.join(meta values of meta_fields_to_embed that
    are present and not None, then content) + suffix``. Arguments as in ``MedEIRTextEmbedder``, except that ``prefix``
    None means the model's own document prompt, plus:

    Args:
        meta_fields_to_embed: meta keys whose values are embedded in front of the content.
        embedding_separator: joins those values and the content.

    A document whose ``content`` is None (e.g. an image-only Document) raises ValueError naming its id: filter such
    documents out before this component. Empty content is embedded as the special tokens alone (``[CLS] [SEP]``).
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
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ):
        MedEIREmbedderBase.__init__(
            self, model, device=device, prefix=prefix, suffix=suffix, batch_size=batch_size,
            progress_bar=progress_bar, normalize_embeddings=normalize_embeddings, max_length=max_length,
        )
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def _init_parameters(self) -> dict[str, Any]:
        return {
            **MedEIREmbedderBase._init_parameters(self),
            "meta_fields_to_embed": self.meta_fields_to_embed,
            "embedding_separator": self.embedding_separator,
        }

    def _text_of(self, document: Document) -> str:
        values = [str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key) is not None]
        return self.embedding_separator.join([*values, document.content])

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """``{"documents": [...]}``: new Documents with embeddings, in input order; an empty list gives ``[]``."""
        if not isinstance(documents, list):
            raise TypeError(
                f"MedEIRDocumentEmbedder takes a list of Documents, got {type(documents).__name__}; "
                "to embed a query string, use MedEIRTextEmbedder"
            )
        for i, document in enumerate(documents):
            if not isinstance(document, Document):
                raise TypeError(f"documents[{i}] is {type(document).__name__}, expected a haystack Document")
            if document.content is None:
                raise ValueError(
                    f"document {document.id!r} (documents[{i}]) has no text content (content=None); "
                    "filter out documents without text before MedEIRDocumentEmbedder"
                )
        if not documents:
            return {"documents": []}
        embeddings = self._embed([self._text_of(document) for document in documents], "document")
        return {"documents": [replace(doc, embedding=e.tolist()) for doc, e in zip(documents, embeddings, strict=True)]}
