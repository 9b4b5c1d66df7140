"""Helpers for the evaluation tests: a table-driven encoder and a tiny random MedEIR model folder."""

import json
import zlib
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from medeir.loading import DEFAULT_MODEL_PATH


class TableEncoder:
    def __init__(self, table: dict[str, list[float]] | None = None, dim: int = 3, name: str = "table"):
        self.table, self.dim, self.name = table or {}, dim, name
        self.calls: list[tuple[str, int]] = []

    def vector(self, text: str) -> np.ndarray:
        if text in self.table:
            v = np.asarray(self.table[text], dtype=np.float32)
        else:
            v = np.random.default_rng(zlib.crc32(text.encode())).normal(size=self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls.append(("query", len(texts)))
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        self.calls.append(("document", len(texts)))
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def make_tiny_medeir(folder: Path, max_positions: int = 128) -> Path:
    """A 2-layer random MedEIR model with the repository's tokenizer and query/passage prompts, saved in ``folder``."""
    from configuration_medeir import MedEIRConfig
    from modeling_medeir import MedEIRModel

    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_PATH))
    torch.manual_seed(0)
    config = MedEIRConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=max_positions)
    MedEIRModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}}))
    return folder
