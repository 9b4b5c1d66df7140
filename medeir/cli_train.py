"""`medeir train <stage> --config configs/<name>.yaml`: parse, build settings, run one stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def train_command(
    stage: Annotated[str, typer.Argument(help="mlm | contrastive (with a teacher weight > 0 it also distills)")],
    config: Annotated[Path, typer.Option("--config", "-c", help="run config (YAML), e.g. configs/small.yaml")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a field: section.field=value (repeatable)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="resume from the newest checkpoint in output_dir")] = True,
    show: Annotated[
        bool, typer.Option("--show", help="print the settings the run would use (extends and --set applied) and exit")
    ] = False,
) -> None:
    """Train one stage; runs unchanged under `accelerate launch` / `torchrun` for several GPUs or nodes."""
    from medeir.train.settings import load_settings, settings_dict

    settings = load_settings(config, [f"stage={stage}", *(set_ or [])])
    if show:
        typer.echo(json.dumps(settings_dict(settings), indent=2))
        return
    from medeir.train.runner import run

    run(settings, resume=resume)  # it says, from the main process only, where the model went or why it stopped


def mine_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="contrastive run config whose pair_files to mine")],
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder that ranks the candidates")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for the mined copies (a run's data_dir)")],
    data: Annotated[
        Path | None, typer.Option("--data", help="folder the pair files are read from [default: the config's data_dir]")
    ] = None,
    depth: Annotated[int, typer.Option(help="candidates considered per query (the most similar ones)")] = 30,
    max_ratio: Annotated[
        float, typer.Option(help="skip candidates scoring at least this fraction of the positive's similarity")
    ] = 0.95,
) -> None:
    """Add one mined hard negative to every query/positive record of a config's pair files (record order kept)."""
    from medeir.train.mining import mine_negatives
    from medeir.train.settings import load_settings

    settings = load_settings(config, ["stage=contrastive"])
    c = settings.contrastive
    stats = mine_negatives(
        model,
        data or settings.data_dir,
        list(c.pair_files),
        output,
        query_max_length=c.query_max_length,
        passage_max_length=c.passage_max_length,
        depth=depth,
        max_ratio=max_ratio,
    )
    for name, s in stats.items():
        typer.echo(f"{name}: {s.mined} of {s.records} records got a negative")
