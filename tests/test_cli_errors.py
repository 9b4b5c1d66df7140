"""Bad input through the real CLI: one line `error: ...` naming the file (and line) on stderr, exit code 1, no
traceback."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import make_tiny_medeir
from typer.testing import CliRunner

from medeir.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_medeir(tmp_path_factory.mktemp("tiny-errors"))


def fails(*args) -> str:
    """Run the CLI, check it failed cleanly, return the error line."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.rstrip("\n")


def test_missing_paths(tmp_path, tiny_folder):
    missing = tmp_path / "missing.jsonl"
    assert fails("embed", missing, "--model", tiny_folder) == f"error: {missing}: no such file or directory"
    assert fails("index", missing, "--index", tmp_path / "idx") == f"error: {missing}: no such file or directory"
    assert fails("search", "--index", tmp_path / "nope", "q") == f"error: {tmp_path / 'nope'}: no such index folder"
    assert fails("search", "--index", tmp_path, "q") == f"error: {tmp_path} is not a MedEIR index: it has no " \
                                                        "manifest.json"


def test_unreadable_file(tmp_path):
    """Run as a process without the capability to bypass file permissions (root has it), on a mode-000 file."""
    path = tmp_path / "secret.txt"
    path.write_text("private\n", encoding="utf-8")
    path.chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv is missing: cannot make a file unreadable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    result = subprocess.run([*prefix, sys.executable, "-m", "medeir", "embed", str(path)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=600)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"error: {path}: Permission denied\n"


def test_invalid_utf8_names_file_and_line(tmp_path, tiny_folder):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"fine\nalso fine\nna\xefve caf\xe9\n")
    assert fails("embed", path, "--model", tiny_folder) == \
        f"error: {path}:3: invalid UTF-8 (invalid continuation byte); convert the file to UTF-8 first"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("fine", encoding="utf-8")
    (docs / "bad.txt").write_bytes(b"line one\n\xff\n")
    assert fails("index", docs, "--index", tmp_path / "idx") == \
        f"error: {docs / 'bad.txt'}:2: invalid UTF-8 (invalid start byte); convert the file to UTF-8 first"
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    assert fails("index", jsonl, "--index", tmp_path / "idx").startswith(f"error: {jsonl}:2: invalid UTF-8")


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + '\n{"text": "two",}\n', encoding="utf-8")
    assert fails("index", path, "--index", tmp_path / "idx") == \
        f"error: {path}:2: invalid JSON (Expecting property name enclosed in double quotes)"
    assert fails("embed", path).startswith(f"error: {path}:2: invalid JSON")


def test_empty_corpus(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert fails("index", empty, "--index", tmp_path / "idx") == f"error: {empty}: no documents with text (empty " \
                                                                 "corpus)"
    folder = tmp_path / "folder"
    folder.mkdir()
    assert fails("index", folder, "--index", tmp_path / "idx") == f"error: {folder}: no .txt or .md file with text " \
                                                                  "(empty corpus)"
    assert fails("embed", empty) == f"error: {empty}: no texts found (empty input)"


def test_model_folder_with_missing_or_corrupt_files(tmp_path, tiny_folder):
    source = tmp_path / "in.txt"
    source.write_text("text\n", encoding="utf-8")
    no_weights = shutil.copytree(tiny_folder, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    assert fails("embed", source, "--model", no_weights) == f"error: model folder {no_weights} has no weights: " \
                                                            "expected model.safetensors or model.safetensors.index.json"
    corrupt = shutil.copytree(tiny_folder, tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage" * 8)
    assert fails("info", "--model", corrupt).startswith(
        f"error: could not load the model in {corrupt} (weights: model.safetensors): ")
    no_tokenizer = shutil.copytree(tiny_folder, tmp_path / "no-tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    assert fails("embed", source, "--model", no_tokenizer) == f"error: model folder {no_tokenizer} has no " \
                                                              "tokenizer.json"
    assert fails("demo", "--model", tmp_path / "absent") == f"error: model folder not found: {tmp_path / 'absent'}"


def test_bad_settings(tmp_path, tiny_folder):
    source = tmp_path / "in.txt"
    source.write_text("text\n", encoding="utf-8")
    assert fails("embed", source, "--model", tiny_folder, "--device", "tpu") == \
        "error: unknown device 'tpu': use auto, cpu, cuda or cuda:N"
    assert fails("embed", source, "--model", tiny_folder, "--max-length", "129") == \
        "error: max_length must be in [1, 128], got 129"
