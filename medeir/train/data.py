"""Training data: streamed text shards packed for MLM, and weighted mixtures of query/passage pairs."""

from __future__ import annotations

import glob
import itertools
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from medeir.evaluation.beir_data import read_jsonl
from medeir.evaluation.degrade import content_words, degrade_text
from medeir.tokenizer import iter_lines

NUMBER = re.compile(r"[\d.,]+")  # a bare number: no idf weight when keyword queries are chosen
STSB_MIN_SCORE = 4.0  # STS-B train pairs at or above this gold score count as paraphrase positives
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")  # between two sentences: end punctuation, space, capital


def expand_files(data_dir: str | Path, patterns: list[str] | tuple[str, ...]) -> list[Path]:
    """Resolve file names or glob patterns (shards) under ``data_dir``; a pattern matching nothing is an error."""
    files = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(Path(data_dir) / pattern)))
        if not matches:
            raise FileNotFoundError(f"no training file matches {Path(data_dir) / pattern}")
        files.extend(Path(m) for m in matches)
    return files


# ----------------------------------------------------------------------------------------------------------------------
# MLM


class PackedRows:
    """Endless ``[CLS] doc [SEP] doc [SEP] ...`` rows of exactly ``seq_len`` ids, shuffled approximately through a
    buffer of ``buffer_size`` rows.

    Files (shards) are visited in a new random order each pass and read line by line, so the corpus never has to fit
    in memory; documents are concatenated and cut into rows (sequence packing, no padding). ``state_dict`` records
    where the stream stands (pass order, shard and line, the partial row, the buffer, both random states), so a run
    resumed with ``load_state_dict`` reads on exactly where it stopped.
    """

    LINES_PER_READ = 256

    def __init__(self, tokenizer, files: list[Path], seq_len: int, seed: int, buffer_size: int = 512):
        if not files:
            raise ValueError("no text files to read")
        self.tokenizer, self.files, self.seq_len, self.buffer_size = tokenizer, files, seq_len, buffer_size
        self.order_rng = random.Random(seed + seq_len)  # shard order of each pass
        self.pick_rng = random.Random(seed)  # which buffered row comes out next
        self.order: list[int] = []  # this pass's shard order (indices into files)
        self.shard = 0  # position in ``order``
        self.lines_read = 0  # lines of the current shard already tokenized
        self.lines_this_pass = 0
        self.tokens: list[int] = []  # packed ids not yet in a row
        self.rows: list[list[int]] = []  # the shuffle buffer
        self._lines: Iterator[str] | None = None

    def state_dict(self) -> dict:
        return {
            "files": [f.name for f in self.files], "seq_len": self.seq_len,
            "order_rng": self.order_rng.getstate(), "pick_rng": self.pick_rng.getstate(),
            "order": list(self.order), "shard": self.shard, "lines_read": self.lines_read,
            "lines_this_pass": self.lines_this_pass, "tokens": list(self.tokens), "rows": [list(r) for r in self.rows],
        }

    def load_state_dict(self, state: dict) -> None:
        if state["seq_len"] != self.seq_len:
            raise ValueError(f"stream state for rows of {state['seq_len']} tokens, not {self.seq_len}")
        if state["files"] != [f.name for f in self.files]:  # names: the data may sit elsewhere after a move
            raise ValueError(f"stream state for other text files: {state['files']}")
        self.order_rng.setstate(state["order_rng"])
        self.pick_rng.setstate(state["pick_rng"])
        self.order, self.shard, self.lines_read = list(state["order"]), state["shard"], state["lines_read"]
        self.lines_this_pass, self.tokens = state["lines_this_pass"], list(state["tokens"])
        self.rows = [list(r) for r in state["rows"]]
        self._lines = None  # reopened at ``lines_read`` on the next read

    def __iter__(self) -> PackedRows:
        return self

    def __next__(self) -> list[int]:
        while len(self.rows) < self.buffer_size:
            self.rows.append(self._next_row())
        return self.rows.pop(self.pick_rng.randrange(len(self.rows)))

    def _next_row(self) -> list[int]:
        while len(self.tokens) < self.seq_len - 1:
            self._read_lines()
        row = [self.tokenizer.cls_token_id] + self.tokens[: self.seq_len - 1]
        del self.tokens[: self.seq_len - 1]  # in place: no copy of the remaining ids for every row
        return row

    def _read_lines(self) -> None:
        """Tokenize the next lines of the current shard, moving on to the next shard (or pass) at its end."""
        if self.shard >= len(self.order):
            if self.order and not self.lines_this_pass:
                raise ValueError(f"no text in {[str(f) for f in self.files]}")
            self.order = list(range(len(self.files)))
            self.order_rng.shuffle(self.order)
            self.shard, self.lines_read, self.lines_this_pass, self._lines = 0, 0, 0, None
        if self._lines is None:
            self._lines = iter_lines(self.files[self.order[self.shard]])
            for _ in itertools.islice(self._lines, self.lines_read):
                pass
        chunk = list(itertools.islice(self._lines, self.LINES_PER_READ))
        if not chunk:
            self.shard, self.lines_read, self._lines = self.shard + 1, 0, None
            return
        self.lines_read += len(chunk)
        self.lines_this_pass += len(chunk)
        for ids in self.tokenizer(chunk, add_special_tokens=False)["input_ids"]:
            self.tokens.extend(ids + [self.tokenizer.sep_token_id])


