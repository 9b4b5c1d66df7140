"""Move a trained model onto a vocabulary that cuts words as the teacher's does.

The encoder's layers come from all-MiniLM-L6-v2, which learned from far more text how to read a word out of *its*
pieces ("ca ##uli ##flower"). Our 32,000-token vocabulary, learned from about 30M tokens, cuts many words into other
pieces ("caul ##ifl ##ower") whose embeddings are averages of the teacher's, and the model reads those words worse
(docs/TRAINING.md, "the teacher's word pieces"). Both tokenizers are uncased WordPiece with the same normaliser and
pre-tokenizer, so the vocabulary can be rebuilt in one of two ways:

- ``min_count`` N: our special tokens at their ids (0-4); every token of the teacher's vocabulary (not its bracketed
  special and unused tokens), in its order; then each of our word-initial tokens that the teacher lacks and that
  stands as a whole word at least N times in the tokenizer's training text ("glaucoma"; not word starts such as
  "caul"). Greedy longest-match then cuts words as the teacher does, except that such a word stays one token (and
  can start a longer word it prefixes).
- ``min_count`` None, the union: all of our tokens at their ids, then the teacher's tokens that we lack. Greedy
  longest-match takes whichever vocabulary's piece is longer.

Each token keeps the model's trained embedding where our vocabulary has it; a token new to us gets the teacher's
embedding with its segment and mean position embedding folded in, as the MiniLM initialisation (``transplant.py``)
gave every shared token.

Usage::

    python -m medeir.train.revocab SOURCE_FOLDER OUTPUT_FOLDER [MIN_COUNT | union]

(MIN_COUNT defaults to 10) writes a float32 model folder (weights, tokenizer, sentence-transformers files) that
training can start from (``model.init`` and ``model.tokenizer`` both set to OUTPUT_FOLDER).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from ..loading import load_tokenizer, minilm_path
from ..tokenizer import DEFAULT_DATA_DIR, SPECIAL_TOKENS, TokenizerRecipe, iter_lines
from .transplant import folded_word_embeddings, load_teacher


def is_reserved(token: str) -> bool:
    """A bracketed special or unused token such as ``[CLS]`` or ``[unused7]`` (not the bracket ``[`` itself)."""
    return len(token) > 2 and token.startswith("[") and token.endswith("]")


def is_word_start(token: str) -> bool:
    """A token that begins a word: neither a ``##`` continuation nor reserved."""
    return not token.startswith("##") and not is_reserved(token)


def our_new_words(ours: dict[str, int], teacher: dict[str, int]) -> list[str]:
    """Our word-initial tokens that the teacher lacks, in our id order: the words a merged vocabulary may keep."""
    return [t for t in sorted(ours, key=ours.__getitem__) if t not in teacher and is_word_start(t)]


def word_splitter(tokenizer) -> Callable[[str], list[str]]:
    """The words of a text as a fast ``tokenizer`` sees them before WordPiece: normalised, then pre-tokenised."""
    backend = tokenizer.backend_tokenizer
    return lambda text: [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]


def check_same_word_rules(ours, teacher) -> None:
    """Raise unless both tokenizers lowercase with BERT's normaliser and split words with BERT's pre-tokeniser, so
    that a word reaches WordPiece the same way in both."""
    for name, tokenizer in (("ours", ours), ("teacher", teacher)):
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
        normalizer, pre_tokenizer = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}
        if (normalizer.get("type"), normalizer.get("lowercase"), pre_tokenizer.get("type")) != (
            "BertNormalizer", True, "BertPreTokenizer"
        ):
            raise ValueError(f"{name} tokenizer does not read words as uncased BERT: {normalizer}, {pre_tokenizer}")


