"""Haystack embedders for MedEIR, the open medical text-embedding model."""

from haystack_integrations.components.embedders.medeir.document_embedder import MedEIRDocumentEmbedder
from haystack_integrations.components.embedders.medeir.text_embedder import MedEIRTextEmbedder

__all__ = ["MedEIRDocumentEmbedder", "MedEIRTextEmbedder"]
