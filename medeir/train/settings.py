"""Run configurations: YAML files in configs/ loaded into frozen dataclasses; CLI overrides replace fields by name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ModelSettings:
    """Where the model comes from: ``init`` is "scratch" (random, ``config`` kwargs), "minilm" (transplanted
    all-MiniLM-L6-v2 layers) or a path to a MedEIR model folder (e.g. the output of an earlier stage)."""

    init: str = "scratch"
    tokenizer: str = "."
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MLMSettings:
    """Masked-language-model pretraining on streamed text shards with packing and a length curriculum."""

    text_files: tuple[str, ...] = ("text/medical.txt.gz", "text/general.txt.gz")
    mask_prob: float = 0.3
    # (sequence length, steps) in order: the curriculum
    curriculum: tuple[tuple[int, int], ...] = ((128, 1000), (512, 200))
    tokens_per_batch: int = 16384


@dataclass(frozen=True)
class ContrastiveSettings:
    """In-batch-negative contrastive training on pairs, with optional embedding distillation from a teacher."""

    pair_files: dict[str, float] = field(default_factory=lambda: {"train/medquad_pairs.jsonl.gz": 1.0})
    distill_text_files: dict[str, float] = field(default_factory=dict)  # text file -> share of distill-only texts
    batch_size: int = 32
    distill_texts_per_batch: int = 0
    query_max_length: int = 64
    passage_max_length: int = 256
    scale: float = 20.0
    distill_weight: float = 0.0  # weight of the MSE between student and teacher embeddings (0 = none)
    similarity_distill_weight: float = 0.0  # weight of the KL between teacher and student in-batch rankings
    steps: int = 1000
    symmetric: bool = False  # also score passages -> queries
    # > 0: embed in chunks of this many texts, keeping only each chunk's inputs and embeddings for the backward pass,
    # which recomputes one chunk at a time (a gradient cache): a batch's memory is about one chunk's, its gradients
    # those of the whole batch, for about one more forward pass of compute. 0: the whole batch in one pass.
    chunk_size: int = 0
    # graded sentence pairs (sentence1/sentence2/score rows, e.g. STS-B train): with graded_pairs_per_batch > 0, each
    # step adds graded_weight x a CoSENT ranking loss that asks cosines to sort these pairs as their scores do (both
    # sentences are cut at query_max_length)
    graded_pair_files: tuple[str, ...] = ()
    graded_pairs_per_batch: int = 0
    graded_weight: float = 1.0
    # > 0 (needs graded pairs): each step also adds graded_teacher_weight x the KL from the teacher's to the student's
    # ranking of the graded batch's second sentences for each first sentence (similarity_distillation_loss), so the
    # student also learns how the teacher grades a sentence against the batch's other, unrelated sentences, which
    # the gold scores do not cover
    graded_teacher_weight: float = 0.0
    # text put before every query (and both sentences of a graded pair: symmetric inputs are embedded as queries) and
    # before every positive and negative passage; saved as the model folder's query/document prompts
    query_prompt: str = ""
    passage_prompt: str = ""
    # share of the positive and negative passages (STS-B paraphrases included) that the student reads in
    # nfcorpus-degraded's keyword-list form, each drawn independently; queries, graded pairs, distill-only texts and
    # the teacher's inputs stay intact; 0 = none
    degraded_passage_share: float = 0.0
    # share of the pairs (STS-B paraphrases included) whose query may become a keyword query: its one to three
    # consecutive content words of highest idf (QueryShortener, which says when a query stays whole); such a pair
    # drops its hard negative, and the student and the teacher both read the keywords; 0 = none
    keyword_query_share: float = 0.0
    # the pair_files entries (named exactly as there) whose pairs' queries may become keyword queries: the share
    # applies to their pairs, the others' queries stay whole (idf still counts every file's queries); empty = all
    keyword_query_files: tuple[str, ...] = ()
    # True: the ranking KL toward the teacher (similarity_distill_weight) counts only the pairs whose query became a
    # keyword query, each ranked against every candidate, and is averaged over those rows alone (so each weighs more
    # than in a KL over the whole batch); a step with none adds nothing. Needs similarity_distill_weight > 0 and
    # either keyword_query_share > 0 or similarity_distill_files
    similarity_distill_keyword_only: bool = False
    # with similarity_distill_keyword_only, the pair_files entries (named exactly as there, else an error) whose pairs
    # not shortened to keywords get a second KL term of their own, averaged over their rows and added at the same
    # weight, so the keyword rows' term is as without them (e.g. a file whose queries are already short topics)
    similarity_distill_files: tuple[str, ...] = ()
    # > 0: wherever a ranking KL toward the teacher is taken (similarity_distill_weight's rows, graded_teacher_weight's
    # graded batch), also this weight x the squared difference of the student's and the teacher's cosines
    # (cosine_distillation_loss), which fixes each query's level of similarity as well as its order
    cosine_distill_weight: float = 0.0
    # > 0 (needs distill_text_files and distill_texts_per_batch > 0): each step also draws distill_texts_per_batch text
    # lines, cuts a sentence out of each that qualifies (ClozeSplitter: the sentence is the query, the rest of the
    # line its passage) and adds this weight x the KL from the teacher's to the student's ranking of those passages
    # for each such query (similarity_distillation_loss): the teacher's retrieval judgement on text that has no pairs
    cloze_distill_weight: float = 0.0
    # > 0 (needs cloze_distill_weight > 0): the share of the cloze passages that the student reads in
    # nfcorpus-degraded's keyword-list form (as degraded_passage_share does for the pairs' passages, with a random
    # stream of its own); the queries and the teacher's inputs stay intact; 0 = none
    cloze_degraded_share: float = 0.0


@dataclass(frozen=True)
class RunSettings:
    """One training stage. Paths are relative to ``data_dir`` (data) and the working directory (outputs)."""

    stage: str = "contrastive"
    output_dir: str = "runs/tiny"
    data_dir: str = "../shared/data"
    seed: int = 42
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # "bf16" on GPU
    # "" keeps the model's default backend (SDPA); "eager" runs short padded batches as a few large matrix products,
    # which on a GPU beats SDPA's one call per sequence for contrastive batches of many short, mixed-length texts
    attn_implementation: str = ""
    gradient_checkpointing: bool = False
    save_every: int = 500
    keep_checkpoints: bool = False  # keep every checkpoint (e.g. to average or score several); default: the newest
    log_every: int = 10
    max_shard_size: str = "15MB"
    time_limit_minutes: float = 0.0  # stop (and checkpoint) after this long; 0 = no limit
    # stop (and checkpoint) after this step, the learning-rate schedule still spanning all steps (a time-limited run
    # replayed step for step); 0 = run to the last step
    stop_at_step: int = 0
    model: ModelSettings = field(default_factory=ModelSettings)
    mlm: MLMSettings = field(default_factory=MLMSettings)
    contrastive: ContrastiveSettings = field(default_factory=ContrastiveSettings)


SECTIONS = frozenset(  # RunSettings' nested sections: model, mlm, contrastive
    f.name for f in dataclasses.fields(RunSettings) if dataclasses.is_dataclass(getattr(RunSettings(), f.name))
)


def _build(cls, data: dict[str, Any]):
    """Instantiate a (nested) settings dataclass from a dict, rejecting unknown keys by name."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {sorted(unknown)}; known: {sorted(known)}")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict | None):
                got = f"{type(value).__name__} {value!r}"
                raise ValueError(f"{cls.__name__}.{name} must be a mapping of fields, got {got}")
            value = _build(type(default), value or {})
        elif isinstance(default, tuple | dict):
            kind, expected = ("a list", list) if isinstance(default, tuple) else ("a mapping", dict)
            if not isinstance(value, expected):
                raise ValueError(f"{cls.__name__}.{name} must be {kind}, got {type(value).__name__} {value!r}")
            if expected is list:
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif isinstance(default, bool | int | float | str):
            value = _scalar(f"{cls.__name__}.{name}", type(default), value)
        values[name] = value
    return cls(**values)


