"""Initialise a MedEIR encoder from a BERT-layout checkpoint (all-MiniLM-L6-v2) with a different vocabulary.

Layers are copied one to one (q/k/v are fused into ``qkv``). Learned position embeddings are dropped (ALiBi replaces
them); their mean over the first ``position_window`` positions and the segment-0 embedding are folded into every token
embedding, so the embedding LayerNorm sees inputs of the scale it was trained on. Each token of the new vocabulary
gets the teacher's embedding when the teacher has the same token, else the mean of the teacher embeddings of the
pieces the teacher's tokenizer cuts it into.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

LAYER_MAP = {
    "attention.out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "mlp.up": "intermediate.dense",
    "mlp.down": "output.dense",
    "mlp_norm": "output.LayerNorm",
}


def teacher_piece_ids(token: str, teacher_tokenizer, vocab: dict[str, int]) -> list[int]:
    """Teacher ids whose embeddings stand in for one of our tokens (``##`` marks a word continuation);
    ``vocab`` is the teacher's token -> id map."""
    if token in vocab:
        return [vocab[token]]
    continuation = token.startswith("##") and len(token) > 2
    word = token[2:] if continuation else token
    pieces = teacher_tokenizer.tokenize(word)
    if continuation and pieces and "##" + pieces[0] in vocab:
        pieces[0] = "##" + pieces[0]
    ids = [vocab[p] for p in pieces if p in vocab]
    return ids or [vocab["[UNK]"]]


def transplant_embeddings(teacher_weights: torch.Tensor, our_tokenizer, teacher_tokenizer) -> torch.Tensor:
    """``[our_vocab, hidden]`` embeddings built from the teacher's ``[teacher_vocab, hidden]`` table."""
    ours = our_tokenizer.get_vocab()
    vocab = teacher_tokenizer.get_vocab()
    table = torch.empty(len(ours), teacher_weights.shape[1], dtype=teacher_weights.dtype)
    for token, index in ours.items():
        table[index] = teacher_weights[teacher_piece_ids(token, teacher_tokenizer, vocab)].mean(0)
    return table


def load_teacher(teacher_dir: str | Path, hidden_size: int) -> tuple[dict[str, torch.Tensor], PreTrainedTokenizerBase]:
    """A BERT-layout checkpoint's float32 weights by name and its tokenizer; its width must be ``hidden_size``."""
    from transformers import AutoTokenizer

    teacher_dir = Path(teacher_dir)
    weights = {name: tensor.float() for name, tensor in load_file(str(teacher_dir / "model.safetensors")).items()}
    if weights["embeddings.word_embeddings.weight"].shape[1] != hidden_size:
        raise ValueError("teacher hidden size differs from the model's")
    return weights, AutoTokenizer.from_pretrained(str(teacher_dir))


def folded_word_embeddings(weights: dict[str, torch.Tensor], position_window: int = 128) -> torch.Tensor:
    """The teacher's word embeddings plus its segment-0 embedding and its mean position embedding over the first
    ``position_window`` positions: what the embedding LayerNorm saw for each token, without a position."""
    constant = weights["embeddings.token_type_embeddings.weight"][0]
    constant = constant + weights["embeddings.position_embeddings.weight"][:position_window].mean(0)
    return weights["embeddings.word_embeddings.weight"] + constant


def init_from_bert(model, teacher_dir: str | Path, our_tokenizer, position_window: int = 128) -> dict[str, int]:
    """Copy a BERT-layout checkpoint into ``model`` (a MedEIRModel) in place; returns counts for logging."""
    weights, teacher_tokenizer = load_teacher(teacher_dir, model.config.hidden_size)
    words = transplant_embeddings(folded_word_embeddings(weights, position_window), our_tokenizer, teacher_tokenizer)
    state = {
        "embeddings.word_embeddings.weight": words,
        "embeddings.LayerNorm.weight": weights["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": weights["embeddings.LayerNorm.bias"],
    }
    for i in range(model.config.num_hidden_layers):
        src = f"encoder.layer.{i}."
        for part in ("weight", "bias"):
            state[f"layers.{i}.attention.qkv.{part}"] = torch.cat(
                [weights[f"{src}attention.self.{name}.{part}"] for name in ("query", "key", "value")]
            )
            for ours, theirs in LAYER_MAP.items():
                state[f"layers.{i}.{ours}.{part}"] = weights[f"{src}{theirs}.{part}"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or missing:
        raise ValueError(f"transplant mismatch: missing {missing}, unexpected {unexpected}")
    return {"tensors": len(state), "vocab": words.shape[0]}