def whole_word_counts(lines: Iterable[str], words: set[str], split: Callable[[str], list[str]]) -> Counter[str]:
    """How often each of ``words`` is a whole word of ``lines``, words as ``split`` cuts them."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(w for w in split(line) if w in words)
    return counts


def merged_vocabulary(
    ours: dict[str, int], teacher: dict[str, int], counts: Counter[str], min_count: int | None
) -> list[str]:
    """Tokens in id order: our special tokens, the teacher's tokens (its reserved ones dropped), then our word-initial
    tokens that the teacher lacks and that ``counts`` saw at least ``min_count`` times. ``min_count=None`` gives the
    union instead: all of our tokens at their ids, then the teacher's unreserved tokens that we lack."""
    misplaced = [t for i, t in enumerate(SPECIAL_TOKENS) if ours.get(t) != i]
    if misplaced:
        raise ValueError(f"expected the special tokens {SPECIAL_TOKENS} at ids 0-4; misplaced: {misplaced}")
    if min_count is not None and min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    teachers = [t for t in sorted(teacher, key=teacher.__getitem__) if not is_reserved(t)]
    if min_count is None:
        return [*sorted(ours, key=ours.__getitem__), *(t for t in teachers if t not in ours)]
    words = [t for t in our_new_words(ours, teacher) if counts[t] >= min_count]
    return [*SPECIAL_TOKENS, *teachers, *words]


def write_wordpiece_vocabulary(tokenizer_file: Path, vocabulary: list[str]) -> None:
    """Replace the WordPiece vocabulary of a ``tokenizer.json``; each added (special) token must keep its id."""
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    if spec["model"]["type"] != "WordPiece":
        raise ValueError(f"{tokenizer_file} is not a WordPiece tokenizer")
    moved = [a["content"] for a in spec["added_tokens"] if vocabulary[a["id"]] != a["content"]]
    if moved:
        raise ValueError(f"the new vocabulary moves the special tokens {moved}")
    spec["model"]["vocab"] = {token: i for i, token in enumerate(vocabulary)}
    tokenizer_file.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


def revocab(
    source: str | Path,
    output: str | Path,
    min_count: int | None = 10,
    text_files: list[Path] | None = None,
    teacher_dir: str | Path | None = None,
) -> dict[str, int]:
    """Write ``source``'s model with the merged vocabulary to ``output``; returns token counts for logging. Whole
    words are counted in ``text_files`` (default: the tokenizer recipe's sources in the staged data folder)."""
    from modeling_medeir import MedEIRModel

    from ..hub import prompts_of, write_model_folder

    if Path(output).resolve() == Path(source).resolve():
        raise ValueError(f"output {output} is the source folder; write the re-tokenized model elsewhere")
    model = MedEIRModel.from_pretrained(str(source), dtype=torch.float32).eval()
    tokenizer = load_tokenizer(source)
    ours = tokenizer.get_vocab()
    if len(ours) != model.config.vocab_size:
        raise ValueError(f"{source}: tokenizer has {len(ours)} tokens, the model {model.config.vocab_size}")
    weights, teacher_tokenizer = load_teacher(teacher_dir or minilm_path(), model.config.hidden_size)
    check_same_word_rules(tokenizer, teacher_tokenizer)
    teacher = teacher_tokenizer.get_vocab()
    counts: Counter[str] = Counter()
    if min_count is not None:
        candidates = set(our_new_words(ours, teacher))
        if text_files is None:
            text_files = [DEFAULT_DATA_DIR / name for name in TokenizerRecipe().sources]
        lines = (line for path in text_files for line in iter_lines(path))
        counts = whole_word_counts(lines, candidates, word_splitter(tokenizer))
    vocabulary = merged_vocabulary(ours, teacher, counts, min_count)

    trained, folded = model.get_input_embeddings(), folded_word_embeddings(weights)
    table = nn.Embedding(len(vocabulary), trained.embedding_dim, padding_idx=trained.padding_idx)
    with torch.no_grad():
        rows = [trained.weight[ours[t]] if t in ours else folded[teacher[t]] for t in vocabulary]
        table.weight.copy_(torch.stack(rows))
    model.set_input_embeddings(table)
    model.config.vocab_size = len(vocabulary)

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(output)
    write_wordpiece_vocabulary(output / "tokenizer.json", vocabulary)
    write_model_folder(model, load_tokenizer(output), output, prompts=prompts_of(source), dtype=torch.float32)
    return {"vocabulary": len(vocabulary), "ours": sum(t in ours for t in vocabulary)}


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m medeir.train.revocab SOURCE_FOLDER OUTPUT_FOLDER [MIN_COUNT | union]")
    keep = sys.argv[3] if len(sys.argv) == 4 else "10"
    if keep != "union" and not keep.isdigit():
        sys.exit(f"MIN_COUNT must be a whole number or 'union', got {keep!r}")
    print(revocab(sys.argv[1], sys.argv[2], None if keep == "union" else int(keep)))
