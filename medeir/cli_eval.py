"""`medeir eval` and `medeir eval-card`: parsing only; the work is in medeir.evaluation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

TASK_HELP = "Task to run (repeatable): retrieval, rerank, hybrid, sts, pairs, clustering. Default: all."
BASELINE_HELP = "Baseline to add (repeatable): minilm, bm25, or 'none'. Default: minilm and bm25."


def eval_command(
    model: Annotated[
        str | None, typer.Option(help="MedEIR model folder, or 'minilm'. Default: the shipped model.")
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(help="BEIR folder (repeatable). Default: staged scifact, medicalqa-approx, nfcorpus-degraded."),
    ] = None,
    baseline: Annotated[list[str] | None, typer.Option(help=BASELINE_HELP)] = None,
    task: Annotated[list[str] | None, typer.Option(help=TASK_HELP)] = None,
    output: Annotated[Path, typer.Option(help="Folder for the JSON results and results.md.")] = Path(
        "runs/eval/latest"
    ),
    sts_file: Annotated[Path | None, typer.Option(help="STS JSON lines (sentence1, sentence2, score).")] = None,
    mqp_file: Annotated[Path | None, typer.Option(help="mqp_pairs.jsonl.gz (held-out records are evaluated).")] = None,
    medquad_file: Annotated[Path | None, typer.Option(help="medquad_pairs.jsonl.gz (clustering sample).")] = None,
    device: Annotated[str, typer.Option(help="auto (GPU if present), cpu, cuda, cuda:1, ...")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    max_length: Annotated[int | None, typer.Option(help="Truncate inputs to this many tokens.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the model in the results.")] = None,
    model_card: Annotated[
        Path | None, typer.Option(help="README.md whose model-index gets this model's results.")
    ] = None,
) -> None:
    """Evaluate a model and baselines on retrieval, re-ranking, hybrid (BM25 + model), STS, medical pairs and
    clustering."""
    from medeir.evaluation import data_paths
    from medeir.evaluation.model_card import update_model_index
    from medeir.evaluation.runner import BASELINES, TASKS, run_eval

    logger = logging.getLogger("medeir")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    baselines = list(BASELINES) if baseline is None else [b for b in baseline if b != "none"]
    try:
        summary = run_eval(
            model,
            data or data_paths.BEIR_DIRS,
            baselines,
            output,
            task or TASKS,
            sts_file=sts_file or data_paths.STS_FILE,
            mqp_file=mqp_file or data_paths.MQP_FILE,
            medquad_file=medquad_file or data_paths.MEDQUAD_FILE,
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            model_name=name,
        )
    except (FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo((output / "results.md").read_text())
    if model_card is not None:
        try:
            update_model_index(model_card, summary["results"], summary["model"])
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
        typer.echo(f"updated model-index in {model_card}")


def eval_card_command(
    results: Annotated[Path, typer.Argument(help="results.json written by `medeir eval`.")],
    model_card: Annotated[Path, typer.Option(help="README.md to update.")] = Path("README.md"),
    name: Annotated[str | None, typer.Option(help="Model whose results go in. Default: the evaluated model.")] = None,
) -> None:
    """Write a run's results into a model card's model-index metadata (other keys and the body are kept)."""
    from medeir.evaluation.model_card import update_model_index_from_file

    update_model_index_from_file(model_card, results, name)
    typer.echo(f"updated model-index in {model_card}")
