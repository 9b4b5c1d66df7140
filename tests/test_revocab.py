"""Re-tokenizing a trained model with the teacher's word pieces (medeir.train.revocab)."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medeir.loading import load_tokenizer, minilm_path
from medeir.tokenizer import SPECIAL_TOKENS, TokenizerRecipe, train_tokenizer
from medeir.train.revocab import check_same_word_rules, merged_vocabulary, revocab, whole_word_counts, word_splitter
from medeir.train.transplant import folded_word_embeddings, load_teacher

SPECIAL_IDS = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
REPO_ROOT = Path(__file__).resolve().parents[1]
UNUSED = 994  # MiniLM's [unused] tokens; its five special tokens are the same as ours
MINILM_TOKENS = 30522 - UNUSED
LINES = [f"Patient {i} received pembrolizumab for melanoma in Hiroshima; kinases were measured." for i in range(300)]


def test_merged_vocabulary_orders_specials_teacher_then_frequent_whole_words():
    ours = {**SPECIAL_IDS, "glaucoma": 5, "caul": 6, "##ifl": 7, "heart": 8}
    teacher = {"[PAD]": 0, "[unused0]": 1, "heart": 2, "ca": 3, "##uli": 4, "[CLS]": 5, "[": 6}
    counts = Counter({"glaucoma": 10, "caul": 9, "##ifl": 100})  # a continuation is never kept
    expected = [*SPECIAL_TOKENS, "heart", "ca", "##uli", "[", "glaucoma"]
    assert merged_vocabulary(ours, teacher, counts, min_count=10) == expected
    assert merged_vocabulary(ours, teacher, counts, min_count=9)[-2:] == ["glaucoma", "caul"]
    assert merged_vocabulary(ours, teacher, counts, min_count=None) == [*ours, "ca", "##uli", "["]  # the union
    with pytest.raises(ValueError, match=r"misplaced: \['\[PAD\]', '\[UNK\]'"):
        merged_vocabulary({"[UNK]": 0, "[PAD]": 1}, teacher, counts, min_count=1)
    with pytest.raises(ValueError, match="at least 1"):
        merged_vocabulary(ours, teacher, counts, min_count=0)


def test_whole_word_counts_read_words_as_the_tokenizer_does():
    split = word_splitter(load_tokenizer(REPO_ROOT))
    lines = ["Glaucoma, glaucomatous damage; GLAUCOMA.", "caul-ifl caulk", "Sjögren syndrome"]
    words = {"glaucoma", "caul", "ifl", "sjogren", "sj", "gren"}
    assert whole_word_counts(lines, words, split) == Counter({"glaucoma": 2, "caul": 1, "ifl": 1, "sjogren": 1})


@pytest.fixture(scope="module")
def source_folder(tmp_path_factory) -> tuple[Path, Path]:
    """A one-layer model of the teacher's width with a 300-token tokenizer trained on ``LINES``, and the text file."""
    from configuration_medeir import MedEIRConfig
    from medeir.hub import write_model_folder
    from modeling_medeir import MedEIRModel

    tmp = tmp_path_factory.mktemp("revocab")
    with gzip.open(tmp / "text.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(LINES) + "\n")
    tokenizer = load_tokenizer(
        train_tokenizer(TokenizerRecipe(sources={"text.txt.gz": 0}, vocab_size=300, min_frequency=1), tmp, tmp / "tok")
    )
    torch.manual_seed(0)
    config = MedEIRConfig(vocab_size=len(tokenizer), hidden_size=384, num_hidden_layers=1, num_attention_heads=12,
                          intermediate_size=64)
    write_model_folder(MedEIRModel(config).eval(), tokenizer, tmp / "model", dtype=torch.float32)
    return tmp / "model", tmp / "text.txt.gz"


def embedding_table(folder: Path) -> torch.Tensor:
    for file in sorted(folder.glob("*.safetensors")):
        weights = load_file(str(file))
        if "embeddings.word_embeddings.weight" in weights:
            return weights["embeddings.word_embeddings.weight"]
    raise AssertionError(f"no embedding table in {folder}")


def test_revocab_cuts_words_as_the_teacher_keeps_our_frequent_words_and_their_rows(
    source_folder, tmp_path, minilm_tokenizer
):
    from modeling_medeir import MedEIRModel

    source, text = source_folder
    ours = load_tokenizer(source)
    teacher = minilm_tokenizer
    assert ours.tokenize("pembrolizumab") == ["pembrolizumab"] and "pembrolizumab" not in teacher.get_vocab()

    counts = revocab(source, tmp_path / "out", min_count=10, text_files=[text])
    merged = load_tokenizer(tmp_path / "out")
    model = MedEIRModel.from_pretrained(str(tmp_path / "out"))
    assert model.config.vocab_size == len(merged) == counts["vocabulary"]
    assert [merged.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    ids = merged("heart attack")["input_ids"]
    assert (ids[0], ids[-1]) == (SPECIAL_IDS["[CLS]"], SPECIAL_IDS["[SEP]"])

    general = "The cauliflower was pickled near Chernobyl, unbelievably."
    assert merged.tokenize(general) == teacher.tokenize(general)
    assert teacher.tokenize("melanoma") == ["mel", "##ano", "##ma"]  # whole in ours (300 times in LINES): kept
    assert merged.tokenize("Pembrolizumab for melanoma") == ["pembrolizumab", "for", "melanoma"]

    old, new = embedding_table(source), embedding_table(tmp_path / "out")
    folded = folded_word_embeddings(load_teacher(minilm_path(), 384)[0])
    vocab, ours_vocab, teacher_vocab = merged.get_vocab(), ours.get_vocab(), teacher.get_vocab()
    assert torch.equal(new[vocab["pembrolizumab"]], old[ours_vocab["pembrolizumab"]])
    shared = next(t for t in ("patient", "melanoma", "for") if t in ours_vocab and t in teacher_vocab)
    assert torch.equal(new[vocab[shared]], old[ours_vocab[shared]])
    assert "hospital" not in ours_vocab
    assert torch.allclose(new[vocab["hospital"]], folded[teacher_vocab["hospital"]])

    assert model.get_input_embeddings().padding_idx == 0 and torch.equal(new[0], old[0])
    with torch.no_grad():
        out = model(**merged(["pembrolizumab in Hiroshima"], return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 384 and torch.isfinite(out).all()


def test_revocab_without_our_words_is_the_teacher_tokenizer(source_folder, tmp_path, minilm_tokenizer):
    source, text = source_folder
    counts = revocab(source, tmp_path / "out", min_count=10**9, text_files=[text])
    teacher = minilm_tokenizer
    merged = load_tokenizer(tmp_path / "out")
    assert counts["vocabulary"] == MINILM_TOKENS == 29528
    for line in (LINES[0], "Pembrolizumab-induced thrombocytopenia", "Ünïcödé αβ-blocker", "see [1] (ref)"):
        assert merged.tokenize(line) == teacher.tokenize(line)


def test_revocab_union_keeps_every_id_and_appends_the_teachers_tokens(source_folder, tmp_path, minilm_tokenizer):
    source, _ = source_folder
    counts = revocab(source, tmp_path / "out", min_count=None)
    ours, merged = load_tokenizer(source).get_vocab(), load_tokenizer(tmp_path / "out").get_vocab()
    teacher = minilm_tokenizer.get_vocab()
    assert counts == {"vocabulary": len(merged), "ours": len(ours)}
    assert all(merged[t] == i for t, i in ours.items())
    assert len(merged) == len(set(ours) | set(teacher)) - UNUSED
    assert load_tokenizer(tmp_path / "out").tokenize("hospital") == ["hospital"]  # the teacher's whole word
    assert load_tokenizer(source).tokenize("hospital") != ["hospital"]
    old, new = embedding_table(source), embedding_table(tmp_path / "out")
    assert torch.equal(new[: len(ours)], old)
    folded = folded_word_embeddings(load_teacher(minilm_path(), 384)[0])
    assert torch.allclose(new[merged["hospital"]], folded[teacher["hospital"]])


def test_revocab_refuses_to_overwrite_its_source(source_folder):
    source, text = source_folder
    with pytest.raises(ValueError, match="source folder"):
        revocab(source, source, text_files=[text])


def test_revocab_refuses_a_tokenizer_that_reads_words_otherwise(source_folder, tmp_path, minilm_tokenizer):
    _, text = source_folder
    recipe = TokenizerRecipe(sources={text.name: 0}, vocab_size=300, min_frequency=1, lowercase=False)  # cased
    ours = load_tokenizer(train_tokenizer(recipe, text.parent, tmp_path / "tok"))
    teacher = minilm_tokenizer
    check_same_word_rules(teacher, teacher)
    with pytest.raises(ValueError, match="ours tokenizer does not read words as uncased BERT"):
        check_same_word_rules(ours, teacher)
