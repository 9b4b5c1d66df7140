"""Shared fixtures: a tiny random MedEIR Hub model folder (built once per session) and the shipped model, if present."""

import os
import sys
from pathlib import Path

import pytest

# Nothing in the test run may download; huggingface_hub reads this once, when first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_PROMPTS = {"query": "query: ", "document": "passage: "}  # non-empty, so tests see whether prompts are applied


def has_weights(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """all-MiniLM-L6-v2's tokenizer (bert-base-uncased's vocabulary), from the offline package. Read-only."""
    from transformers import AutoTokenizer

    from medeir.loading import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()))


@pytest.fixture(scope="session")
def tiny_model_and_tokenizer():
    """A random 2-layer MedEIRModel (hidden 32, 4 heads, default 8192-token limit) and the repository's tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from configuration_medeir import MedEIRConfig
    from modeling_medeir import MedEIRModel

    tokenizer = AutoTokenizer.from_pretrained(str(REPO_ROOT))
    torch.manual_seed(0)
    config = MedEIRConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64)
    return MedEIRModel(config).eval(), tokenizer


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory, tiny_model_and_tokenizer) -> Path:
    """``tiny_model_and_tokenizer`` written by ``medeir.hub.write_model_folder`` (fp16 shards, ST files, prompts
    ``TINY_PROMPTS``): loads with transformers, sentence-transformers and ``medeir.encode.Embedder``. Read-only."""
    from medeir.hub import write_model_folder

    model, tokenizer = tiny_model_and_tokenizer
    return write_model_folder(model, tokenizer, tmp_path_factory.mktemp("tiny-medeir"), prompts=TINY_PROMPTS,
                              max_shard_size="1MB")


@pytest.fixture(scope="session")
def shipped_model_folder() -> Path:
    """The repository root as a model folder; skips the test until the trained weights are there."""
    if not has_weights(REPO_ROOT):
        pytest.skip("the trained model's weights are not at the repository root yet")
    return REPO_ROOT


@pytest.fixture(scope="session")
def medical_corpus() -> tuple[dict[str, str], dict[str, str]]:
    """Six medical passages by id, and paraphrased queries (no shared key terms with the answer) -> the answer's id."""
    passages = {
        "mi": "Myocardial infarction occurs when blood flow to part of the heart muscle is blocked, usually by a clot"
              " in a coronary artery; chest pain radiating to the left arm is typical.",
        "t2d": "Metformin is the first-line oral medication for type 2 diabetes mellitus; it lowers hepatic glucose"
               " production and improves insulin sensitivity.",
        "asthma": "Inhaled corticosteroids reduce airway inflammation and are the mainstay of long-term control in"
                  " persistent asthma.",
        "migraine": "Triptans such as sumatriptan are used to abort acute migraine attacks, which cause throbbing"
                    " unilateral headache with nausea and light sensitivity.",
        "thyroid": "Hypothyroidism is treated with daily levothyroxine, a synthetic form of the thyroid hormone T4.",
        "fracture": "A scaphoid fracture of the wrist often follows a fall on an outstretched hand and may not be"
                    " visible on the first X-ray.",
    }
    queries = {
        "what happens in a heart attack": "mi",
        "first drug for high blood sugar in diabetes": "t2d",
        "long-term inhaler treatment for asthma": "asthma",
        "medication for a throbbing one-sided headache": "migraine",
        "hormone replacement for an underactive thyroid": "thyroid",
        "broken wrist bone after falling": "fracture",
    }
    return passages, queries


@pytest.fixture
def offline_hub(tmp_path):
    """``serve(repo_id, folder) -> cache``: a Hugging Face cache under tmp_path in which ``repo_id`` resolves to
    ``folder`` offline (point ``HF_HUB_CACHE`` at it, or pass it as ``cache_dir``)."""
    cache = tmp_path / "hub-cache"

    def serve(repo_id: str, folder: Path) -> Path:
        revision = "0" * 40
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True)
        for item in Path(folder).iterdir():
            if not item.name.startswith("."):
                (snapshot / item.name).symlink_to(item.resolve())
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(revision)
        return cache

    return serve


@pytest.fixture
def without_bm25s(monkeypatch):
    """``import bm25s`` fails for this test (as without the hybrid extra), and medeir's BM25 module is imported anew."""
    monkeypatch.setitem(sys.modules, "bm25s", None)
    monkeypatch.delitem(sys.modules, "medeir.evaluation.bm25", raising=False)