def mask_tokens(
    input_ids: torch.Tensor, tokenizer, mask_prob: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose ``mask_prob`` of the non-special tokens; 80% -> [MASK], 10% -> random id, 10% unchanged.
    Returns (masked ids, labels with -100 at unchosen positions)."""
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_ids = torch.randint(len(tokenizer), input_ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = random_ids[swap]
    return masked, labels


# ----------------------------------------------------------------------------------------------------------------------
# Pairs


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    negative: str | None = None
    group: str = ""  # pairs sharing a group (same question) must not be in-batch negatives of each other


PairFilter = Callable[[str, dict], bool]  # (file name, record) -> keep?


def read_pairs(path: Path, keep: PairFilter | None = None) -> list[Pair]:
    """Pairs from a JSONL(.gz) file with ``query``/``positive`` (optional ``negative``), or STS-B style
    ``sentence1``/``sentence2``/``score`` rows (kept as paraphrase pairs when score >= STSB_MIN_SCORE)."""
    pairs = []
    for _, record in read_jsonl(path):
        if keep is not None and not keep(path.name, record):
            continue
        if "sentence1" in record:
            if record["score"] >= STSB_MIN_SCORE:
                pairs.append(Pair(record["sentence1"], record["sentence2"], group=record["sentence1"]))
            continue
        if not record.get("query") or not record.get("positive"):
            continue
        pairs.append(Pair(record["query"], record["positive"], record.get("negative"), pair_group(record)))
    return pairs


def pair_group(record: dict) -> str:
    """The question a query/positive record belongs to: its ``qid`` where given, else its query text."""
    return str(record.get("qid") or record["query"])


class ShuffledCycle:
    """Endless draws from ``items``: each pass visits every item once, in an order shuffled by ``rng`` (shared with
    the caller, so re-seeding it re-seeds the draws)."""

    def __init__(self, items: list, rng: random.Random):
        self.items = items
        self.rng = rng
        self.order: list[int] = []

    def next(self):
        if not self.order:
            self.order = list(range(len(self.items)))
            self.rng.shuffle(self.order)
        return self.items[self.order.pop()]


class PairMixture:
    """Endless batches drawn from several pair sources with given weights; within a batch no two pairs share a
    group or a query, and no passage text (positive or hard negative) occurs twice, so every candidate but a query's
    own positive is a true negative for it (``PassageDegrader`` keeps it so; after ``QueryShortener``, another pair's
    positive on the same topic may answer a keyword query)."""

    def __init__(self, sources: dict[str, list[Pair]], weights: dict[str, float], seed: int):
        empty = [name for name, pairs in sources.items() if not pairs]
        if empty:
            raise ValueError(f"pair source(s) with no usable pairs: {empty}")
        self.names = list(sources)
        self.weights = [weights[name] for name in self.names]
        self.rng = random.Random(seed)
        self.cycles = {name: ShuffledCycle(pairs, self.rng) for name, pairs in sources.items()}

    def state_dict(self) -> dict:
        """Where the draws stand (random state and each source's remaining pass), for an exact resume."""
        return {"rng": self.rng.getstate(), "orders": {name: list(c.order) for name, c in self.cycles.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        for name, order in state["orders"].items():
            self.cycles[name].order = list(order)

    def batch(self, size: int) -> list[Pair]:
        batch, seen = [], set()
        for _ in range(size * 20):
            pair = self.cycles[self.rng.choices(self.names, self.weights)[0]].next()
            keys = {("g", pair.group), ("q", pair.query), ("p", pair.positive)}
            if pair.negative:
                keys.add(("p", pair.negative))
            if keys & seen:
                continue
            seen |= keys
            batch.append(pair)
            if len(batch) == size:
                break
        return batch


class RandomStream:
    """A sampler whose only state is its random generator ``rng``: saved and restored for an exact resume."""

    rng: random.Random

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])


class PassageDegrader(RandomStream):
    """Gives each of a batch's passages, independently with probability ``share``, the keyword-list form of
    nfcorpus-degraded's documents (``degrade_text``: lowercased, no stop-words or punctuation, numbers written
    ``num``), so the model also learns to match intact queries to preprocessed documents. A passage whose keyword
    list is already in the batch (e.g. one that differs from another only in a number) stays intact, so the batch
    still has no duplicate passage. Its random stream is its own (``stream``, so that two degraders of one run draw
    apart): the pair batches drawn are the same as without it. ``setting`` names the share in error messages."""

    def __init__(self, share: float, seed: int, stream: str = "degrade", setting: str = "degraded_passage_share"):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"{setting} must be in (0, 1], got {share}")
        self.share = share
        self.rng = random.Random(f"{stream}-{seed}")

    def __call__(self, passages: list[str]) -> list[str]:
        taken = set(passages)
        out = []
        for text in passages:
            if self.rng.random() < self.share and (degraded := degrade_text(text)) not in taken:
                taken.add(degraded)
                text = degraded
            out.append(text)
        return out


class QueryShortener(RandomStream):
    """Replaces each pair's query, independently with probability ``share``, by a keyword query of one to three
    words (the number drawn evenly): the run of that many consecutive content words (``content_words``) with the
    highest summed inverse document frequency over the run's distinct queries, so "Do statin drugs cause breast
    cancer?" becomes "statin" or "statin drugs". Searchers often type such queries (nfcorpus's "prunes", "folic
    acid"), while the training queries are questions, claims and titles (STS-B paraphrases included, as pairs).

    A drawn query stays whole when it has more than ``max_words`` content words, when nothing would be cut (it has
    no more content words than drawn), or when its keywords are already asked in the batch: another query's
    content words, or another pair's keywords. So the share that changes is below ``share``, and no two queries of a
    batch ask the same. A shortened pair keeps its positive but drops its hard negative, since a passage on the same
    topic may well answer a keyword query (another pair's positive on the same topic still can: a caveat). With
    ``shortenable`` given, a pair not in it is never drawn (e.g. to keep claims and STS-B sentences whole).
    Its random stream is its own: the pair batches drawn are the same as without it."""

    max_words = 12  # longer queries (patient messages, whole questions with context) are left as they are

    def __init__(self, share: float, queries: Iterable[str], seed: int, shortenable: frozenset[Pair] | None = None):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"keyword_query_share must be in (0, 1], got {share}")
        self.share = share
        distinct = set(queries)
        counts = Counter(word for query in distinct for word in set(content_words(query)))
        idf = {word: math.log(len(distinct) / count) for word, count in counts.items()}
        self.idf = {word: value for word, value in idf.items() if not NUMBER.fullmatch(word)}
        self.shortenable = shortenable
        self.rng = random.Random(f"keywords-{seed}")

    def keywords(self, query: str, length: int) -> str:
        """The ``length`` consecutive content words of ``query`` with the highest summed idf (the first such run);
        "" when ``query`` has no more than ``length`` or more than ``max_words`` content words."""
        words = content_words(query)
        if not length < len(words) <= self.max_words:
            return ""
        starts = range(len(words) - length + 1)
        best = max(starts, key=lambda i: sum(self.idf.get(word, 0.0) for word in words[i : i + length]))
        return " ".join(words[best : best + length])

    def __call__(self, pairs: list[Pair]) -> list[Pair]:
        asked = {" ".join(content_words(pair.query)) for pair in pairs}
        out = []
        for pair in pairs:
            if (self.shortenable is None or pair in self.shortenable) and self.rng.random() < self.share:
                keywords = self.keywords(pair.query, self.rng.randint(1, 3))
                if keywords and keywords not in asked:
                    asked.add(keywords)
                    pair = replace(pair, query=keywords, negative=None)
            out.append(pair)
        return out


