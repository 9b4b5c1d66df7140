"""How finely tokenizers split held-out text: fertility, share of words cut into >= 3 pieces, characters per token.

A "word" is a maximal run of non-whitespace characters (``str.split``); every token (special tokens excluded) is
assigned to the word its first character falls in, so punctuation attached to a word counts as one of its pieces.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, models

from .evaluation.beir_data import document_text, read_jsonl
from .tokenizer import build_tokenizer, iter_lines

LONG_SPLIT = 3  # a word cut into at least this many pieces counts as "shattered"
_WORD = re.compile(r"\S+")

# Held-out text (never used to train a tokenizer): name -> (domain, files relative to the data folder).
HELD_OUT_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "scifact": ("medical", ("eval/scifact/corpus.jsonl",)),
    "medicalqa": ("medical", ("eval/medicalqa-approx/corpus.jsonl",)),
    "nfcorpus-lc": ("medical", ("eval/nfcorpus-degraded/corpus.jsonl",)),
    "stsb-test": ("general", ("eval/stsb/test.jsonl",)),
    "stsb-train+dev": ("general", ("train/stsb_train.jsonl", "train/stsb_dev.jsonl")),
}


@dataclass(frozen=True)
class SplitStats:
    """Word, token and character counts of one tokenizer on one text set."""

    words: int
    tokens: int
    chars: int  # non-whitespace characters
    shattered: int  # words cut into >= LONG_SPLIT tokens
    unknown: int  # unknown-token ([UNK]) tokens: a word with one unseen character becomes a single [UNK]

    def __add__(self, other: SplitStats) -> SplitStats:
        return SplitStats(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))

    @property
    def fertility(self) -> float:
        return self.tokens / self.words

    @property
    def shattered_share(self) -> float:
        return self.shattered / self.words

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens

    @property
    def unknown_share(self) -> float:
        return self.unknown / self.tokens


def iter_texts(path: str | Path) -> Iterator[str]:
    """Texts of a BEIR corpus (title + text), an STS file (each sentence) or a plain/gzip'd line file."""
    path = Path(path)
    if not path.name.endswith((".jsonl", ".jsonl.gz")):
        yield from iter_lines(path)
        return
    for _, record in read_jsonl(path):
        if "text" in record:
            yield document_text(record)
        else:
            yield from (record[key] for key in ("sentence1", "sentence2") if key in record)


def pretoken_floor(lowercase: bool = True) -> Tokenizer:
    """One token per BERT pre-token (a run of letters/digits, or one punctuation mark): the lowest fertility any
    vocabulary can reach behind BERT's pre-tokenizer, which both MedEIR's and BERT's tokenizers use."""
    tok = build_tokenizer(lowercase)
    tok.model = models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")
    return tok


def split_stats(tokenizer, texts: Iterable[str], batch_size: int = 512) -> SplitStats:
    """Count how ``tokenizer`` (a transformers fast tokenizer or a ``tokenizers.Tokenizer``) splits ``texts``."""
    # A copy without the padding/truncation a tokenizer.json may carry (all-MiniLM-L6-v2's pads and cuts at 128).
    backend = Tokenizer.from_str(getattr(tokenizer, "backend_tokenizer", tokenizer).to_str())
    backend.no_padding()
    backend.no_truncation()
    unk_id = backend.token_to_id(backend.model.unk_token)
    words = tokens = chars = shattered = unknown = 0
    texts = iter(texts)
    while batch := list(itertools.islice(texts, batch_size)):
        for text, encoding in zip(batch, backend.encode_batch(batch, add_special_tokens=False), strict=True):
            spans = [match.span() for match in _WORD.finditer(text)]
            starts = [start for start, _ in spans]
            pieces = [0] * len(spans)
            for start, _ in encoding.offsets:
                pieces[bisect.bisect_right(starts, start) - 1] += 1
            words += len(spans)
            tokens += len(encoding.offsets)
            chars += sum(end - start for start, end in spans)
            shattered += sum(n >= LONG_SPLIT for n in pieces)
            unknown += encoding.ids.count(unk_id)
    if not words:
        raise ValueError("no words in the given texts")
    return SplitStats(words=words, tokens=tokens, chars=chars, shattered=shattered, unknown=unknown)


def compare(tokenizers: dict[str, object], text_sets: dict[str, list[Path]]) -> dict[str, dict[str, SplitStats]]:
    """``{tokenizer name: {text set name: SplitStats}}`` for every pair."""
    return {
        name: {
            set_name: split_stats(tok, itertools.chain.from_iterable(iter_texts(p) for p in paths))
            for set_name, paths in text_sets.items()
        }
        for name, tok in tokenizers.items()
    }


def with_domain_totals(
    results: dict[str, dict[str, SplitStats]], domains: dict[str, str]
) -> dict[str, dict[str, SplitStats]]:
    """``results`` plus one ``"<domain> (pooled)"`` column per domain: the summed counts of that domain's text sets,
    so each word weighs the same whichever set it comes from."""
    pooled = {}
    for name, per_set in results.items():
        totals: dict[str, SplitStats] = {}
        for set_name, stats in per_set.items():
            key = f"{domains[set_name]} (pooled)"
            totals[key] = totals[key] + stats if key in totals else stats
        pooled[name] = {**per_set, **totals}
    return pooled


def format_report(
    results: dict[str, dict[str, SplitStats]], vocab_sizes: dict[str, int | None], baseline: str | None = None
) -> str:
    """Markdown tables, one per metric; fertility cells also show the change against ``baseline``."""
    set_names = list(next(iter(results.values())))
    lines = []
    first = next(iter(results.values()))
    lines.append("Words per text set: " + ", ".join(f"{s} {first[s].words:,}" for s in set_names) + "\n")
    metrics = (
        ("Fertility (tokens per whitespace word; lower is better)", "fertility", "{:.3f}"),
        (f"Share of words split into >= {LONG_SPLIT} pieces", "shattered_share", "{:.1%}"),
        ("Characters per token (non-whitespace; higher is better)", "chars_per_token", "{:.2f}"),
        (
            "Share of [UNK] tokens (each hides a whole word; must stay near 0 for the above to be fair)",
            "unknown_share",
            "{:.3%}",
        ),
    )
    for title, attr, fmt in metrics:
        lines += [f"**{title}**\n", "| tokenizer | vocab | " + " | ".join(set_names) + " |"]
        lines.append("|---|---:|" + "---:|" * len(set_names))
        for name, per_set in results.items():
            cells = []
            for set_name in set_names:
                value = getattr(per_set[set_name], attr)
                cell = fmt.format(value)
                if attr == "fertility" and baseline and name != baseline:
                    ref = results[baseline][set_name].fertility
                    cell += f" ({(value - ref) / ref:+.1%})"
                cells.append(cell)
            vocab = "n/a" if vocab_sizes[name] is None else f"{vocab_sizes[name]:,}"
            lines.append(f"| {name} | {vocab} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
