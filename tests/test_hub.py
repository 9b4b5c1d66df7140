"""medeir.hub: the Hub model folder loads in transformers, sentence-transformers and Embedder, with equal embeddings."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_PROMPTS
from safetensors import safe_open

from medeir.encode import Embedder
from medeir.hub import (
    average_models,
    refresh_root,
    remove_weights,
    resolve_model_path,
    write_model_folder,
    write_sentence_transformers_files,
)
from medeir.loading import DEFAULT_MODEL_PATH, load_model

TEXTS = [
    "Aspirin irreversibly inhibits cyclooxygenase.",
    "Type 2 diabetes mellitus is managed first with lifestyle change and metformin.",
    "",
    "Chest pain radiating to the left arm.",
]


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def weight_files(folder):
    return sorted(p.name for p in folder.glob("model*.safetensors"))


@pytest.fixture(scope="module")
def st_model(tiny_model_folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_folder), trust_remote_code=True, device="cpu")


@pytest.fixture(scope="module")
def embedder(tiny_model_folder):
    return Embedder(tiny_model_folder, device="cpu")


def test_folder_has_the_hub_and_sentence_transformers_files(tiny_model_folder, tiny_model_and_tokenizer):
    folder = tiny_model_folder
    config = read_json(folder / "config.json")
    assert config["model_type"] == "medeir"
    assert config["auto_map"]["AutoModel"] == "modeling_medeir.MedEIRModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_medeir.MedEIRConfig"
    assert config["dtype"] == "float32"
    assert (folder / "modeling_medeir.py").is_file() and (folder / "configuration_medeir.py").is_file()

    modules = read_json(folder / "modules.json")
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    assert read_json(folder / "sentence_bert_config.json") == {"max_seq_length": 8192, "do_lower_case": False}
    pooling = read_json(folder / "1_Pooling" / "config.json")
    assert pooling["word_embedding_dimension"] == 32 and pooling["pooling_mode_mean_tokens"] is True
    assert not any(v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    st_config = read_json(folder / "config_sentence_transformers.json")
    assert st_config["prompts"] == TINY_PROMPTS
    assert st_config["default_prompt_name"] is None and st_config["similarity_fn_name"] == "cosine"
    tokenizer_config = read_json(folder / "tokenizer_config.json")
    assert tokenizer_config["model_max_length"] == 8192
    assert not {"is_local", "local_files_only"} & set(tokenizer_config)


def test_weights_are_float16_shards_that_cover_every_tensor(tiny_model_folder, tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    index = read_json(tiny_model_folder / "model.safetensors.index.json")
    shards = weight_files(tiny_model_folder)
    assert len(shards) >= 2 and set(index["weight_map"].values()) == set(shards)
    assert set(index["weight_map"]) == set(model.state_dict())
    for shard in shards:
        with safe_open(str(tiny_model_folder / shard), framework="pt") as f:
            assert {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable) == {torch.float16}


def test_sentence_transformers_gives_the_embedder_and_model_encode_embeddings(tiny_model_folder, st_model, embedder):
    assert st_model.max_seq_length == 8192
    assert next(st_model.parameters()).dtype == torch.float32
    expected = embedder.encode(TEXTS)
    np.testing.assert_allclose(st_model.encode(TEXTS), expected, atol=1e-5)
    model = load_model(tiny_model_folder, device="cpu")
    np.testing.assert_allclose(model.encode(TEXTS, tokenizer=embedder.tokenizer), expected, atol=1e-5)

    queries, documents = st_model.encode_query(TEXTS), st_model.encode_document(TEXTS)
    np.testing.assert_allclose(queries, embedder.encode_queries(TEXTS), atol=1e-5)
    np.testing.assert_allclose(documents, embedder.encode_documents(TEXTS), atol=1e-5)
    np.testing.assert_allclose(queries, embedder.encode(["query: " + t for t in TEXTS]), atol=1e-5)
    assert np.abs(queries - expected).max() > 1e-3  # the prompt changes the embedding

    similarity = st_model.similarity(queries, documents).numpy()
    np.testing.assert_allclose(similarity, queries @ documents.T, atol=1e-5)


def test_float16_weights_load_as_float32_close_to_the_original(tmp_path, tiny_model_folder, tiny_model_and_tokenizer):
    model, tokenizer = tiny_model_and_tokenizer
    original = model.encode(TEXTS, tokenizer=tokenizer)
    from_half = load_model(tiny_model_folder, device="cpu")
    assert next(from_half.parameters()).dtype == torch.float32
    half_error = np.abs(from_half.encode(TEXTS, tokenizer=tokenizer) - original).max()
    assert 0 < half_error < 1e-2

    full = write_model_folder(model, tokenizer, tmp_path / "fp32", dtype=torch.float32)
    assert weight_files(full) == ["model.safetensors"]
    np.testing.assert_allclose(load_model(full, device="cpu").encode(TEXTS, tokenizer=tokenizer), original, atol=1e-6)


def test_default_prompts_are_empty_and_leave_texts_unchanged(tmp_path, tiny_model_and_tokenizer):
    from sentence_transformers import SentenceTransformer

    folder = write_model_folder(*tiny_model_and_tokenizer, tmp_path / "plain", max_shard_size="100MB")
    assert read_json(folder / "config_sentence_transformers.json")["prompts"] == {"query": "", "document": ""}
    st_model = SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    plain = Embedder(folder, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(st_model.encode_query(TEXTS), plain, atol=1e-5)
    np.testing.assert_allclose(st_model.encode_document(TEXTS), plain, atol=1e-5)


def test_rewriting_a_folder_removes_stale_shards(tmp_path, tiny_model_and_tokenizer):
    folder = write_model_folder(*tiny_model_and_tokenizer, tmp_path / "m", max_shard_size="200KB")
    assert len(weight_files(folder)) == 2
    write_model_folder(*tiny_model_and_tokenizer, folder, max_shard_size="100MB")
    assert weight_files(folder) == ["model.safetensors"]
    assert not (folder / "model.safetensors.index.json").exists()
    assert Embedder(folder, device="cpu").encode(TEXTS).shape == (len(TEXTS), 32)


def test_files_over_the_limit_are_logged(tmp_path, tiny_model_and_tokenizer, monkeypatch, caplog):
    monkeypatch.setattr("medeir.hub.FILE_LIMIT_BYTES", 1_000_000)  # the 2 MB float16 embedding table is over
    with caplog.at_level(logging.WARNING, logger="medeir.hub"):
        write_model_folder(*tiny_model_and_tokenizer, tmp_path / "m", max_shard_size="500KB")
    assert "model-00001-of-" in caplog.text


def test_write_model_folder_rejects_wrong_models_and_out_of_range_weights(tmp_path, tiny_model_and_tokenizer):
    from modeling_medeir import MedEIRForMaskedLM

    model, tokenizer = tiny_model_and_tokenizer
    with pytest.raises(TypeError, match="MedEIRForMaskedLM"):
        write_model_folder(MedEIRForMaskedLM(model.config), tokenizer, tmp_path / "mlm")
    big = type(model)(model.config)
    with torch.no_grad():
        big.layers[0].mlp.up.weight[0, 0] = 1e6
    with pytest.raises(ValueError, match=r"layers\.0\.mlp\.up\.weight.*float16"):
        write_model_folder(big, tokenizer, tmp_path / "big")


def test_refresh_root_installs_a_trained_folder_and_keeps_other_files(tmp_path, tiny_model_and_tokenizer):
    model, tokenizer = tiny_model_and_tokenizer
    trained = tmp_path / "runs" / "final"  # what the training runner writes
    model.save_pretrained(trained)
    tokenizer.save_pretrained(trained)
    root = tmp_path / "root"
    root.mkdir()
    (root / "README.md").write_text("---\nlicense: apache-2.0\n---\n# card\n")
    (root / "model-00001-of-00009.safetensors").write_bytes(b"stale")
    (root / "model.safetensors.index.json").write_text("{}")

    written = refresh_root(trained, root, max_shard_size="1MB")
    assert (root / "README.md").read_text() == "---\nlicense: apache-2.0\n---\n# card\n"
    assert not (root / "model-00001-of-00009.safetensors").exists()
    assert set(weight_files(root)) == set(read_json(root / "model.safetensors.index.json")["weight_map"].values())
    assert {"config.json", "modules.json", "1_Pooling/config.json", "tokenizer.json", "modeling_medeir.py"} <= set(
        written)
    assert read_json(root / "config_sentence_transformers.json")["prompts"] == {"query": "", "document": ""}
    error = np.abs(Embedder(root, device="cpu").encode(TEXTS) - model.encode(TEXTS, tokenizer=tokenizer)).max()
    assert error < 1e-2


def test_refresh_root_keeps_the_prompts_of_the_trained_folder(tmp_path, tiny_model_folder):
    root = tmp_path / "root"
    root.mkdir()
    refresh_root(tiny_model_folder, root)
    assert read_json(root / "config_sentence_transformers.json")["prompts"] == TINY_PROMPTS


@pytest.fixture
def shifted_folders(tmp_path, tiny_model_and_tokenizer) -> list[Path]:
    """Two model folders: the tiny model (with its tokenizer) and a copy with every float weight 1.0 higher."""
    from modeling_medeir import MedEIRModel

    model, tokenizer = tiny_model_and_tokenizer
    shifted = MedEIRModel(model.config).eval()
    shifted.load_state_dict({k: v + 1.0 if v.is_floating_point() else v for k, v in model.state_dict().items()})
    folders = [tmp_path / "a", tmp_path / "b"]
    model.save_pretrained(folders[0])
    tokenizer.save_pretrained(folders[0])
    shifted.save_pretrained(folders[1])
    return folders


def test_average_models_is_the_mean_of_float_weights(tmp_path, tiny_model_and_tokenizer, shifted_folders):
    from modeling_medeir import MedEIRModel

    model, tokenizer = tiny_model_and_tokenizer
    folders = shifted_folders
    averaged = MedEIRModel.from_pretrained(str(average_models(folders, tmp_path / "avg")), dtype=torch.float32)
    for name, tensor in averaged.state_dict().items():
        expected = model.state_dict()[name]
        if expected.is_floating_point():
            torch.testing.assert_close(tensor, expected + 0.5)
        else:
            assert torch.equal(tensor, expected), name
    assert (tmp_path / "avg" / "tokenizer.json").is_file()
    assert read_json(tmp_path / "avg" / "config_sentence_transformers.json")["prompts"] == {"query": "",
                                                                                           "document": ""}
    tokenizer.save_pretrained(folders[1])
    write_sentence_transformers_files(folders[1], dim=model.config.hidden_size, max_seq_length=64,
                                      prompts=TINY_PROMPTS)
    reordered = average_models(folders[::-1], tmp_path / "avg2")  # the first folder's prompts are kept
    assert read_json(reordered / "config_sentence_transformers.json")["prompts"] == TINY_PROMPTS

    smaller = MedEIRModel(type(model.config)(**{**model.config.to_dict(), "intermediate_size": 16}))
    smaller.save_pretrained(tmp_path / "c")
    with pytest.raises(ValueError, match=r"mlp\.up\.weight is \(16, 32\), expected \(64, 32\)"):
        average_models([folders[0], tmp_path / "c"], tmp_path / "bad")
    with pytest.raises(ValueError, match="at least two"):
        average_models(folders[:1], tmp_path / "bad")


def test_weighted_average_takes_each_folder_by_its_share(tmp_path, tiny_model_and_tokenizer, shifted_folders):
    from modeling_medeir import MedEIRModel

    model, _ = tiny_model_and_tokenizer
    folders = shifted_folders
    weighted = average_models(folders, tmp_path / "avg", weights=[3, 1])  # 3/4 of a, 1/4 of b = a + 0.25
    for name, tensor in MedEIRModel.from_pretrained(str(weighted), dtype=torch.float32).state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, model.state_dict()[name] + 0.25)
    for bad in ([1.0], [1.0, 0.0], [1.0, -2.0], [1.0, float("nan")], [True, 1.0], ["1", 1.0], [1e308, 1e308]):
        with pytest.raises(ValueError, match="need 2 positive weights"):
            average_models(folders, tmp_path / "bad", weights=bad)


def test_remove_weights_leaves_other_files(tmp_path):
    for name in ("model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                 "config.json", "optimizer.pt"):
        (tmp_path / name).write_text("x")
    removed = remove_weights(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "optimizer.pt"]


def test_resolve_model_path(tmp_path, tiny_model_folder, offline_hub, monkeypatch):
    assert resolve_model_path(None) == DEFAULT_MODEL_PATH
    assert resolve_model_path(str(tiny_model_folder)) == tiny_model_folder
    cache = offline_hub("someone/medeir-tiny", tiny_model_folder)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    resolved = resolve_model_path("someone/medeir-tiny")
    assert resolved.is_relative_to(cache) and (resolved / "modules.json").is_file()
    with pytest.raises(FileNotFoundError, match="no/such/folder"):
        resolve_model_path("no/such/folder")
