"""Write a complete Hub model folder (transformers remote code + sentence-transformers files) and install one at the
repository root, which is the shipped model's folder."""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from .loading import DEFAULT_MODEL_PATH, load_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_PROMPTS = {"query": "", "document": ""}
FILE_LIMIT_BYTES = 16 * 10**6  # largest file the repository and the device tool take
# Keys transformers 5 writes from how the tokenizer was loaded; they say nothing about the tokenizer itself.
LOAD_TIME_TOKENIZER_KEYS = ("is_local", "local_files_only", "name_or_path")
WEIGHT_PATTERNS = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json")
# Module names that both sentence-transformers 5.x and 6.x import (6.x's own names break 5.x).
ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def remove_weights(folder: str | Path) -> list[Path]:
    """Delete the weight files (single file, shards, shard index) of a model folder; return what was deleted."""
    removed = [file for pattern in WEIGHT_PATTERNS for file in Path(folder).glob(pattern)]
    for file in removed:
        file.unlink()
    return removed


def write_json(file: Path, data: dict | list) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def library_versions() -> dict[str, str]:
    """Versions recorded in ``config_sentence_transformers.json`` (the libraries this folder was written with)."""
    import transformers

    versions = {"transformers": transformers.__version__, "pytorch": torch.__version__}
    try:
        import sentence_transformers
    except ImportError:
        return versions
    return {"sentence_transformers": sentence_transformers.__version__, **versions}


def prompts_of(folder: str | Path) -> dict[str, str]:
    """The query/document prompts of a model folder's ``config_sentence_transformers.json`` (empty where unset)."""
    from .encode import read_prompts

    return {**DEFAULT_PROMPTS, **read_prompts(folder)}


