"""Configuration of the MedEIR encoder (Hub remote code: imports transformers only)."""

from __future__ import annotations

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

ALIBI_MODES = ("symmetric", "asymmetric")


class MedEIRConfig(PretrainedConfig):
    """Architecture of a MedEIR encoder: a post-norm BERT-layout Transformer with ALiBi instead of position embeddings.

    Args:
        vocab_size: number of token ids.
        hidden_size: width of every hidden state.
        num_hidden_layers: number of Transformer layers.
        num_attention_heads: attention heads per layer; must divide ``hidden_size``.
        intermediate_size: width of the feed-forward block.
        hidden_act: activation of the feed-forward block (a key of ``transformers.activations.ACT2FN``).
        max_position_embeddings: longest supported input in tokens. ALiBi has no position table; this is the length the
            tokenizer truncates to and the length the model was checked at.
        layer_norm_eps: epsilon of every LayerNorm.
        hidden_dropout_prob: dropout on embeddings and residual branches.
        attention_probs_dropout_prob: dropout on attention probabilities.
        initializer_range: standard deviation of the normal weight init.
        alibi_mode: ``"symmetric"`` (bias ``-m_h * |i - j|``) or ``"asymmetric"`` (left context uses ``m_h``, right
            context uses the slopes in reverse head order, so the model can tell direction).
        alibi_slope_scale: factor on every ALiBi slope (1 = the paper's geometric slopes). Smaller values make
            attention less local; the shipped model uses 1/16 because its layers come from a position-embedding
            model whose attention patterns the full-strength slopes destroy (see docs/TRAINING.md).
        attention_block_bytes: memory budget of the ALiBi bias of one block of queries on the SDPA path; queries are
            processed in blocks so the full ``L x L`` bias of all heads is never built at once.
        pad_token_id: id of the padding token (its embedding row is initialised to zeros).
        tie_word_embeddings: share the masked-LM decoder weight with the input embeddings.
    """

    model_type = "medeir"

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 384,
        num_hidden_layers: int = 6,
        num_attention_heads: int = 12,
        intermediate_size: int = 1536,
        hidden_act: str = "gelu",
        max_position_embeddings: int = 8192,
        layer_norm_eps: float = 1e-12,
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        initializer_range: float = 0.02,
        alibi_mode: str = "symmetric",
        alibi_slope_scale: float = 1.0,
        attention_block_bytes: int = 64 * 2**20,
        pad_token_id: int | None = 0,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        for name, value in (
            ("vocab_size", vocab_size),
            ("hidden_size", hidden_size),
            ("num_hidden_layers", num_hidden_layers),
            ("num_attention_heads", num_attention_heads),
            ("intermediate_size", intermediate_size),
            ("max_position_embeddings", max_position_embeddings),
            ("attention_block_bytes", attention_block_bytes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of num_attention_heads ({num_attention_heads})"
            )
        for name, value in (
            ("hidden_dropout_prob", hidden_dropout_prob),
            ("attention_probs_dropout_prob", attention_probs_dropout_prob),
        ):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        if not layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {layer_norm_eps!r}")
        if not initializer_range > 0:
            raise ValueError(f"initializer_range must be positive, got {initializer_range!r}")
        if hidden_act not in ACT2FN:
            raise ValueError(f"hidden_act must be one of {sorted(ACT2FN)}, got {hidden_act!r}")
        if alibi_mode not in ALIBI_MODES:
            raise ValueError(f"alibi_mode must be one of {ALIBI_MODES}, got {alibi_mode!r}")
        if not alibi_slope_scale > 0:
            raise ValueError(f"alibi_slope_scale must be positive, got {alibi_slope_scale!r}")
        if pad_token_id is not None and not 0 <= pad_token_id < vocab_size:
            raise ValueError(f"pad_token_id must lie in [0, vocab_size={vocab_size}), got {pad_token_id!r}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.layer_norm_eps = layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.alibi_mode = alibi_mode
        self.alibi_slope_scale = alibi_slope_scale
        self.attention_block_bytes = attention_block_bytes
        # Passed on rather than set here: transformers 4.x's base __init__ would overwrite them with its defaults.
        super().__init__(pad_token_id=pad_token_id, tie_word_embeddings=tie_word_embeddings, **kwargs)


MedEIRConfig.register_for_auto_class()

__all__ = ["MedEIRConfig"]
