"""``medeir demo``: semantic search over a bundled sample of MedQuAD answers with the shipped model.

The index is cached (default ``$XDG_CACHE_HOME/medeir/demo-index``, else ``~/.cache/medeir/demo-index``) and rebuilt
only when the corpus or the model (weights, tokenizer or prompts) change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .documents import load_documents
from .encode import Embedder
from .index import MANIFEST, Hit, IndexReport, Searcher, add_documents, file_sha256, model_fingerprint, read_manifest

DEMO_CORPUS = Path(__file__).resolve().parent / "data" / "medquad_demo.jsonl"
DEMO_QUESTION = "What are the symptoms of type 2 diabetes?"
ATTRIBUTION = (
    "Corpus: answers from MedQuAD (Ben Abacha & Demner-Fushman, BMC Bioinformatics 2019), CC BY 4.0, "
    "https://github.com/abachaa/MedQuAD"
)


def default_index_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "medeir" / "demo-index"


@dataclass(frozen=True)
class DemoResult:
    question: str
    hits: list[Hit]
    index_dir: Path
    built: IndexReport | None  # None when the cached index was reused


def _is_current(index_dir: Path, origin: str, fingerprint: str) -> bool:
    if not (index_dir / MANIFEST).is_file():
        return False
    try:
        manifest = read_manifest(index_dir)
    except (OSError, ValueError):
        return False  # an unreadable cache is rebuilt, not reported
    return manifest["inputs"] == [origin] and manifest["model_fingerprint"] == fingerprint


def run_demo(
    question: str = DEMO_QUESTION,
    *,
    model: str | Path | None = None,
    index_dir: str | Path | None = None,
    top_k: int = 5,
    device: str = "auto",
    batch_size: int = 32,
    show_progress: bool = False,
) -> DemoResult:
    """Build (or reuse) the demo index with ``model`` (default: the shipped one) and search it for ``question``."""
    embedder = Embedder(model, device=device, batch_size=batch_size)
    index_dir = Path(index_dir) if index_dir else default_index_dir()
    origin = f"{DEMO_CORPUS.name} sha256:{file_sha256(DEMO_CORPUS)}"
    built = None
    if not _is_current(index_dir, origin, model_fingerprint(embedder.path)):
        built = add_documents(load_documents(DEMO_CORPUS), index_dir, embedder=embedder, origin=origin, rebuild=True,
                              show_progress=show_progress)
    hits = Searcher(index_dir, embedder=embedder).search(question, top_k)
    return DemoResult(question, hits, index_dir, built)