def write_sentence_transformers_files(
    folder: str | Path, *, dim: int, max_seq_length: int, prompts: dict[str, str] | None = None
) -> None:
    """Transformer -> mean Pooling -> Normalize, in the legacy file format that sentence-transformers 5.x and 6.x
    both load. ``prompts`` defaults to empty query/document prompts (the model was trained without any)."""
    folder = Path(folder)
    write_json(folder / "modules.json", ST_MODULES)
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    # 6.x reads this file; 5.x ignores the folder. A file also keeps the folder in git.
    write_json(
        folder / "2_Normalize" / "config.json",
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    )
    write_json(
        folder / "config_sentence_transformers.json",
        {
            "__version__": library_versions(),
            "model_type": "SentenceTransformer",
            "prompts": dict(DEFAULT_PROMPTS if prompts is None else prompts),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def half_precision_state_dict(state_dict: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``state_dict``'s tensors cast to ``dtype``; ValueError naming a tensor whose values do not fit."""
    state = {}
    for name, tensor in state_dict.items():
        if tensor.is_floating_point():
            limit = torch.finfo(dtype).max
            peak = float(tensor.detach().abs().max()) if tensor.numel() else 0.0
            if peak > limit:
                raise ValueError(f"{name} holds {peak:.4g}, beyond the {dtype} range ({limit:.4g}): save in float32")
            tensor = tensor.detach().to(dtype)
        state[name] = tensor.contiguous()
    return state


def write_model_folder(
    model,
    tokenizer,
    folder: str | Path,
    *,
    prompts: dict[str, str] | None = None,
    dtype: torch.dtype = torch.float16,
    max_shard_size: str | int = "15MB",
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` (a ``MedEIRModel``) and ``tokenizer`` as a Hub model folder that loads with
    ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` and ``SentenceTransformer(folder,
    trust_remote_code=True)``.

    Weights are stored in ``dtype`` (half precision by default) in shards of at most ``max_shard_size``; config.json
    keeps ``"dtype": "float32"`` so that loading without a dtype gives float32. Stale weight files in ``folder`` are
    removed first. A single tensor larger than the shard size still gets a file of its own: such files are logged.
    ``state_dict`` (default: the model's own) supplies the weights, e.g. the full weights gathered from a sharded
    (FSDP) training run.
    """
    if type(model).__name__ != "MedEIRModel":
        raise TypeError(f"expected a MedEIRModel (the encoder), got {type(model).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_weights(folder)
    state = half_precision_state_dict(model.state_dict() if state_dict is None else state_dict, dtype)
    model.save_pretrained(folder, state_dict=state, max_shard_size=max_shard_size)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["dtype"] = "float32"  # loading upcasts the stored half-precision weights unless asked otherwise
    write_json(config_file, config)

    max_length = model.config.max_position_embeddings
    tokenizer.save_pretrained(folder)
    tokenizer_config_file = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_config_file.read_text(encoding="utf-8"))
    tokenizer_config["model_max_length"] = max_length  # sentence-transformers 6 reads max_seq_length from here
    for key in LOAD_TIME_TOKENIZER_KEYS:
        tokenizer_config.pop(key, None)
    write_json(tokenizer_config_file, tokenizer_config)

    write_sentence_transformers_files(folder, dim=model.config.hidden_size, max_seq_length=max_length, prompts=prompts)
    oversized = [f"{f.name} ({f.stat().st_size / 1e6:.1f} MB)" for f in folder.rglob("*") if f.is_file()
                 and f.stat().st_size > FILE_LIMIT_BYTES]
    if oversized:
        logger.warning("files over %.0f MB (a single tensor larger than the shard size): %s",
                       FILE_LIMIT_BYTES / 1e6, ", ".join(oversized))
    return folder


def average_models(
    sources: list[str | Path],
    output: str | Path,
    *,
    weights: Sequence[float] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write the element-wise mean of the floating-point weights of ``sources`` (MedEIR model folders of one shape,
    e.g. checkpoints of one run) as a model folder ``output``, with the first source's config, tokenizer and prompts.
    ``weights`` (one positive number per source) make it a weighted mean, sum(w_i x_i) / sum(w_i); None: equal.

    Integer buffers are taken from the first source. ValueError when the folders' tensors do not match by name and
    shape, or when ``weights`` do not fit the sources."""
    from modeling_medeir import MedEIRModel

    if len(sources) < 2:
        raise ValueError(f"averaging needs at least two model folders, got {len(sources)}")
    weights = checked_weights(len(sources), weights)
    model = MedEIRModel.from_pretrained(str(sources[0]), dtype=torch.float32).eval()
    total = {name: t * weights[0] for name, t in model.state_dict().items() if t.is_floating_point()}
    for source, weight in zip(sources[1:], weights[1:], strict=True):
        state = MedEIRModel.from_pretrained(str(source), dtype=torch.float32).state_dict()
        for name, tensor in total.items():
            other = state.get(name)
            if other is None or other.shape != tensor.shape:
                found = "missing" if other is None else tuple(other.shape)
                raise ValueError(f"{source}: {name} is {found}, expected {tuple(tensor.shape)} as in {sources[0]}")
            tensor += weight * other
    total_weight = sum(weights)
    model.load_state_dict({name: t / total_weight for name, t in total.items()}, strict=False)
    return write_model_folder(model, load_tokenizer(sources[0]), output, prompts=prompts_of(sources[0]), dtype=dtype)


def checked_weights(count: int, weights: Sequence[float] | None) -> list[float]:
    """``weights`` as floats (all 1.0 when None); ValueError unless there is one positive, finite real number per
    source and their sum is finite."""
    if weights is None:
        return [1.0] * count
    reals = [w for w in weights if isinstance(w, int | float) and not isinstance(w, bool)]
    positive = len(reals) == len(weights) == count and all(w > 0 for w in reals)  # NaN fails w > 0
    if not positive or not math.isfinite(sum(reals)):  # a finite sum of positive weights: each one finite
        raise ValueError(f"need {count} positive weights, one per model folder, with a finite sum, got {list(weights)}")
    return [float(w) for w in weights]


def refresh_root(
    source: str | Path,
    root: str | Path = DEFAULT_MODEL_PATH,
    *,
    prompts: dict[str, str] | None = None,
    dtype: torch.dtype = torch.float16,
    max_shard_size: str | int = "15MB",
) -> list[str]:
    """Install the trained model in ``source`` (a folder written by ``save_pretrained``) as the model folder ``root``.

    The model is loaded with this package's own ``MedEIRModel``, written to a staging folder with
    :func:`write_model_folder` and copied over ``root`` after ``root``'s old weight files are removed. README.md and
    any other file in ``root`` are left alone. ``prompts``: None keeps the prompts of ``source``'s
    ``config_sentence_transformers.json`` if it has one, else empty query/document prompts.
    Returns the written paths relative to ``root``.
    """
    from modeling_medeir import MedEIRModel

    source, root = Path(source), Path(root)
    if prompts is None:
        prompts = prompts_of(source)
    model = MedEIRModel.from_pretrained(str(source), dtype=torch.float32).eval()
    tokenizer = load_tokenizer(source)
    with tempfile.TemporaryDirectory(prefix="medeir-stage-") as staging:
        write_model_folder(model, tokenizer, staging, prompts=prompts, dtype=dtype, max_shard_size=max_shard_size)
        remove_weights(root)
        written = []
        for file in sorted(Path(staging).rglob("*")):
            if file.is_file():
                relative = file.relative_to(staging)
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, root / relative)
                written.append(relative.as_posix())
    return written


def resolve_model_path(name_or_path: str | Path | None = None) -> Path:
    """A local model folder: ``None`` -> the shipped model, an existing folder -> itself, anything else is taken as a
    Hub model id and fetched with ``huggingface_hub.snapshot_download`` (served from the cache when offline)."""
    if name_or_path is None:
        return DEFAULT_MODEL_PATH
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or str(name_or_path).count("/") != 1:
        raise FileNotFoundError(f"model folder not found: {name_or_path} (nor is it a Hub id like 'owner/name')")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(name_or_path)))
