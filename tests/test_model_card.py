"""The root README.md is the Hub model card: its front matter parses with huggingface_hub, and its usage snippets run.

Convention for snippets: a fenced block whose opening line is exactly ```python and that is preceded by the line
``<!-- test: run -->`` (blank lines may sit between) is executed, each in its own Python process, offline. A quoted Hub
id whose name contains "medeir" (e.g. "owner/medeir-small") resolves to the repository root through a local Hub
cache, so snippets can be written exactly as Hub users will run them.
"""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
MARKER = "<!-- test: run -->"
HUB_ID = re.compile(r"""["']([A-Za-z0-9][\w.-]*/[\w.-]*medeir[\w.-]*)["']""", re.IGNORECASE)


def runnable_blocks(markdown: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, code) of every block marked to run; ValueError for a marker that is not
    followed by a ```python block, so that a typo cannot silently drop a snippet."""
    lines = markdown.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start == len(lines) or lines[start] != "```python":
            raise ValueError(f"line {i + 1}: {MARKER} must be followed by a line that is exactly ```python")
        end = next((j for j in range(start + 1, len(lines)) if lines[j] == "```"), None)
        if end is None:
            raise ValueError(f"line {start + 1}: the ```python block is never closed")
        blocks.append((start + 1, "\n".join(lines[start + 1 : end]) + "\n"))
    return blocks


BLOCKS = runnable_blocks(README.read_text(encoding="utf-8")) if README.is_file() else []


def test_runnable_blocks_are_found_by_the_marker_only():
    text = "\n".join([
        "# Usage", MARKER, "```python", "print(1)", "```",
        "```python", "not marked", "```",
        MARKER, "", "```python", "import os", "print(2)", "```",
        "```bash", "pip install medeir", "```",
    ])
    assert runnable_blocks(text) == [(3, "print(1)\n"), (11, "import os\nprint(2)\n")]
    with pytest.raises(ValueError, match="line 1: .* exactly ```python"):
        runnable_blocks(MARKER + "\n```py\nprint(1)\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        runnable_blocks(MARKER + "\n```python\nprint(1)\n")


@pytest.fixture(scope="module")
def metadata():
    from huggingface_hub import metadata_load

    assert README.is_file(), "README.md, the model card, is missing at the repository root"
    data = metadata_load(README)
    assert data, "README.md has no YAML front matter"
    return data


def test_front_matter_declares_a_sentence_transformers_similarity_model(metadata):
    assert metadata["pipeline_tag"] == "sentence-similarity"
    assert metadata["library_name"] == "sentence-transformers"
    assert isinstance(metadata["license"], str) and metadata["license"]
    assert {"sentence-transformers", "feature-extraction"} <= set(metadata["tags"])


def test_widget_compares_a_sentence_with_several(metadata):
    widget = metadata["widget"]
    assert isinstance(widget, list) and widget
    for example in widget:
        assert isinstance(example["source_sentence"], str) and example["source_sentence"].strip()
        assert len(example["sentences"]) >= 2 and all(isinstance(s, str) and s.strip() for s in example["sentences"])


def test_model_index_parses_into_eval_results(metadata):
    from huggingface_hub import ModelCard

    if "model-index" not in metadata:
        pytest.skip("README.md has no model-index yet")
    card = ModelCard.load(README)  # raises on a malformed model-index
    results = card.data.eval_results
    assert results and len(results) == sum(
        len(r["metrics"]) for entry in metadata["model-index"] for r in entry["results"])
    assert all(isinstance(r.metric_value, (int, float)) and r.task_type and r.dataset_type for r in results)


def test_every_framework_has_a_runnable_snippet(metadata):
    code = "\n".join(block for _, block in BLOCKS)
    for module in ("transformers", "sentence_transformers", "llama_index.embeddings.medeir",
                   "haystack_integrations.components.embedders.medeir"):
        assert re.search(rf"^\s*(from|import) {re.escape(module)}\b", code, re.MULTILINE), f"no snippet uses {module}"


@pytest.mark.slow
@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_snippet_runs(line, code, shipped_model_folder, offline_hub, tmp_path):
    cache = tmp_path / "no-hub-ids"
    for repo_id in sorted(set(HUB_ID.findall(code))):
        cache = offline_hub(repo_id, shipped_model_folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    script = tmp_path / f"readme_line{line}.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"README.md snippet at line {line} failed:\n{done.stdout}\n{done.stderr}"
