"""Embed every text of a file and write the vectors as .npy (+ ids sidecar), JSON lines or Parquet."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .documents import read_texts
from .encode import Embedder

OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")
PROMPTS = ("query", "document", "none")


@dataclass(frozen=True)
class EmbedReport:
    count: int
    dim: int
    files: list[Path]
    seconds: float  # encoding time only

    @property
    def texts_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def ids_path(output: Path) -> Path:
    """The ids sidecar of a .npy output: ``vectors.npy`` -> ``vectors.ids.json``."""
    return output.with_suffix(".ids.json")


def check_output(output: str | Path, input_path: Path | None = None) -> Path:
    """``output`` as a Path with a supported suffix in an existing folder (and not the input itself)."""
    output = Path(output)
    if output.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"{output}: unsupported output type {output.suffix!r}; use {', '.join(OUTPUT_SUFFIXES)}")
    if output.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as err:
            raise ValueError(f"{output}: .parquet needs pyarrow (pip install pyarrow); or write .npy/.jsonl") from err
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: output folder does not exist")
    if input_path is not None and output.resolve() == input_path.resolve():
        raise ValueError(f"{output}: the output would overwrite the input")
    return output


def write_embeddings(output: str | Path, ids: list[str], embeddings: np.ndarray) -> list[Path]:
    """Write ``embeddings`` (row i belongs to ``ids[i]``) atomically; returns the files written."""
    output = check_output(output)
    if len(ids) != len(embeddings):
        raise ValueError(f"{len(ids)} ids for {len(embeddings)} embeddings")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if output.suffix == ".npy":
        # Two files cannot be replaced at once: drop the old ids first, so that a run stopped between the two writes
        # leaves vectors without ids (an error to use) rather than beside another run's ids.
        ids_path(output).unlink(missing_ok=True)
        with atomic_write(output, "wb") as handle:
            np.save(handle, embeddings)
        with atomic_write(ids_path(output)) as handle:
            json.dump(ids, handle, ensure_ascii=False)
        return [output, ids_path(output)]
    if output.suffix == ".jsonl":
        with atomic_write(output) as handle:
            for id_, vector in zip(ids, embeddings.tolist(), strict=True):
                handle.write(json.dumps({"id": id_, "embedding": vector}, ensure_ascii=False) + "\n")
        return [output]
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), embeddings.shape[1])
    with atomic_write(output, "wb") as handle:
        pq.write_table(pa.table({"id": pa.array(ids, pa.string()), "embedding": vectors}), handle)
    return [output]


def embed_file(
    input_path: str | Path,
    output: str | Path | None = None,
    *,
    field: str = "text",
    id_field: str | None = None,
    prompt: str = "document",
    model: str | Path | None = None,
    device: str = "auto",
    dtype: str | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = False,
    embedder: Embedder | None = None,
) -> EmbedReport:
    """Read texts (see :func:`medeir.documents.read_texts`), embed them with ``prompt`` and write them to ``output``
    (default: the input's name with ``.npy``). The input is read and checked before the model is loaded."""
    if prompt not in PROMPTS:
        raise ValueError(f"prompt must be one of {PROMPTS}, got {prompt!r}")
    input_path = Path(input_path)
    ids, texts = read_texts(input_path, field=field, id_field=id_field)
    output = check_output(output or input_path.with_suffix(".npy"), input_path)
    if embedder is None:
        embedder = Embedder(model, device=device, dtype=dtype, batch_size=batch_size, max_length=max_length)
    started = time.perf_counter()
    embeddings = embedder.encode(texts, prompt_name=None if prompt == "none" else prompt, show_progress=show_progress)
    seconds = time.perf_counter() - started
    return EmbedReport(len(texts), embeddings.shape[1], write_embeddings(output, ids, embeddings), seconds)
