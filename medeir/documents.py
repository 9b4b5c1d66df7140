"""Read texts and documents from user files: plain text, JSON lines, CSV, or a folder of .txt/.md files.

Input must be UTF-8 (a leading byte-order mark is allowed). Invalid UTF-8 is an error naming the file and line, never
silently replaced. Every other error also names the file (and the line, where there is one).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .evaluation.beir_data import read_jsonl

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")
DOCUMENT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    """One document to index: ``id`` is unique within a corpus, ``source`` says where it came from."""

    id: str
    text: str
    title: str = ""
    source: str = ""


def existing_path(path: str | Path) -> Path:
    """``path`` as a Path, or FileNotFoundError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return path


def read_text(path: str | Path) -> str:
    """The whole file decoded as UTF-8; invalid bytes raise ValueError naming ``file:line``."""
    path = existing_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a file")
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}:{line}: invalid UTF-8 ({err.reason}); convert the file to UTF-8 first") from err


def _field(record: dict, name: str, path: Path, number: int) -> str:
    if name not in record:
        raise ValueError(f"{path}:{number}: no {name!r} field (fields: {', '.join(sorted(record)) or 'none'})")
    value = record[name]
    if not isinstance(value, str):
        raise ValueError(f"{path}:{number}: field {name!r} is {type(value).__name__}, expected a string")
    return value


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and ``(line, row)`` pairs of a CSV (``,``) or TSV (tab) file."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t" if path.suffix == ".tsv" else ",")
    try:
        header = list(reader.fieldnames or [])
        rows = []
        line = reader.line_num + 1
        for row in reader:
            rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as err:
        raise ValueError(f"{path}:{reader.line_num}: invalid CSV ({err})") from err
    return header, rows


def _id(record: dict, name: str, path: Path, number: int, required: bool) -> str | None:
    """The id in field ``name`` as a string; None where the field is absent and not ``required``."""
    value = record.get(name)
    if value is None:
        if required:
            fields = ", ".join(sorted(record)) or "none"
            raise ValueError(f"{path}:{number}: no value for id field {name!r} (fields: {fields})")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{path}:{number}: id field {name!r} is {type(value).__name__}, expected a string or integer")
    if not str(value).strip():
        raise ValueError(f"{path}:{number}: id field {name!r} is empty")
    return str(value)


def _records(
    path: Path, field: str, id_field: str | None, *, id_required: bool, default_id: Callable[[int], str]
) -> list[tuple[str, int, dict]]:
    """``(id, line, record)`` for every JSON-lines record or CSV row. The id is ``id_field``'s value; where that field
    is absent (an error if ``id_required``), ``default_id(line)``."""
    if path.suffix in CSV_SUFFIXES:
        header, rows = _csv_rows(path)
        for name in (field, id_field if id_required else None):
            if name is not None and name not in header:
                raise ValueError(f"{path}:1: no column {name!r} (columns: {', '.join(header) or 'none'})")
        items = rows
    else:
        items = list(read_jsonl(path))
    records = []
    for number, record in items:
        id_ = _id(record, id_field, path, number, id_required) if id_field else None
        records.append((default_id(number) if id_ is None else id_, number, record))
    return records


def check_unique(ids: list[str], lines: list[int], path: Path) -> None:
    """ValueError naming both lines of the first repeated id."""
    first: dict[str, int] = {}
    for id_, line in zip(ids, lines, strict=True):
        if id_ in first:
            raise ValueError(f"{path}:{line}: duplicate id {id_!r} (first used on line {first[id_]})")
        first[id_] = line


def read_texts(path: str | Path, *, field: str = "text", id_field: str | None = None) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` from a text file (one text per non-blank line), JSON lines or CSV/TSV.

    Ids are the line numbers, or, when ``id_field`` is given, that field's value, which every record must have. An
    input without any text is an error.
    """
    path = existing_path(path)
    if path.suffix in JSONL_SUFFIXES or path.suffix in CSV_SUFFIXES:
        records = _records(path, field, id_field, id_required=id_field is not None, default_id=str)
        ids, lines, texts = [], [], []
        for id_, line, record in records:
            ids.append(id_)
            lines.append(line)
            texts.append(_field(record, field, path, line))
        check_unique(ids, lines, path)
    else:
        ids, texts = [], []
        for number, line in enumerate(read_text(path).split("\n"), start=1):
            if line.strip():
                ids.append(str(number))
                texts.append(line.rstrip("\r"))
    if not texts:
        raise ValueError(f"{path}: no texts found (empty input)")
    return ids, texts


def _folder_documents(folder: Path) -> list[Document]:
    files = sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in DOCUMENT_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    documents = []
    for file in files:
        name = file.relative_to(folder).as_posix()
        documents.append(Document(id=name, text=read_text(file), source=name))
    return documents


def _record_documents(path: Path, text_field: str, id_field: str | None, title_field: str) -> list[Document]:
    documents, lines = [], []
    records = _records(path, text_field, id_field or "id", id_required=id_field is not None,
                       default_id=lambda line: f"{path.name}:{line}")
    for id_, line, record in records:
        title = record.get(title_field)
        source = record.get("source")
        documents.append(
            Document(
                id=id_,
                text=_field(record, text_field, path, line),
                title=title if isinstance(title, str) else "",
                source=source if isinstance(source, str) and source else f"{path.name}:{line}",
            )
        )
        lines.append(line)
    check_unique([d.id for d in documents], lines, path)
    return documents


def load_documents(
    path: str | Path, *, text_field: str = "text", id_field: str | None = None, title_field: str = "title"
) -> list[Document]:
    """Documents from a folder of .txt/.md files (id and source = relative path) or a JSON-lines/CSV file.

    JSON lines: ``text_field`` is required. The id is ``id_field``'s value, which every record must then have; without
    ``id_field``, the ``id`` field where present, else ``file:line`` (so files without ids do not share ids).
    ``title_field`` and ``source`` (else ``file:line``) are optional. Blank documents are skipped with a warning; none
    left is an error.
    """
    path = existing_path(path)
    if path.is_dir():
        documents = _folder_documents(path)
    elif path.suffix in JSONL_SUFFIXES or path.suffix in CSV_SUFFIXES:
        documents = _record_documents(path, text_field, id_field, title_field)
    else:
        kinds = ", ".join(JSONL_SUFFIXES + CSV_SUFFIXES)
        raise ValueError(f"{path}: expected a folder of .txt/.md files or a {kinds} file")
    kept = [d for d in documents if d.text.strip()]
    if len(kept) < len(documents):
        logger.warning("%s: skipped %d blank document(s)", path, len(documents) - len(kept))
    if not kept:
        what = "no .txt or .md file with text" if path.is_dir() else "no documents with text"
        raise ValueError(f"{path}: {what} (empty corpus)")
    return kept
