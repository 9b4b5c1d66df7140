"""What a model folder holds and what this machine can run it with (``medeir info``)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import torch
import transformers

from .encode import read_prompts
from .loading import DEFAULT_MODEL_PATH, load_model, load_tokenizer, resolve_device


def attention_backends() -> list[str]:
    """Attention implementations usable here: eager and sdpa always, flex_attention when this torch has it,
    flash_attention_2 when ``flash_attn`` imports and a CUDA device is present."""
    backends = ["eager", "sdpa"]
    if importlib.util.find_spec("torch.nn.attention.flex_attention") is not None:
        backends.append("flex_attention")
    if torch.cuda.is_available():
        try:
            importlib.import_module("flash_attn")
            backends.append("flash_attention_2")
        except ImportError:
            pass
    return backends


def model_info(path: str | Path | None = None, *, device: str = "auto") -> dict[str, object]:
    """Facts about the model folder (loaded on ``device``) and the runtime, as display-ready values."""
    path = Path(path or DEFAULT_MODEL_PATH)
    device = resolve_device(device)
    model = load_model(path, device=device)
    tokenizer = load_tokenizer(path)
    config = model.config
    return {
        "model": str(path.resolve()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "dim": config.hidden_size,
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "context_length": config.max_position_embeddings,
        "position_encoding": f"ALiBi ({config.alibi_mode})",
        "tokenizer_vocab": len(tokenizer),
        "prompts": read_prompts(path),
        "attention": config._attn_implementation,
        "attention_backends": attention_backends(),
        "device": str(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