@dataclass(frozen=True)
class ScoredPair:
    first: str
    second: str
    score: float


def read_scored_pairs(path: Path, keep: PairFilter | None = None) -> list[ScoredPair]:
    """Every ``sentence1``/``sentence2``/``score`` row of a JSONL(.gz) file that ``keep`` keeps, whatever its score."""
    pairs = []
    for number, record in read_jsonl(path):
        if keep is not None and not keep(path.name, record):
            continue
        first, second, score = (record.get(key) for key in ("sentence1", "sentence2", "score"))
        if not (isinstance(first, str) and isinstance(second, str) and isinstance(score, int | float)):
            raise ValueError(f"{path}:{number}: a graded pair needs text sentence1, text sentence2 and a numeric score")
        pairs.append(ScoredPair(first, second, float(score)))
    return pairs


class ScoredPairSampler:
    """Endless batches of graded sentence pairs from several files, pooled and visited in a fresh random order each
    pass."""

    def __init__(self, files: list[Path], seed: int, keep: PairFilter | None = None):
        self.pairs = [pair for file in files for pair in read_scored_pairs(file, keep)]
        if not self.pairs:
            raise ValueError(f"no graded pairs in {[str(f) for f in files]}")
        self.rng = random.Random(seed)
        self.cycle = ShuffledCycle(self.pairs, self.rng)

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "order": list(self.cycle.order)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.cycle.order = list(state["order"])

    def batch(self, size: int) -> list[ScoredPair]:
        return [self.cycle.next() for _ in range(size)]


