"""`medeir train <stage> --config configs/<name>.yaml`: parse, build settings, run one stage."""

from __future__ import annotations

from pathlib import Path

import typer


def train_command(
    stage: str = typer.Argument(..., help="mlm | contrastive (contrastive with distill_weight > 0 also distills)"),
    config: Path = typer.Option(..., "--config", "-c", help="run config (YAML), e.g. configs/small.yaml"),
    set_: list[str] = typer.Option([], "--set", help="override a field: section.field=value (repeatable)"),
    resume: bool = typer.Option(True, help="resume from the newest checkpoint in output_dir"),
) -> None:
    """Train one stage; runs unchanged under `accelerate launch` / `torchrun` for several GPUs or nodes."""
    from medeir.train.runner import run
    from medeir.train.settings import load_settings

    settings = load_settings(config, [f"stage={stage}", *set_])
    final = run(settings, resume=resume)
    typer.echo(f"final model: {final}" if final.is_dir() else "stopped before the last step; run again to resume")
