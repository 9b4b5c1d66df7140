"""The ``medeir`` command line: parsing and printing only; every command calls one library function.

Expected failures (missing or unreadable files, bad input, bad settings) end with one line ``error: <message>`` on
stderr and exit code 1, without a traceback.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from .cli_bench import bench_command
from .cli_eval import eval_card_command, eval_command
from .cli_tokenizer import tokenizer_app
from .cli_train import mine_command, train_command
from .extras import MissingExtraError

EXPECTED_ERRORS = (OSError, ValueError, TypeError, MissingExtraError)
SNIPPET_CHARS = 240


def error_message(err: Exception) -> str:
    """One line: ``file: reason`` for OS errors, the message otherwise."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


class MedEIRGroup(TyperGroup):
    """Turns expected exceptions from any sub-command into ``error: ...`` and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as err:
            typer.echo(f"error: {error_message(err)}", err=True)
            raise typer.Exit(1) from err


app = typer.Typer(
    cls=MedEIRGroup,
    help="MedEIR: a long-context medical text-embedding model. Embed texts, build and search an index, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _StderrHandler(logging.StreamHandler):
    """``warning: <message>`` lines on the current stderr."""

    def __init__(self):
        super().__init__(sys.stderr)

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print info messages.")] = False,
) -> None:
    """Send the library's log messages (e.g. truncated texts) to stderr; `medeir eval` configures its own."""
    logger = logging.getLogger("medeir")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    if ctx.invoked_subcommand == "eval":
        return
    handler = _StderrHandler()
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.NOTSET)


