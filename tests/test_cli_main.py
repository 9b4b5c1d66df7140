"""The `medeir` entry point: --help everywhere, the console script, and the README's two Quick start commands (the
first one's `medeir demo` is run for real, in a subprocess, with a tiny model)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from medeir.cli import app
from medeir.demo import ATTRIBUTION, DEMO_QUESTION

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["demo", "embed", "eval", "eval-card", "index", "info", "search", "tokenizer", "train"]


def test_every_command_has_help():
    group = get_command(app)
    assert set(COMMANDS) <= set(group.commands)
    runner = CliRunner()
    for args in [[], *([name] for name in group.commands), ["tokenizer", "train"], ["tokenizer", "report"]]:
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage: " in result.stdout and "--help" in result.stdout


def test_console_script_is_the_typer_app():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '[project.scripts]\nmedeir = "medeir.cli:app"\n' in pyproject


# the package, its test extras and the two integration packages, editable
INSTALL = 'pip install -e ".[test]" -e integrations/llama-index-embeddings-medeir -e integrations/medeir-haystack'


def quick_start_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    setup, tests = quick_start_commands()
    steps = setup.split(" && ")
    assert steps[0] == "python3 -m venv .venv" and steps[-1] == "medeir demo"
    assert steps.index("pip install torch==2.13.0") < steps.index(INSTALL)
    assert tests == ". .venv/bin/activate && python -m pytest -q"
    ci = REPO_ROOT / ".ci" / "run"
    if not ci.is_file():
        pytest.skip(".ci/run is not there yet")
    lines = [line.strip() for line in ci.read_text().splitlines()]
    assert any(line.startswith("python -m pytest -q") for line in lines)
    torch_line = next(i for i, line in enumerate(lines) if "pip install torch==2.13.0" in line)
    assert torch_line < lines.index(f"python -m {INSTALL}")


@pytest.mark.slow
def test_medeir_demo_runs_end_to_end_in_a_fresh_process(tiny_model_folder, tmp_path):
    """`medeir demo` as the README runs it (default cache location), with a tiny model instead of the shipped one."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "medeir", "demo", "--model", str(tiny_model_folder)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    index_dir = tmp_path / "cache" / "medeir" / "demo-index"
    assert f"Index: {index_dir} (built in " in done.stdout and (index_dir / "manifest.json").is_file()
    assert f"Question: {DEMO_QUESTION}" in done.stdout and done.stdout.rstrip().endswith(ATTRIBUTION)
    ranks = re.findall(r"^ *(\d+)\. (\d\.\d{4}|-\d\.\d{4})  ", done.stdout, re.MULTILINE)
    assert [int(rank) for rank, _ in ranks] == [1, 2, 3, 4, 5]
    assert done.stdout.count("source: medquad/") == 5
    assert "text/s" in done.stderr and "Traceback" not in done.stderr
