"""Read BEIR-format folders (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``); read and write other
JSON-lines files.

Errors name the file and line. Qrels that point at a document missing from the corpus (or a query missing from the
queries file) are skipped with one warning and counted in ``BeirDataset.skipped_qrels``.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from medeir.atomic import atomic_write

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BeirDataset:
    """One BEIR test collection; ``corpus`` texts are ``title + " " + text`` when the title is non-empty."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    skipped_qrels: int = 0


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-blank line; ``.gz`` files are decompressed.

    Raises FileNotFoundError for a missing file, ValueError naming ``file:line`` for a line that is not UTF-8 or not a
    JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{number}: invalid UTF-8 ({err.reason} at byte {err.start + 1})") from err
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: invalid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Write ``records`` as JSON lines (gzip'd for a ``.gz`` name, reproducibly), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    with atomic_write(path, "wb") as handle:
        if path.suffix == ".gz":
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped:
                zipped.write(text)
            text = buffer.getvalue()
        handle.write(text)


def require_fields(record: dict, fields: tuple[str, ...], path: Path, number: int) -> None:
    """ValueError naming ``file:line`` when a record lacks one of ``fields``."""
    missing = [field for field in fields if field not in record]
    if missing:
        raise ValueError(f"{path}:{number}: missing field(s) {missing}")


def document_text(record: dict) -> str:
    """``title + " " + text`` when the title is non-empty, else ``text``."""
    title = (record.get("title") or "").strip()
    return f"{title} {record['text']}" if title else record["text"]


def read_corpus(path: Path) -> dict[str, str]:
    corpus = {}
    for number, record in read_jsonl(path):
        require_fields(record, ("_id", "text"), path, number)
        corpus[str(record["_id"])] = document_text(record)
    if not corpus:
        raise ValueError(f"empty corpus: {path} has no documents")
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    queries = {}
    for number, record in read_jsonl(path):
        require_fields(record, ("_id", "text"), path, number)
        queries[str(record["_id"])] = record["text"]
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` rows (an optional header line is skipped)."""
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if (number == 1 and fields[0] == "query-id") or not line.strip():
                continue
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
            try:
                score = int(fields[2])
            except ValueError as err:
                raise ValueError(f"{path}:{number}: score {fields[2]!r} is not an integer") from err
            qrels.setdefault(fields[0], {})[fields[1]] = score
    return qrels


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR folder; only queries that have qrels are kept (as BEIR's own loader does)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"BEIR folder not found: {folder}")
    corpus = read_corpus(folder / "corpus.jsonl")
    queries = read_queries(folder / "queries.jsonl")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    qrels, skipped = {}, 0
    for query_id, judged in read_qrels(qrels_path).items():
        known = {doc_id: score for doc_id, score in judged.items() if doc_id in corpus and query_id in queries}
        skipped += len(judged) - len(known)
        if known:
            qrels[query_id] = known
    if skipped:
        logger.warning("%s: skipped %d qrel(s) naming documents or queries that do not exist", qrels_path, skipped)
    if not qrels:
        raise ValueError(f"{qrels_path}: no usable qrels (no judged query/document pair exists in the data)")
    queries = {query_id: text for query_id, text in queries.items() if query_id in qrels}
    return BeirDataset(folder.name, corpus, queries, qrels, skipped)