class TextSampler(RandomStream):
    """Random text lines (for distillation-only texts), read up to ``limit`` lines per file."""

    def __init__(self, files: dict[Path, float], seed: int, limit: int = 50000):
        self.rng = random.Random(seed)
        self.pools = {file: list(iter_lines(file, limit)) for file in files}
        self.files = list(files)
        self.weights = [files[f] for f in self.files]

    def sample(self, count: int) -> list[str]:
        return [self.rng.choice(self.pools[self.rng.choices(self.files, self.weights)[0]]) for _ in range(count)]


class ClozeSplitter(RandomStream):
    """Inverse-cloze pairs from plain text lines: one sentence drawn from a line (the query) and the line without it
    (the passage), so text with no labelled pairs still gives query -> passage rows. A line qualifies with at least
    ``MIN_SENTENCES`` sentences of which at least one has ``QUERY_WORDS`` words (one of those is drawn); other lines,
    and a line whose passage is already in the batch, are passed over. Its random stream is its own."""

    MIN_SENTENCES = 3
    QUERY_WORDS = (6, 50)  # inclusive

    def __init__(self, seed: int):
        self.rng = random.Random(f"cloze-{seed}")

    def __call__(self, lines: list[str]) -> list[tuple[str, str]]:
        pairs, passages = [], set()
        low, high = self.QUERY_WORDS
        for line in lines:
            sentences = SENTENCE_END.split(line.strip())
            fits = [i for i, sentence in enumerate(sentences) if low <= len(sentence.split()) <= high]
            if len(sentences) < self.MIN_SENTENCES or not fits:
                continue
            chosen = self.rng.choice(fits)
            passage = " ".join(sentences[:chosen] + sentences[chosen + 1 :])
            if passage not in passages:
                passages.add(passage)
                pairs.append((sentences[chosen], passage))
        return pairs
