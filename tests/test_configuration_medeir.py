"""Tests of MedEIRConfig (configuration_medeir.py): defaults, validation, round trips."""

from __future__ import annotations

import json

import pytest

from configuration_medeir import MedEIRConfig


def test_defaults_are_the_medeir_small_architecture():
    config = MedEIRConfig()
    assert config.model_type == "medeir"
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (32000, 384, 6)
    assert (config.num_attention_heads, config.intermediate_size, config.hidden_act) == (12, 1536, "gelu")
    assert config.max_position_embeddings == 8192
    assert (config.alibi_mode, config.pad_token_id, config.tie_word_embeddings) == ("symmetric", 0, True)


def test_save_and_load_keeps_every_field(tmp_path):
    config = MedEIRConfig(
        vocab_size=500,
        hidden_size=40,
        num_hidden_layers=3,
        num_attention_heads=5,
        intermediate_size=80,
        hidden_act="gelu_new",
        max_position_embeddings=1024,
        layer_norm_eps=1e-6,
        hidden_dropout_prob=0.05,
        attention_probs_dropout_prob=0.2,
        initializer_range=0.01,
        alibi_mode="asymmetric",
        attention_block_bytes=2**20,
        pad_token_id=3,
        tie_word_embeddings=False,
        custom_note="kept",
    )
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["model_type"] == "medeir"
    assert written["auto_map"]["AutoConfig"] == "configuration_medeir.MedEIRConfig"
    loaded = MedEIRConfig.from_pretrained(tmp_path)
    for field in [
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "max_position_embeddings",
        "layer_norm_eps",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "initializer_range",
        "alibi_mode",
        "attention_block_bytes",
        "pad_token_id",
        "tie_word_embeddings",
        "custom_note",
    ]:
        assert getattr(loaded, field) == getattr(config, field), field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"vocab_size": 0}, "vocab_size"),
        ({"hidden_size": -8}, "hidden_size"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
        ({"num_attention_heads": 0}, "num_attention_heads"),
        ({"intermediate_size": 2.5}, "intermediate_size"),
        ({"max_position_embeddings": 0}, "max_position_embeddings"),
        ({"attention_block_bytes": 0}, "attention_block_bytes"),
        ({"hidden_size": 100, "num_attention_heads": 12}, "hidden_size"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"attention_probs_dropout_prob": -0.1}, "attention_probs_dropout_prob"),
        ({"layer_norm_eps": 0.0}, "layer_norm_eps"),
        ({"initializer_range": 0}, "initializer_range"),
        ({"hidden_act": "swishy"}, "hidden_act"),
        ({"alibi_mode": "left"}, "alibi_mode"),
        ({"pad_token_id": 32000}, "pad_token_id"),
    ],
)
def test_invalid_values_raise_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        MedEIRConfig(**overrides)


def test_invalid_config_json_is_rejected_on_load(tmp_path):
    MedEIRConfig().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    data["alibi_mode"] = "sideways"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="alibi_mode"):
        MedEIRConfig.from_pretrained(tmp_path)
