"""`medeir train <stage> --config configs/<name>.yaml`: parse, build settings, run one stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_command(
    stage: Annotated[str, typer.Argument(help="mlm | contrastive (with distill_weight > 0 it also distills)")],
    config: Annotated[Path, typer.Option("--config", "-c", help="run config (YAML), e.g. configs/small.yaml")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a field: section.field=value (repeatable)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="resume from the newest checkpoint in output_dir")] = True,
) -> None:
    """Train one stage; runs unchanged under `accelerate launch` / `torchrun` for several GPUs or nodes."""
    from medeir.train.runner import run
    from medeir.train.settings import load_settings

    settings = load_settings(config, [f"stage={stage}", *(set_ or [])])
    final = run(settings, resume=resume)
    typer.echo(f"final model: {final}" if final.is_dir() else "stopped before the last step; run again to resume")
