"""Texts -> L2-normalised sentence embeddings with the model's own query/document prompts."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .loading import DEFAULT_MODEL_PATH, load_model, load_tokenizer

logger = logging.getLogger(__name__)
PROGRESS_CHUNK = 512  # texts per model.encode call when a progress bar is shown


def read_prompts(path: str | Path) -> dict[str, str]:
    """Named prompts from a model folder's ``config_sentence_transformers.json`` (empty when absent)."""
    file = Path(path) / "config_sentence_transformers.json"
    if not file.is_file():
        return {}
    return {name: text for name, text in json.loads(file.read_text()).get("prompts", {}).items() if text}


def check_texts(texts: Sequence[str]) -> list[str]:
    """A list of strings, or TypeError naming the first offending item."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return list(texts)


class Embedder:
    """Embed texts with a MedEIR model folder (default: the shipped model).

    Texts longer than ``max_length`` tokens are truncated (logged as a warning once per call). An empty string is
    embedded as the special tokens alone (``[CLS] [SEP]``), like any other text.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        model=None,
        tokenizer=None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.path = Path(path or DEFAULT_MODEL_PATH)
        self.model = model if model is not None else load_model(self.path, device=device, dtype=dtype)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.path)
        limit = self.model.config.max_position_embeddings
        if max_length is not None and not 1 <= max_length <= limit:
            raise ValueError(f"max_length must be in [1, {limit}], got {max_length}")
        self.max_length = max_length or limit
        self.batch_size = batch_size
        self.prompts = read_prompts(self.path)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def encode(
        self,
        texts: Sequence[str],
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
        normalize: bool = True,
    ) -> np.ndarray:
        """``[n, dim]`` float32, L2-normalised unless ``normalize=False``; an empty list gives ``[0, dim]``.
        ``prompt`` is literal text put before every input and overrides ``prompt_name``."""
        texts = check_texts(texts)
        if prompt_name is not None and prompt_name not in ("query", "document") and prompt_name not in self.prompts:
            raise ValueError(f"unknown prompt_name {prompt_name!r}; this model has {sorted(self.prompts)}")
        prefix = prompt if prompt is not None else self.prompts.get(prompt_name, "") if prompt_name else ""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._warn_if_truncated(texts, prefix)
        chunk = PROGRESS_CHUNK if show_progress else len(texts)
        parts = []
        with tqdm(total=len(texts), disable=not show_progress, desc="encode", unit="text") as bar:
            for start in range(0, len(texts), chunk):
                part = texts[start : start + chunk]
                parts.append(
                    self.model.encode(
                        part, batch_size=batch_size or self.batch_size, max_length=self.max_length,
                        normalize=normalize, prefix=prefix, tokenizer=self.tokenizer,
                    )
                )
                bar.update(len(part))
        return np.concatenate(parts).astype(np.float32, copy=False)

    def encode_queries(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self.encode(texts, prompt_name="query", **kwargs)

    def encode_documents(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self.encode(texts, prompt_name="document", **kwargs)

    def _warn_if_truncated(self, texts: list[str], prefix: str) -> None:
        # Every token but the special ones covers at least one character, so only texts with more characters than the
        # limit leaves for them can exceed it; counting their tokens is cheap.
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add()
        suspects = [prefix + t for t in texts if len(prefix) + len(t) > budget]
        if not suspects:
            return
        lengths = [len(ids) for ids in self.tokenizer(suspects, add_special_tokens=True)["input_ids"]]
        too_long = sum(n > self.max_length for n in lengths)
        if too_long:
            logger.warning("%d text(s) exceed %d tokens and were truncated", too_long, self.max_length)