def _scalar(name: str, kind: type, value: Any) -> Any:
    """``value`` as a field of type ``kind``: ints are floats too, and a float written like ``1e-9`` (which YAML
    reads as text) is read as a number; anything else of the wrong type is a ValueError naming the field."""
    if kind is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ValueError(f"{name} must be of type {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"contrastive.steps=200"`` -> (["contrastive", "steps"], 200); the value is parsed as YAML."""
    if "=" not in text:
        raise ValueError(f"override must look like section.field=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: a section merges field by field; any other value, a list or a mapping such as
    ``pair_files`` included, replaces the base's whole."""
    merged = dict(base)
    for key, value in top.items():
        if key in SECTIONS and isinstance(value, dict | None) and isinstance(merged.get(key), dict | None):
            value = {**(merged.get(key) or {}), **(value or {})}  # a section left empty changes nothing
        merged[key] = value
    return merged


def _read_config(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's mapping; with ``extends: <file>`` (relative to this file), that file's mapping with this one's
    overlaid on it."""
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}" + (f" (extended by {chain[-1]})" if chain else ""))
    if path.resolve() in {p.resolve() for p in chain}:
        raise ValueError(f"config files extend each other in a cycle: {' -> '.join(map(str, (*chain, path)))}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ValueError(f"{path}: extends must name one config file, got {parent!r}")
    return _overlay(_read_config(path.parent / parent, (*chain, path)), data)


def load_settings(path: str | Path, overrides: list[str] = ()) -> RunSettings:
    """Read a YAML run config (following its ``extends`` chain) and apply ``section.field=value`` overrides."""
    data = _read_config(Path(path))
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return _build(RunSettings, data)


def settings_dict(settings: RunSettings) -> dict[str, Any]:
    """Plain-data form (saved beside every checkpoint)."""
    return dataclasses.asdict(settings)