class Dtype(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Prompt(str, Enum):
    query = "query"
    document = "document"
    none = "none"


def path_option(*names: str, text: str):
    """A path option that the library checks (so problems get one-line errors), not click."""
    return typer.Option(*names, help=text, readable=False, show_default=False)


def path_argument(text: str, **kwargs):
    return typer.Argument(help=text, readable=False, show_default=False, **kwargs)


ModelOption = Annotated[Path | None, path_option("--model", "-m", text="Model folder. Default: the shipped model.")]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda or cuda:N.")]
DtypeOption = Annotated[Dtype, typer.Option(help="Weights and compute precision.")]
BatchOption = Annotated[int, typer.Option(min=1, help="Texts per forward pass.")]
TopKOption = Annotated[int, typer.Option("--top-k", "-k", min=1, help="Number of documents to show.")]


def _quiet_transformers() -> None:
    """No weight-loading progress bars from transformers on every command."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _print_hits(hits) -> None:
    if not hits:
        typer.echo("no results")
    for rank, hit in enumerate(hits, start=1):
        heading = f"{rank:>2}. {hit.score:.4f}  {hit.title or hit.doc_id}"
        typer.echo(heading)
        where = f"source: {hit.source}" + (f" · id: {hit.doc_id}" if hit.doc_id != hit.source else "")
        if hit.chunks > 1:
            where += f" · part {hit.chunk + 1} of {hit.chunks}"
        typer.echo(f"    {where}")
        snippet = " ".join(hit.text.split())
        typer.echo(f"    {snippet[:SNIPPET_CHARS]}{'…' if len(snippet) > SNIPPET_CHARS else ''}")


@app.command("embed")
def embed(
    input_path: Annotated[Path, path_argument("Texts: .txt (one per line), .jsonl or .csv.", metavar="INPUT")],
    output: Annotated[
        Path | None,
        path_option("--output", "-o", text="Output .npy (+ .ids.json), .jsonl or .parquet. Default: INPUT with .npy."),
    ] = None,
    field: Annotated[str, typer.Option(help="JSON-lines field / CSV column holding the text.")] = "text",
    id_field: Annotated[
        str | None, typer.Option(help="Field / column holding ids (every record needs one). Default: line numbers.")
    ] = None,
    prompt: Annotated[Prompt, typer.Option(help="Which of the model's prompts to prepend.")] = Prompt.document,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.float32,
    batch_size: BatchOption = 32,
    max_length: Annotated[
        int | None, typer.Option(min=1, help="Truncate texts to this many tokens. Default: the model's context.")
    ] = None,
) -> None:
    """Embed every text of a file (L2-normalised float32 vectors); shows a progress bar with texts/s."""
    from .embed_file import embed_file

    _quiet_transformers()
    report = embed_file(input_path, output, field=field, id_field=id_field, prompt=prompt.value, model=model,
                        device=device, dtype=dtype.value, batch_size=batch_size, max_length=max_length,
                        show_progress=True)
    typer.echo(f"embedded {report.count} texts (dim {report.dim}) in {report.seconds:.1f}s "
               f"({report.texts_per_second:.1f} texts/s): {', '.join(str(f) for f in report.files)}")


@app.command("index")
def index(
    docs: Annotated[Path, path_argument("A folder of .txt/.md files (one document each) or a .jsonl file.")],
    index_dir: Annotated[Path, path_option("--index", "-i", text="Index folder (created, or added to).")],
    text_field: Annotated[str, typer.Option(help="JSON-lines field holding the text.")] = "text",
    id_field: Annotated[
        str | None,
        typer.Option(help="JSON-lines field holding the id (every record needs one). Default: 'id', else FILE:LINE."),
    ] = None,
    title_field: Annotated[str, typer.Option(help="JSON-lines field holding the title (optional).")] = "title",
    model: ModelOption = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.float32,
    batch_size: BatchOption = 32,
    max_length: Annotated[
        int | None, typer.Option(min=1, help="Chunk length in tokens. Default: the model's context.")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(min=0, help="Tokens shared by consecutive chunks. Default: min(64, max_length/4).")
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Replace the index instead of adding to it.")] = False,
) -> None:
    """Add documents to an index (same id: replaced). Documents longer than the context are split into chunks."""
    from .documents import load_documents
    from .index import add_documents

    _quiet_transformers()
    documents = load_documents(docs, text_field=text_field, id_field=id_field, title_field=title_field)
    report = add_documents(documents, index_dir, model=model, device=device, dtype=dtype.value, batch_size=batch_size,
                           max_length=max_length, overlap=overlap, origin=str(docs.resolve()), rebuild=rebuild,
                           show_progress=True)
    typer.echo(f"indexed {report.added} new and {report.replaced} replaced documents ({report.chunks_added} chunks) "
               f"in {report.seconds:.1f}s; {report.index_dir} now holds {report.documents} documents, "
               f"{report.chunks} chunks")


@app.command("search")
def search(
    index_dir: Annotated[Path, path_option("--index", "-i", text="Index folder written by `medeir index`.")],
    question: Annotated[
        str | None, typer.Argument(help="The question. Without one: ask questions interactively.")
    ] = None,
    top_k: TopKOption = 5,
    model: Annotated[
        Path | None, path_option("--model", "-m", text="Model folder. Default: the one the index was built with.")
    ] = None,
    device: DeviceOption = "auto",
    hybrid: Annotated[
        bool,
        typer.Option(help="Fuse the model's ranking with BM25's (reciprocal rank fusion; the score is then the fused "
                          "one). Needs pip install 'medeir[hybrid]'."),
    ] = False,
) -> None:
    """Search an index: top-k documents with score, source and a snippet (long questions are truncated)."""
    from .index import Searcher

    _quiet_transformers()
    searcher = Searcher(index_dir, model=model, device=device, hybrid=hybrid)
    if question is not None:
        _print_hits(searcher.search(question, top_k))
        return
    typer.echo("Type a question and press Enter; an empty line or Ctrl-D ends.", err=True)
    while True:
        typer.echo("question> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line.strip():
            break
        _print_hits(searcher.search(line.strip(), top_k))


@app.command("demo")
def demo(
    question: Annotated[str | None, typer.Argument(help="Question to ask. Default: a question about diabetes.")] = None,
    top_k: TopKOption = 5,
    model: ModelOption = None,
    index_dir: Annotated[
        Path | None,
        path_option("--index", "-i", text="Where to cache the demo index. Default: ~/.cache/medeir/demo-index."),
    ] = None,
    device: DeviceOption = "auto",
    batch_size: BatchOption = 32,
) -> None:
    """Semantic search over 300 bundled MedQuAD answers with the shipped model (index built once, then reused)."""
    from .demo import ATTRIBUTION, DEMO_QUESTION, run_demo

    _quiet_transformers()
    result = run_demo(question or DEMO_QUESTION, model=model, index_dir=index_dir, top_k=top_k, device=device,
                      batch_size=batch_size, show_progress=True)
    built = result.built
    status = f"built in {built.seconds:.1f}s ({built.documents} documents)" if built else "reused"
    typer.echo(f"Index: {result.index_dir} ({status})")
    typer.echo(f"Question: {result.question}\n")
    _print_hits(result.hits)
    typer.echo(f"\n{ATTRIBUTION}")


@app.command("info")
def info(model: ModelOption = None, device: DeviceOption = "auto") -> None:
    """Model path, size, dimensions, context length, tokenizer, prompts and the attention backends usable here."""
    from .info import model_info

    _quiet_transformers()
    for key, value in model_info(model, device=device).items():
        if isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v!r}" for k, v in value.items()) or "none"
        elif isinstance(value, int):
            value = f"{value:,}"
        typer.echo(f"{key}: {value}")


app.add_typer(tokenizer_app, name="tokenizer")
app.command("eval")(eval_command)
app.command("eval-card")(eval_card_command)
app.command("train")(train_command)
app.command("mine-negatives")(mine_command)
app.command("bench")(bench_command)
