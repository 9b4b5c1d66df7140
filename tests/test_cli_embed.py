"""`medeir embed` through the real CLI (typer's CliRunner): inputs, outputs, prompts, truncation."""

import json
import os
import sys

import numpy as np
import pytest
from eval_helpers import make_tiny_medeir
from typer.testing import CliRunner

from medeir.cli import app
from medeir.embed_file import ids_path, write_embeddings
from medeir.encode import Embedder

os.environ["HF_HUB_OFFLINE"] = "1"
TEXTS = ["Insulin lowers blood glucose.", "Asthma is treated with inhaled steroids.", "A fall can fracture the wrist."]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_medeir(tmp_path_factory.mktemp("tiny-embed"))


@pytest.fixture(scope="module")
def embedder(tiny_folder):
    return Embedder(tiny_folder, device="cpu")


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_text_lines_to_npy_with_ids_sidecar(tmp_path, tiny_folder, embedder):
    source = tmp_path / "notes.txt"
    source.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n{TEXTS[2]}\n", encoding="utf-8")
    result = run("embed", source, "--model", tiny_folder, "--device", "cpu", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("embedded 3 texts (dim 32) in ")
    assert "texts/s" in result.stdout and "text/s" in result.stderr  # summary + tqdm's throughput
    vectors = np.load(tmp_path / "notes.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 32)
    np.testing.assert_allclose(vectors, embedder.encode_documents(TEXTS), atol=1e-5)  # default prompt: document
    assert json.loads((tmp_path / "notes.ids.json").read_text()) == ["1", "3", "4"]


def test_jsonl_fields_to_jsonl_with_the_query_prompt(tmp_path, tiny_folder, embedder):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"key": f"k{i}", "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    result = run("embed", source, "-o", tmp_path / "out.jsonl", "--field", "body", "--id-field", "key",
                 "--prompt", "query", "--model", tiny_folder, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["k0", "k1", "k2"]
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), embedder.encode_queries(TEXTS), atol=1e-5)


def test_csv_to_parquet_without_a_prompt(tmp_path, tiny_folder, embedder):
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "in.csv"
    source.write_text("id,sentence\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(TEXTS)), encoding="utf-8")
    result = run("embed", source, "-o", tmp_path / "out.parquet", "--field", "sentence", "--id-field", "id",
                 "--prompt", "none", "--model", tiny_folder, "--device", "cpu")
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == ["0", "1", "2"]
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(vectors, embedder.encode(TEXTS), atol=1e-5)
    assert not np.allclose(vectors, embedder.encode_documents(TEXTS), atol=1e-3)  # the prompt matters


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, tiny_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    source = tmp_path / "in.txt"
    source.write_text("text\n", encoding="utf-8")
    result = run("embed", source, "-o", tmp_path / "out.parquet", "--model", tiny_folder)
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'out.parquet'}: .parquet needs pyarrow (pip install pyarrow); " \
                            "or write .npy/.jsonl\n"
    assert not (tmp_path / "out.parquet").exists()


def test_unsupported_output_type_and_missing_output_folder(tmp_path, tiny_folder):
    source = tmp_path / "in.txt"
    source.write_text("text\n", encoding="utf-8")
    result = run("embed", source, "-o", tmp_path / "out.csv", "--model", tiny_folder)
    assert result.exit_code == 1 and "unsupported output type '.csv'; use .npy, .jsonl, .parquet" in result.stderr
    result = run("embed", source, "-o", tmp_path / "nowhere" / "out.npy", "--model", tiny_folder)
    assert result.exit_code == 1 and result.stderr == f"error: {tmp_path / 'nowhere'}: output folder does not exist\n"


def test_an_interrupted_npy_write_never_leaves_the_previous_ids(tmp_path, monkeypatch):
    output = tmp_path / "out.npy"
    write_embeddings(output, ["a", "b"], np.eye(2, dtype=np.float32))

    def crash(*args, **kwargs):
        raise RuntimeError("simulated kill between the .npy and the .ids.json")

    monkeypatch.setattr("medeir.embed_file.json.dump", crash)
    with pytest.raises(RuntimeError, match="simulated kill"):
        write_embeddings(output, ["c", "d"], np.ones((2, 2), dtype=np.float32))
    assert np.load(output).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert not ids_path(output).exists()  # no ids rather than the previous run's ids


def test_max_length_truncates_with_a_warning(tmp_path, tiny_folder):
    source = tmp_path / "in.txt"
    long_text = "insulin " * 20
    seven_tokens = "a,b,c,d"  # 7 characters, 7 tokens + [CLS] and [SEP]: over 8 tokens although under 8 characters
    source.write_text(f"{long_text}\nshort\n{seven_tokens}\n", encoding="utf-8")
    result = run("embed", source, "--max-length", "8", "--model", tiny_folder, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "warning: 2 text(s) exceed 8 tokens and were truncated" in result.stderr
    expected = Embedder(tiny_folder, device="cpu", max_length=8).encode_documents([long_text, "short", seven_tokens])
    np.testing.assert_allclose(np.load(tmp_path / "in.npy"), expected, atol=1e-5)
    assert run("embed", source, "--max-length", "500", "--model", tiny_folder).stderr == \
        "error: max_length must be in [1, 128], got 500\n"
