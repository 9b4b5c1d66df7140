"""LlamaIndex embeddings for MedEIR, the open medical text-embedding model."""

from llama_index.embeddings.medeir.base import MedEIREmbedding

__all__ = ["MedEIREmbedding"]
