"""What the MedEIR text and document embedders share: arguments, lazy model loading, serialisation.

Kept out of the ``@component`` classes because the decorator rebuilds them, which breaks zero-argument ``super()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from haystack import default_from_dict, default_to_dict
from haystack.utils import ComponentDevice

from medeir.encode import Embedder
from medeir.hub import resolve_model_path


class MedEIREmbedderBase:
    """Arguments common to both embedders (see their docstrings)."""

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
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.device = device
        self.prefix = prefix
        self.suffix = suffix
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.normalize_embeddings = normalize_embeddings
        self.max_length = max_length
        self._embedder: Embedder | None = None

    def warm_up(self) -> None:
        """Load the model (once)."""
        if self._embedder is None:
            self._embedder = Embedder(
                resolve_model_path(self.model), device=self.device.to_torch_str() if self.device else "auto",
                batch_size=self.batch_size, max_length=self.max_length,
            )

    def _embed(self, texts: list[str], prompt_name: str) -> np.ndarray:
        """``prefix`` (None: the model's ``prompt_name`` prompt) + text + ``suffix`` for each text."""
        self.warm_up()
        prompt = self.prefix if self.prefix is not None else self._embedder.prompts.get(prompt_name, "")
        return self._embedder.encode(
            [text + self.suffix for text in texts], prompt=prompt, show_progress=self.progress_bar,
            normalize=self.normalize_embeddings,
        )

    def _init_parameters(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device.to_dict() if self.device else None,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "batch_size": self.batch_size,
            "progress_bar": self.progress_bar,
            "normalize_embeddings": self.normalize_embeddings,
            "max_length": self.max_length,
        }

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The component ``to_dict`` described (``data`` is left unchanged)."""
        parameters = dict(data.get("init_parameters", {}))
        if parameters.get("device") is not None:
            parameters["device"] = ComponentDevice.from_dict(parameters["device"])
        return default_from_dict(cls, {**data, "init_parameters": parameters})
