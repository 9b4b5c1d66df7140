"""The shipped tokenizer (loading, special tokens, truncation/padding, awkward inputs), its recipe and the report."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from medeir.tokenizer import TokenizerRecipe, iter_lines, train_tokenizer
from medeir.tokenizer_report import (
    SplitStats,
    format_report,
    iter_texts,
    pretoken_floor,
    split_stats,
    with_domain_totals,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SPECIALS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
BIG_WORD = "x" * 100_000
V16_VOCABULARY_SHA256 = "c48b6d9b3de4f524bf27c4d82d2c1ce4d355bf906d63c03fb71d36e6857dc203"
MIXED = "Ünïcödé 東京 مرحبا Привет 😀👍🏽 αβ-blocker"
CONTROL = "heart\x00\x07\x1b attack\u200b\ufeff"
SAMPLE = [
    "Pembrolizumab-induced thrombocytopenia; HbA1c rose to 7.5% (n=42).",
    "A girl is brushing her hair.",
    "BRCA1/BRCA2 carriers and TNF-α inhibitors: naïve vs. pre-treated cohorts.",
    MIXED,
    CONTROL,
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def shipped():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(REPO_ROOT))


def test_shipped_tokenizer_matches_the_model_config(shipped):
    from configuration_medeir import MedEIRConfig

    config = MedEIRConfig.from_pretrained(str(REPO_ROOT))
    assert type(shipped).__name__ == "BertTokenizer"
    assert len(shipped) == config.vocab_size
    assert shipped.model_max_length == 8192
    assert shipped.pad_token_id == config.pad_token_id == 0
    for token, token_id in SPECIALS.items():
        assert shipped.convert_tokens_to_ids(token) == token_id
    assert shipped.model_input_names == ["input_ids", "attention_mask"]


def test_bert_class_loads_tokenizer_json_faithfully(shipped):
    raw = Tokenizer.from_file(str(REPO_ROOT / "tokenizer.json"))
    texts = SAMPLE + ["", BIG_WORD, "[MASK] of heart [SEP] attack"]
    assert shipped(texts)["input_ids"] == [enc.ids for enc in raw.encode_batch(texts)]


def test_truncation_and_padding(shipped):
    batch = shipped(
        ["one two three four five six seven eight nine ten", "hi"], padding=True, truncation=True, max_length=6
    )
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert [len(row) for row in ids] == [6, 6]
    assert ids[0][0] == SPECIALS["[CLS]"] and ids[0][-1] == SPECIALS["[SEP]"]  # [SEP] survives truncation
    assert ids[1][:3] == [SPECIALS["[CLS]"], shipped.convert_tokens_to_ids("hi"), SPECIALS["[SEP]"]]
    assert ids[1][3:] == [0, 0, 0] and mask[1] == [1, 1, 1, 0, 0, 0]  # right padding with [PAD]=0
    long = shipped(["word " * 9000], truncation=True)["input_ids"][0]
    assert len(long) == 8192  # model_max_length applies when no max_length is given
    pair = shipped("a b c d e", "f g h i j k", truncation=True, max_length=9)["input_ids"]
    assert len(pair) == 9 and pair.count(SPECIALS["[SEP]"]) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["[CLS]", "[SEP]"]),
        ("  \t\n  ", ["[CLS]", "[SEP]"]),
        (BIG_WORD, ["[CLS]", "[UNK]", "[SEP]"]),  # longer than max_input_chars_per_word=100
        (CONTROL, ["[CLS]", "heart", "attack", "[SEP]"]),  # control and zero-width characters are dropped
    ],
)
def test_awkward_inputs_tokenize(shipped, text, expected):
    start = time.perf_counter()
    tokens = shipped.convert_ids_to_tokens(shipped(text)["input_ids"])
    assert time.perf_counter() - start < 2.0
    assert tokens == expected


def test_mixed_scripts_keep_every_script_the_vocabulary_knows(shipped):
    tokens = shipped.tokenize(MIXED)
    words = " ".join(tokens).replace(" ##", "").split()
    assert words[0] == "unicode"  # lowercased, accents stripped
    assert words[1:3] == ["東", "京"]  # CJK characters are words of their own
    assert words[3:5] == ["مرحبا", "привет"]  # Arabic and Cyrillic, from the teacher's characters
    assert words[5] == "[UNK]" and tokens.count("[UNK]") == 1  # the emoji word is outside the vocabulary
    assert tokens[-4:] == ["α", "##β", "-", "blocker"]


def test_shipped_vocabulary_is_the_recipes_plus_the_teachers_tokens(shipped, minilm_tokenizer):
    from medeir.train.revocab import merged_vocabulary

    base_size = json.loads((REPO_ROOT / "tokenizer_recipe.json").read_text())["vocab_size"]
    vocab = shipped.get_vocab()
    ordered = sorted(vocab, key=vocab.__getitem__)
    teacher = minilm_tokenizer.get_vocab()
    base = {token: i for i, token in enumerate(ordered[:base_size])}
    assert ordered == merged_vocabulary(base, teacher, Counter(), None)  # medeir.train.revocab's union
    # the first 32,000 are the recipe's tokens as shipped up to v16 (tokenizer.json at commit 5eaa076), ids unchanged
    assert hashlib.sha256("\n".join(ordered[:base_size]).encode()).hexdigest() == V16_VOCABULARY_SHA256


@pytest.fixture(scope="module")
def embedder(tmp_path_factory, shipped):
    from configuration_medeir import MedEIRConfig
    from medeir.encode import Embedder
    from modeling_medeir import MedEIRModel

    config = MedEIRConfig(
        vocab_size=len(shipped), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    return Embedder(model=MedEIRModel(config).eval(), tokenizer=shipped, device="cpu", batch_size=4)


def test_embedder_handles_awkward_inputs(embedder):
    texts = ["", "  \t\n  ", BIG_WORD, MIXED, CONTROL]
    out = embedder.encode(texts)
    assert out.shape == (5, 32) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # whitespace only == empty: both are [CLS] [SEP]
    np.testing.assert_allclose(out[4], embedder.encode(["heart attack"])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("texts", "message"),
    [(["ok", None], r"texts\[1\]"), (["ok", "fine", 3], r"texts\[2\]"), ("a bare string", "list of strings")],
)
def test_embedder_rejects_non_strings(embedder, texts, message):
    with pytest.raises(TypeError, match=message):
        embedder.encode(texts)


def _write_corpus(folder: Path, lines: list[str]) -> str:
    with gzip.open(folder / "tiny.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return "tiny.txt.gz"


TINY_LINES = [
    f"Patient {i} received {drug} for {disease}; Thrombocytopenia and anaemia were monitored."
    for i in range(300)
    for drug, disease in [(("pembrolizumab", "nivolumab", "aspirin")[i % 3], ("melanoma", "angina")[i % 2])]
]


def test_train_tiny_tokenizer_and_load_it(tmp_path):
    from transformers import AutoTokenizer

    source = _write_corpus(tmp_path, TINY_LINES)
    recipe = TokenizerRecipe(sources={source: 0}, vocab_size=300, min_frequency=1)
    start = time.perf_counter()
    folder = train_tokenizer(recipe, tmp_path, tmp_path / "tok")
    assert time.perf_counter() - start < 5.0
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert len(tok) == 300 and tok.model_max_length == 8192
    assert [tok.convert_tokens_to_ids(t) for t in SPECIALS] == list(SPECIALS.values())
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tok(TINY_LINES[:5] + SAMPLE)["input_ids"] == [e.ids for e in raw.encode_batch(TINY_LINES[:5] + SAMPLE)]
    assert tok.tokenize("Pembrolizumab") == ["pembrolizumab"]  # frequent word learnt whole, lowercased
    assert json.loads((folder / "tokenizer_recipe.json").read_text())["vocab_size"] == 300


def test_train_cli_overrides_the_recipe(tmp_path):
    from transformers import AutoTokenizer
    from typer.testing import CliRunner

    from medeir.cli_tokenizer import tokenizer_app

    source = _write_corpus(tmp_path, TINY_LINES)
    config = tmp_path / "recipe.yaml"
    config.write_text(f"sources:\n  {source}: 100\nvocab_size: 400\nlowercase: true\nmin_frequency: 1\n")
    args = ["train", "--config", str(config), "--output", str(tmp_path / "out"), "--data-dir", str(tmp_path)]
    overrides = ["--vocab-size", "200", "--cased", "--pre-tokenizer", "whitespace"]
    result = CliRunner().invoke(tokenizer_app, [*args, *overrides])
    assert result.exit_code == 0, result.output
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert len(tok) == 200
    assert json.loads((tmp_path / "out" / "tokenizer_recipe.json").read_text())["pre_tokenizer"] == "whitespace"
    assert "Thrombocytopenia" in "".join(t.removeprefix("##") for t in tok.tokenize("Thrombocytopenia"))  # cased


def test_report_cli_writes_tables(tmp_path):
    from typer.testing import CliRunner

    from medeir.cli_tokenizer import tokenizer_app

    held_out = tmp_path / "held_out.txt"
    held_out.write_text("\n".join(SAMPLE) + "\n")
    output = tmp_path / "tables.md"
    args = ["report", "--tokenizer", f"shipped={REPO_ROOT}", "--text", f"sample={held_out}", "--output", str(output)]
    result = CliRunner().invoke(tokenizer_app, args)
    assert result.exit_code == 0, result.output
    table = output.read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert {"bert-base-uncased", "shipped", "floor"} <= set(rows)
    assert table.strip() in result.output
    vocab_size = json.loads((REPO_ROOT / "config.json").read_text())["vocab_size"]
    assert f"| shipped | {vocab_size:,} |" in table and "| floor | n/a |" in table


def test_recipe_file_describes_the_shipped_tokenizer():
    recipe = TokenizerRecipe.from_file(REPO_ROOT / "configs" / "tokenizer.yaml")
    assert json.loads((REPO_ROOT / "tokenizer_recipe.json").read_text()) == recipe.__dict__


def test_whitespace_pre_tokenizer_keeps_punctuation_on_its_word(tmp_path):
    source = _write_corpus(tmp_path, TINY_LINES)
    tokens = {}
    for name in ("bert", "whitespace"):
        recipe = TokenizerRecipe(sources={source: 0}, vocab_size=300, min_frequency=1, pre_tokenizer=name)
        raw = Tokenizer.from_file(str(train_tokenizer(recipe, tmp_path, tmp_path / name) / "tokenizer.json"))
        tokens[name] = raw.encode("Aspirin; angina.", add_special_tokens=False).tokens
    assert tokens["bert"] == ["aspirin", ";", "angina", "."]  # each mark is a token of its own
    assert not {";", "."} & set(tokens["whitespace"])  # marks are continuation pieces of their words
    assert "".join(t.removeprefix("##") for t in tokens["whitespace"]) == "aspirin;angina."
    with pytest.raises(ValueError, match="pre_tokenizer must be one of"):
        TokenizerRecipe(pre_tokenizer="sentencepiece")


def test_recipe_rejects_unknown_fields(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vocab_size: 100\nvocab_sise: 200\n")
    with pytest.raises(ValueError, match="vocab_sise"):
        TokenizerRecipe.from_file(bad)


def test_train_names_missing_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt.gz"):
        train_tokenizer(TokenizerRecipe(sources={"nope.txt.gz": 0}), tmp_path, tmp_path / "out")


def test_iter_lines_streams_and_limits(tmp_path):
    path = tmp_path / "lines.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("first\n\n  second  \nthird\n")
    lines = iter_lines(path, limit=2)
    assert iter(lines) is lines  # a generator, not a list
    assert list(lines) == ["first", "second"]
    assert list(iter_lines(path)) == ["first", "second", "third"]


def test_iter_texts_reads_beir_and_sts_files(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "title": "Title", "text": "Body."}\n{"_id": "2", "title": "", "text": "Only."}\n')
    sts = tmp_path / "sts.jsonl"
    sts.write_text('{"sentence1": "A cat.", "sentence2": "A dog.", "score": 1.0}\n')
    assert list(iter_texts(corpus)) == ["Title Body.", "Only."]
    assert list(iter_texts(sts)) == ["A cat.", "A dog."]


def _hand_tokenizer() -> Tokenizer:
    vocab = {"[UNK]": 0, "un": 1, "##believ": 2, "##able": 3, "cat": 4, ",": 5, "a": 6}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def test_split_stats_by_hand():
    # "unbelievable" -> un ##believ ##able (3 pieces), "cat," -> cat , (2), "dog" -> [UNK] (1), "a" -> a (1)
    texts = ["unbelievable cat, dog", "", "  a "]
    for batch_size in (1, 512):
        stats = split_stats(_hand_tokenizer(), texts, batch_size=batch_size)
        assert stats == SplitStats(words=4, tokens=7, chars=12 + 4 + 3 + 1, shattered=1, unknown=1)
    assert stats.fertility == pytest.approx(7 / 4)
    assert stats.shattered_share == pytest.approx(1 / 4)
    assert stats.chars_per_token == pytest.approx(20 / 7)
    assert stats.unknown_share == pytest.approx(1 / 7)


def test_pretoken_floor_counts_one_token_per_pretoken():
    # pre-tokens: "unbelievable" "cat" "," "dog" | "x" "-" "ray" "(" "ct" ")"
    stats = split_stats(pretoken_floor(), ["Unbelievable cat, dog", "X-ray (CT)"])
    assert (stats.words, stats.tokens, stats.shattered) == (5, 10, 2)


def test_split_stats_ignores_padding_and_truncation():
    tok = _hand_tokenizer()
    tok.enable_padding(length=16)
    tok.enable_truncation(max_length=2)
    assert split_stats(tok, ["unbelievable cat, dog"]).tokens == 6


def test_split_stats_rejects_empty_text():
    with pytest.raises(ValueError, match="no words"):
        split_stats(_hand_tokenizer(), ["", "   "])


def test_format_report_compares_fertility_with_the_baseline():
    results = {
        "base": {"med": SplitStats(words=100, tokens=200, chars=500, shattered=10, unknown=0)},
        "ours": {"med": SplitStats(words=100, tokens=150, chars=500, shattered=5, unknown=1)},
    }
    table = format_report(results, {"base": 30522, "ours": 32000}, baseline="base")
    assert "| ours | 32,000 | 1.500 (-25.0%) |" in table
    assert "| base | 30,522 | 2.000 |" in table
    assert "| ours | 32,000 | 5.0% |" in table  # shattered share


def test_domain_totals_weigh_every_word_once():
    results = {
        "ours": {
            "big": SplitStats(words=300, tokens=360, chars=1200, shattered=6, unknown=0),
            "small": SplitStats(words=100, tokens=200, chars=400, shattered=10, unknown=1),
            "chat": SplitStats(words=50, tokens=60, chars=150, shattered=1, unknown=0),
        }
    }
    pooled = with_domain_totals(results, {"big": "medical", "small": "medical", "chat": "general"})["ours"]
    assert list(pooled) == ["big", "small", "chat", "medical (pooled)", "general (pooled)"]
    assert pooled["medical (pooled)"] == SplitStats(words=400, tokens=560, chars=1600, shattered=16, unknown=1)
    assert pooled["medical (pooled)"].fertility == pytest.approx(1.4)  # not the mean of 1.2 and 2.0
    assert pooled["general (pooled)"] == results["ours"]["chat"]
