"""Train MedEIR's WordPiece tokenizer on a mix of medical and general text, streamed from gzip'd line files."""

from __future__ import annotations

import gzip
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PRE_TOKENIZERS = {"bert": pre_tokenizers.BertPreTokenizer, "whitespace": pre_tokenizers.WhitespaceSplit}
MODEL_MAX_LENGTH = 8192
# The project's read-only data folder (``../shared/data`` next to the repository), overridable for other checkouts.
DEFAULT_DATA_DIR = Path(os.environ.get("MEDEIR_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


@dataclass(frozen=True)
class TokenizerRecipe:
    """What the tokenizer is trained on and how. Paths are relative to the shared data folder."""

    sources: dict[str, int] = field(
        default_factory=lambda: {"text/medical.txt.gz": 0, "text/general.txt.gz": 0, "extra/medical_extra.txt.gz": 0}
    )  # file -> max lines (0 = all)
    vocab_size: int = 32000
    lowercase: bool = True
    min_frequency: int = 3
    limit_alphabet: int = 1000
    # "bert": words and single punctuation marks (shipped); "whitespace": punctuation stays on its word, so the
    # vocabulary can learn pieces such as "disease." (measured worse, docs/TOKENIZER.md)
    pre_tokenizer: str = "bert"

    @classmethod
    def from_file(cls, path: str | Path) -> TokenizerRecipe:
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown tokenizer recipe field(s) {sorted(unknown)}")
        return cls(**data)

    def __post_init__(self):
        if self.pre_tokenizer not in PRE_TOKENIZERS:
            raise ValueError(f"pre_tokenizer must be one of {sorted(PRE_TOKENIZERS)}, got {self.pre_tokenizer!r}")


def iter_lines(path: str | Path, limit: int = 0) -> Iterator[str]:
    """Stream non-empty lines of a (possibly gzip'd) UTF-8 text file without loading it."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        lines = (line.strip() for line in handle)
        lines = (line for line in lines if line)
        yield from itertools.islice(lines, limit) if limit else lines


def build_tokenizer(lowercase: bool, pre_tokenizer: str = "bert") -> Tokenizer:
    """An untrained WordPiece tokenizer with BERT-style normalisation, the named word splitting (``PRE_TOKENIZERS``)
    and WordPiece decoding."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
    )
    tok.pre_tokenizer = PRE_TOKENIZERS[pre_tokenizer]()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def as_transformers_tokenizer(tok: Tokenizer, lowercase: bool):
    """Wrap a trained backend as a ``BertTokenizer``: the class name written to tokenizer_config.json loads in
    transformers 4.x and 5.x (the generic ``TokenizersBackend`` is 5.x only); the backend is kept as is."""
    from transformers import BertTokenizer

    return BertTokenizer(
        tokenizer_object=tok,
        do_lower_case=lowercase,
        strip_accents=lowercase,
        tokenize_chinese_chars=True,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MODEL_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
    )


def train_tokenizer(recipe: TokenizerRecipe, data_dir: str | Path, output_dir: str | Path) -> Path:
    """Train on the recipe's sources (streamed line by line) and save a transformers-loadable tokenizer folder."""
    data_dir = Path(data_dir)
    missing = [name for name in recipe.sources if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"tokenizer source(s) not found under {data_dir}: {missing}")
    tok = build_tokenizer(recipe.lowercase, recipe.pre_tokenizer)
    trainer = trainers.WordPieceTrainer(
        vocab_size=recipe.vocab_size,
        min_frequency=recipe.min_frequency,
        limit_alphabet=recipe.limit_alphabet,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
    )
    stream = itertools.chain.from_iterable(iter_lines(data_dir / name, limit) for name, limit in recipe.sources.items())
    tok.train_from_iterator(stream, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    output_dir = Path(output_dir)
    as_transformers_tokenizer(tok, recipe.lowercase).save_pretrained(output_dir)
    (output_dir / "tokenizer_recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    return output_dir
