"""A small on-disk vector index: build it from documents, add to it, load it and search it (exact cosine search).

Layout of an index folder::

    manifest.json              format, version, model path + fingerprint, dim, counts, chunking, created/updated,
                               inputs, and the names of the two data files below
    embeddings-<gen>.npy       float32 [chunks, dim], L2-normalised
    metadata-<gen>.jsonl       one line per row: doc_id, chunk, chunks, title, source, text

Saving writes new ``<gen>`` data files, fsyncs them and then replaces ``manifest.json`` atomically: that rename is the
commit point, so a process killed at any moment leaves either the old or the new index, both loadable. Stale data
files are removed after the commit. One writer at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import TEMP_SUFFIX, atomic_write
from .documents import Document
from .encode import Embedder, read_prompts
from .evaluation.beir_data import document_text, read_jsonl
from .evaluation.fusion import reciprocal_rank_fusion
from .evaluation.metrics import ranked
from .evaluation.task_names import TOP_K
from .extras import MissingExtraError
from .loading import TOKENIZER_FILES

if TYPE_CHECKING:
    from .evaluation.bm25 import BM25Index

logger = logging.getLogger(__name__)

FORMAT = "medeir-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Files save_index removes after its commit: earlier generations' data files and the temporary files of interrupted
# writes of them or of the manifest (``.<name>.<random>.tmp``, see medeir.atomic). Nothing else in the folder.
_DATA_FILE = r"(embeddings-[0-9a-f]{12}\.npy|metadata-[0-9a-f]{12}\.jsonl)"
STALE_FILE = re.compile(rf"{_DATA_FILE}|\.({_DATA_FILE}|{re.escape(MANIFEST)})\..+{re.escape(TEMP_SUFFIX)}")
DEFAULT_OVERLAP = 64  # tokens shared by consecutive chunks of a document longer than the context
HYBRID_DEPTH = TOP_K  # documents each retriever lists for hybrid search's fusion, as in `medeir eval`


@dataclass(frozen=True)
class Hit:
    """One search result: the best-scoring chunk of a document."""

    score: float
    doc_id: str
    title: str
    source: str
    text: str
    chunk: int
    chunks: int


@dataclass(frozen=True)
class IndexReport:
    """What ``add_documents`` did."""

    index_dir: Path
    added: int
    replaced: int
    chunks_added: int
    documents: int
    chunks: int
    seconds: float


@dataclass
class VectorIndex:
    """Rows of ``embeddings`` and ``records`` correspond; ``manifest`` holds the settings."""

    embeddings: np.ndarray
    records: list[dict]
    manifest: dict

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def search(self, queries: np.ndarray, top_k: int = 5) -> list[list[Hit]]:
        """For each L2-normalised query row, the ``top_k`` documents by cosine (best chunk per document)."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        results = []
        for scores in queries @ self.embeddings.T:
            hits: list[Hit] = []
            seen: set[str] = set()
            for row in np.argsort(-scores, kind="stable"):
                record = self.records[row]
                if record["doc_id"] in seen:
                    continue
                seen.add(record["doc_id"])
                hits.append(Hit(score=float(scores[row]), **record))
                if len(hits) == top_k:
                    break
            results.append(hits)
        return results


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(path: str | Path) -> str:
    """sha256 over what decides a model folder's embeddings: config.json, the weight files, the tokenizer files and the
    query/document prompts. It changes whenever the model's outputs can."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path / "config.json", *sorted(path.glob("*.safetensors"))]
    files += [path / name for name in TOKENIZER_FILES if (path / name).is_file()]
    for file in files:
        digest.update(file.name.encode() + file_sha256(file).encode())
    digest.update(json.dumps(read_prompts(path), sort_keys=True).encode())
    return digest.hexdigest()


def split_text(text: str, tokenizer, budget: int, overlap: int) -> list[str]:
    """``text`` as one piece when it fits ``budget`` tokens, else windows of at most ``budget`` tokens that overlap by
    about ``overlap`` tokens, cut from the original string between words (within a word only if it alone is longer
    than a window)."""
    if len(text) <= budget:  # every token covers at least one character
        return [text]
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets, words = encoding["offset_mapping"], encoding.word_ids()
    if len(offsets) <= budget:
        return [text]
    word_start = [i == 0 or words[i] != words[i - 1] for i in range(len(offsets))]
    pieces, start = [], 0
    while True:
        end = min(start + budget, len(offsets))
        if end < len(offsets):  # end the window before the word that does not fit
            cut = next((i for i in range(end, start, -1) if word_start[i]), end)
            end = cut
        pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
        if end == len(offsets):
            return pieces
        start = max(end - overlap, start + 1)
        start = next((i for i in range(start, end) if word_start[i]), end)  # begin the next one at a word


def chunk_documents(documents: list[Document], embedder: Embedder, overlap: int) -> tuple[list[dict], list[str]]:
    """Metadata rows and the texts to embed (``title + " " + chunk``, as in the evaluation's corpora)."""
    tokenizer = embedder.tokenizer
    prompt = embedder.prompts.get("document", "")
    reserved = tokenizer.num_special_tokens_to_add(pair=False) + len(tokenizer(prompt, add_special_tokens=False)[
        "input_ids"])
    records, texts = [], []
    for doc in documents:
        budget = embedder.max_length - reserved
        if doc.title:
            budget -= len(tokenizer(doc.title, add_special_tokens=False)["input_ids"])
        # only a document that must be split needs room for the overlap (its text is tokenized only in that case)
        if budget <= overlap and (
            budget <= 0 or len(tokenizer(doc.text, add_special_tokens=False)["input_ids"]) > budget
        ):
            raise ValueError(
                f"document {doc.id!r} ({doc.source}): its title leaves {max(budget, 0)} of {embedder.max_length} "
                f"tokens for text, too few to split it into chunks overlapping by {overlap}"
            )
        pieces = split_text(doc.text, tokenizer, budget, overlap)
        for i, piece in enumerate(pieces):
            records.append({"doc_id": doc.id, "chunk": i, "chunks": len(pieces), "title": doc.title,
                            "source": doc.source, "text": piece})
            texts.append(f"{doc.title} {piece}" if doc.title else piece)
    return records, texts


def read_manifest(index_dir: str | Path) -> dict:
    """The manifest of an index folder; FileNotFoundError/ValueError naming what is missing or wrong."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise FileNotFoundError(f"{index_dir}: no such index folder")
    path = index_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{index_dir} is not a MedEIR index: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: index format version {manifest.get('version')}, this medeir reads {FORMAT_VERSION}")
    return manifest


def load_index(index_dir: str | Path) -> VectorIndex:
    """Load an index folder, checking that its files agree with the manifest."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    emb_path, meta_path = (index_dir / manifest["files"][key] for key in ("embeddings", "metadata"))
    if not emb_path.is_file():
        raise FileNotFoundError(f"{index_dir}: {emb_path.name} (named in {MANIFEST}) is missing")
    try:
        embeddings = np.load(emb_path, allow_pickle=False)
    except (ValueError, EOFError) as err:
        raise ValueError(f"{emb_path}: not a readable .npy file ({err})") from err
    records = [record for _, record in read_jsonl(meta_path)]
    expected = (manifest["count"], manifest["dim"])
    if embeddings.shape != expected or len(records) != manifest["count"]:
        raise ValueError(
            f"{index_dir}: {emb_path.name} has shape {embeddings.shape} and {meta_path.name} {len(records)} rows, "
            f"but {MANIFEST} says {expected}"
        )
    return VectorIndex(embeddings.astype(np.float32, copy=False), records, manifest)


def save_index(index: VectorIndex, index_dir: str | Path) -> None:
    """Write ``index`` atomically (see the module docstring) and delete the files it replaces."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    generation = uuid.uuid4().hex[:12]
    files = {"embeddings": f"embeddings-{generation}.npy", "metadata": f"metadata-{generation}.jsonl"}
    with atomic_write(index_dir / files["embeddings"], "wb") as handle:
        np.save(handle, np.ascontiguousarray(index.embeddings, dtype=np.float32))
    with atomic_write(index_dir / files["metadata"]) as handle:
        for record in index.records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    index.manifest = {**index.manifest, "files": files, "count": len(index.records),
                      "documents": len({r["doc_id"] for r in index.records})}
    with atomic_write(index_dir / MANIFEST) as handle:
        json.dump(index.manifest, handle, indent=2)
        handle.write("\n")
    for path in index_dir.iterdir():
        if path.name not in files.values() and STALE_FILE.fullmatch(path.name) and path.is_file():
            path.unlink()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def add_documents(
    documents: list[Document],
    index_dir: str | Path,
    *,
    model: str | Path | None = None,
    device: str = "auto",
    dtype: str | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    overlap: int | None = None,
    origin: str | None = None,
    rebuild: bool = False,
    show_progress: bool = False,
    embedder: Embedder | None = None,
) -> IndexReport:
    """Embed ``documents`` into the index at ``index_dir``, creating it if needed.

    An existing index keeps its model, ``max_length`` and ``overlap`` (passing different ones is an error) and a
    document whose id is already there replaces all of its old rows. ``rebuild`` starts from an empty index instead.
    Documents longer than ``max_length`` tokens (default: the model's context) are split into overlapping chunks.
    ``origin`` (e.g. the input path) is recorded in the manifest's ``inputs``.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir)
    old = None if rebuild or not (index_dir / MANIFEST).exists() else load_index(index_dir)
    if old is not None:
        for name, value in (("max_length", max_length), ("overlap", overlap)):
            if value is not None and value != old.manifest[name]:
                raise ValueError(f"{index_dir} was built with {name}={old.manifest[name]}, got {value}")
        max_length, overlap, model = old.manifest["max_length"], old.manifest["overlap"], model or old.manifest["model"]
    if embedder is None:
        embedder = Embedder(model, device=device, dtype=dtype, batch_size=batch_size, max_length=max_length)
    fingerprint = model_fingerprint(embedder.path)
    if old is not None and (fingerprint, embedder.max_length) != (old.manifest["model_fingerprint"], max_length):
        raise ValueError(
            f"{index_dir} was built with another model or max_length ({old.manifest['model']}, {max_length}); "
            f"use those, a new --index folder, or --rebuild"
        )
    overlap = min(DEFAULT_OVERLAP, embedder.max_length // 4) if overlap is None else overlap
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")

    records, texts = chunk_documents(documents, embedder, overlap)
    embeddings = embedder.encode_documents(texts, show_progress=show_progress)
    new_ids = {doc.id for doc in documents}
    if old is None:
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "model": str(Path(embedder.path).resolve()),
                    "model_fingerprint": fingerprint, "dim": embedder.dim, "max_length": embedder.max_length,
                    "overlap": overlap, "created": _now(), "inputs": []}
        keep, old_ids = np.zeros(0, dtype=bool), set()
        old = VectorIndex(np.zeros((0, embedder.dim), np.float32), [], manifest)
    else:
        keep = np.array([r["doc_id"] not in new_ids for r in old.records], dtype=bool)
        old_ids = {r["doc_id"] for r in old.records}
    index = VectorIndex(
        np.concatenate([old.embeddings[keep], embeddings]),
        [r for r, k in zip(old.records, keep, strict=True) if k] + records,
        {**old.manifest, "updated": _now(), "inputs": old.manifest["inputs"] + ([origin] if origin else [])},
    )
    save_index(index, index_dir)
    return IndexReport(index_dir=index_dir, added=len(new_ids - old_ids), replaced=len(new_ids & old_ids),
                       chunks_added=len(records), documents=index.manifest["documents"],
                       chunks=index.manifest["count"], seconds=time.perf_counter() - started)


class Searcher:
    """Answer questions from an index with the model it was built with (or ``model``).

    ``hybrid``: each document's rank by cosine and its rank by BM25 (over the same title + chunk texts) are merged by
    reciprocal rank fusion, as `medeir eval --task hybrid` scores it; a hit's score is then the fused score, the sum
    of 1 / (60 + rank) over the two lists. Needs the ``hybrid`` extra (bm25s, PyStemmer)."""

    def __init__(
        self,
        index_dir: str | Path,
        *,
        model: str | Path | None = None,
        device: str = "auto",
        dtype: str | None = None,
        embedder: Embedder | None = None,
        hybrid: bool = False,
    ):
        self.index = load_index(index_dir)
        self.keywords: BM25Index | None = _keyword_index(self.index) if hybrid else None
        model = model or self.index.manifest["model"]
        self.embedder = embedder or Embedder(model, device=device, dtype=dtype)
        if self.embedder.dim != self.index.dim:
            raise ValueError(f"{index_dir} holds {self.index.dim}-d vectors but {model} makes {self.embedder.dim}-d")
        if model_fingerprint(self.embedder.path) != self.index.manifest["model_fingerprint"]:
            logger.warning(
                "%s was built with a different model (weights, tokenizer or prompts): rebuild it for meaningful scores",
                index_dir,
            )

    def search(self, question: str, top_k: int = 5) -> list[Hit]:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        query = self.embedder.encode_queries([question])
        if self.keywords is None:
            return self.index.search(query, top_k)[0]
        dense = self.index.search(query, max(top_k, HYBRID_DEPTH))[0]
        lexical = self._keyword_hits(question, max(top_k, HYBRID_DEPTH))
        fused = reciprocal_rank_fusion([{"q": {hit.doc_id: hit.score for hit in hits}} for hits in (dense, lexical)])
        best = {hit.doc_id: hit for hit in (*lexical, *dense)}  # the chunk the model found, else BM25's
        return [replace(best[doc_id], score=score) for doc_id, score in ranked(fused["q"])[:top_k]]

    def _keyword_hits(self, question: str, documents: int) -> list[Hit]:
        """BM25's first ``documents`` documents for ``question`` (best chunk each), best first."""
        records = self.index.records
        hits: dict[str, Hit] = {}
        for row, score in self.keywords.search([question], len(records))[0]:  # every matching chunk
            hits.setdefault(records[row]["doc_id"], Hit(score=score, **records[row]))
        return list(hits.values())[:documents]


def _keyword_index(index: VectorIndex) -> BM25Index | None:
    """A BM25 index over ``index``'s chunks, read as the model reads them (title + chunk text); None when it has
    none. MissingExtraError without the ``hybrid`` extra."""
    try:
        from .evaluation.bm25 import BM25Index
    except ImportError as error:
        raise MissingExtraError(
            f"hybrid search needs the bm25s and PyStemmer packages ({error}): pip install 'medeir[hybrid]'"
        ) from error
    return BM25Index([document_text(record) for record in index.records]) if index.records else None
