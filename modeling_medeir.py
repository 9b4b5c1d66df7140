"""MedEIR: a bidirectional Transformer encoder with ALiBi attention (Hub remote code: torch + transformers only).

Reading order: ALiBi slopes and bias -> padding helpers -> attention backends -> attention, MLP, layer -> pretrained
base -> ``MedEIRModel`` -> ``MedEIRForMaskedLM``. Inside the layers, hidden states are *packed*: the real tokens of
all sequences in a batch, concatenated as ``[tokens, hidden]`` (no compute is spent on padding); ``cu_seqlens`` holds
the cumulative sequence lengths. Each attention backend sees the packed tensors and handles padding its own way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput

try:  # loaded as Hub remote code (a package) or as an installed top-level module
    from .configuration_medeir import MedEIRConfig
except ImportError:
    from configuration_medeir import MedEIRConfig

# ----------------------------------------------------------------------------------------------------------------------
# ALiBi


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Geometric ALiBi slopes for any head count (Press et al. 2022): interleave the next power of two's set."""

    def power_of_two_slopes(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = power_of_two_slopes(closest)
    if closest < num_heads:
        slopes += power_of_two_slopes(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(slopes: torch.Tensor, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
    """ALiBi bias ``[heads, queries, keys]`` in fp32.

    ``slopes`` is ``[2, heads]``: row 0 weighs keys to the left of the query, row 1 keys to the right.
    """
    distance = key_pos[None, :].float() - query_pos[:, None].float()  # (q, k), positive = key to the right
    left = slopes[0, :, None, None] * distance.clamp(max=0)  # (h, q, k), <= 0
    right = slopes[1, :, None, None] * distance.clamp(min=0)  # (h, q, k), >= 0
    return left - right


def mask_fill_value(dtype: torch.dtype) -> float:
    """Finite additive value for masked keys: half the dtype's minimum, so adding the ALiBi bias cannot overflow."""
    return torch.finfo(dtype).min / 2


# ----------------------------------------------------------------------------------------------------------------------
# Packing: [batch, seq] <-> [tokens]


@dataclass
class PackedBatch:
    """Where the real tokens of a padded batch live once packed."""

    indices: torch.Tensor  # (tokens,) flat positions of real tokens in the [batch * seq] layout
    cu_seqlens: torch.Tensor  # (batch + 1,) int32 cumulative lengths
    max_seqlen: int
    batch_size: int
    seq_len: int

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor) -> PackedBatch:
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1, dtype=torch.int32)
        cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
        # Real tokens are taken in order; a sequence's tokens become contiguous even if its mask has holes.
        indices = mask.flatten().nonzero(as_tuple=False).flatten()
        return cls(indices, cu_seqlens, int(lengths.max().item()) if len(lengths) else 0, *mask.shape)

    @property
    def lengths(self) -> list[int]:
        return (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).tolist()

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """(batch, seq, ...) -> (tokens, ...)"""
        return padded.flatten(0, 1)[self.indices]

    def pack_left(self, padded: torch.Tensor) -> torch.Tensor:
        """Inverse of ``unpack_left``."""
        return padded.flatten(0, 1)[self.dense_key_mask().flatten()]

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(tokens, ...) -> (batch, seq, ...) in the original padded layout, zeros at padding."""
        out = packed.new_zeros(self.batch_size * self.seq_len, *packed.shape[1:])
        out[self.indices] = packed
        return out.view(self.batch_size, self.seq_len, *packed.shape[1:])

    def unpack_left(self, packed: torch.Tensor, seq_len: int) -> torch.Tensor:
        """(tokens, ...) -> (batch, seq_len, ...), each sequence from position 0 (right padding), zeros at padding."""
        out = packed.new_zeros(self.batch_size * seq_len, *packed.shape[1:])
        lengths = self.cu_seqlens[1:] - self.cu_seqlens[:-1]
        row = torch.repeat_interleave(torch.arange(self.batch_size, device=packed.device), lengths.long())
        col = torch.arange(packed.shape[0], device=packed.device) - self.cu_seqlens[:-1].long()[row]
        out[row * seq_len + col] = packed
        return out.view(self.batch_size, seq_len, *packed.shape[1:])

    def dense_key_mask(self) -> torch.Tensor:
        """(batch, max_seqlen) bool, True at real tokens, in the layout that ``unpack_left(..., max_seqlen)`` gives."""
        lengths = self.cu_seqlens[1:] - self.cu_seqlens[:-1]
        return torch.arange(self.max_seqlen, device=lengths.device)[None, :] < lengths[:, None]


# ----------------------------------------------------------------------------------------------------------------------
# Attention backends. Each takes packed q, k, v of shape (tokens, heads, head_dim) and returns (tokens, heads, head_dim).


def eager_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """Reference: softmax(q k^T * scale + ALiBi + padding mask) v, in fp32, with the full bias of every head."""
    length = packed.max_seqlen
    q, k, v = (packed.unpack_left(t, length).transpose(1, 2) for t in (q, k, v))  # (b, h, L, d)
    positions = torch.arange(length, device=q.device)
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * module.scaling  # (b, h, L, L)
    scores = scores + alibi_bias(slopes, positions, positions)[None]
    key_mask = packed.dense_key_mask()[:, None, None, :]  # (b, 1, 1, L)
    scores = scores.masked_fill(~key_mask, mask_fill_value(torch.float32))
    probs = F.dropout(scores.softmax(dim=-1), p=module.dropout_p if module.training else 0.0, training=module.training)
    out = torch.matmul(probs, v.float()).to(v.dtype).transpose(1, 2)  # (b, L, h, d)
    return packed.pack_left(out)


def sdpa_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """PyTorch SDPA with the ALiBi bias as a float mask, built one block of queries at a time.

    The block height is chosen so one block's bias ``[batch, heads, block, L]`` stays under
    ``config.attention_block_bytes``: an 8,192-token input never holds its full ``L x L`` bias.
    """
    length = packed.max_seqlen
    q, k, v = (packed.unpack_left(t, length).transpose(1, 2) for t in (q, k, v))  # (b, h, L, d)
    batch, heads = q.shape[:2]
    positions = torch.arange(length, device=q.device)
    key_pad = torch.zeros(batch, 1, 1, length, dtype=q.dtype, device=q.device)
    key_pad.masked_fill_(~packed.dense_key_mask()[:, None, None, :], mask_fill_value(q.dtype))
    row_bytes = batch * heads * length * q.element_size()
    block = max(1, min(length, module.block_bytes // row_bytes))
    dropout = module.dropout_p if module.training else 0.0
    outputs = []
    for start in range(0, length, block):
        stop = min(start + block, length)
        bias = alibi_bias(slopes, positions[start:stop], positions).to(q.dtype)[None] + key_pad  # (b, h, blk, L)
        outputs.append(
            F.scaled_dot_product_attention(
                q[:, :, start:stop], k, v, attn_mask=bias, dropout_p=dropout, scale=module.scaling
            )
        )
    out = torch.cat(outputs, dim=2).transpose(1, 2)  # (b, L, h, d)
    return packed.pack_left(out)


def flex_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """FlexAttention over the packed tokens as one sequence: a document mask keeps sequences apart and an ALiBi
    ``score_mod`` adds the bias, so no bias tensor and no padding exist at all (the CUDA fast path)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    tokens = q.shape[0]
    doc = torch.repeat_interleave(
        torch.arange(packed.batch_size, device=q.device), (packed.cu_seqlens[1:] - packed.cu_seqlens[:-1]).long()
    )
    pos = torch.arange(tokens, device=q.device) - packed.cu_seqlens[:-1].long()[doc]
    left, right = slopes[0].to(q.device), slopes[1].to(q.device)

    def same_document(b, h, q_idx, kv_idx):
        return doc[q_idx] == doc[kv_idx]

    def alibi(score, b, h, q_idx, kv_idx):
        distance = (pos[kv_idx] - pos[q_idx]).float()
        return score + torch.where(distance < 0, left[h] * distance, -right[h] * distance)

    block_mask = create_block_mask(same_document, None, None, tokens, tokens, device=q.device)
    attend = module.compiled_flex or flex_attention
    out = attend(
        q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
        score_mod=alibi, block_mask=block_mask, scale=module.scaling,
    )  # (1, h, tokens, d)
    return out[0].transpose(0, 1)


def flash_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """flash-attn's varlen kernel with its built-in (symmetric) ALiBi: packed in, packed out."""
    from flash_attn import flash_attn_varlen_func

    if not torch.equal(slopes[0], slopes[1]):
        raise ValueError("flash_attention_2 supports only alibi_mode='symmetric'")
    cu = packed.cu_seqlens.to(q.device)
    return flash_attn_varlen_func(
        q, k, v, cu, cu, packed.max_seqlen, packed.max_seqlen,
        dropout_p=module.dropout_p if module.training else 0.0, softmax_scale=module.scaling,
        causal=False, alibi_slopes=slopes[0].to(q.device, torch.float32),
    )


ATTENTION_BACKENDS = {
    "eager": eager_attention_forward,
    "sdpa": sdpa_attention_forward,
    "flex_attention": flex_attention_forward,
    "flash_attention_2": flash_attention_forward,
}


# ----------------------------------------------------------------------------------------------------------------------
# Layers


class MedEIREmbeddings(nn.Module):
    """Token embeddings -> LayerNorm -> dropout. No position table: ALiBi supplies order."""

    def __init__(self, config: MedEIRConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        embeds = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return self.dropout(self.LayerNorm(embeds))


class MedEIRSelfAttention(torch.nn.Module):
    """Multi-head self-attention; the backend is looked up by ``config._attn_implementation`` at every call, so
    ``model.set_attn_implementation(...)`` switches it on a loaded model."""

    def __init__(self, config: MedEIRConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout_p = config.attention_probs_dropout_prob
        self.block_bytes = config.attention_block_bytes
        self.is_causal = False
        self.compiled_flex = None  # set by MedEIRModel.compile_flex_attention()
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor) -> torch.Tensor:
        tokens = hidden.shape[0]
        q, k, v = self.qkv(hidden).view(tokens, 3, self.num_heads, self.head_dim).unbind(1)  # 3 x (t, h, d)
        backend = ATTENTION_BACKENDS[self.config._attn_implementation]
        context = backend(self, q, k, v, packed, slopes)  # (t, h, d)
        return self.out(context.reshape(tokens, -1))


class MedEIRMLP(nn.Module):
    def __init__(self, config: MedEIRConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(hidden)))


class MedEIRLayer(GradientCheckpointingLayer):
    """Post-norm block (BERT layout): x = LN(x + attn(x)); x = LN(x + mlp(x))."""

    def __init__(self, config: MedEIRConfig):
        super().__init__()
        self.attention = MedEIRSelfAttention(config)
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MedEIRMLP(config)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor) -> torch.Tensor:
        hidden = self.attn_norm(hidden + self.dropout(self.attention(hidden, packed, slopes)))
        return self.mlp_norm(hidden + self.dropout(self.mlp(hidden)))


# ----------------------------------------------------------------------------------------------------------------------
# Models


class MedEIRPreTrainedModel(PreTrainedModel):
    config_class = MedEIRConfig
    base_model_prefix = "medeir"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MedEIRLayer"]
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_flash_attn = True

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, MedEIRModel):
            # Non-persistent buffer: models built on the meta device would otherwise keep uninitialised memory.
            with torch.no_grad():
                module.alibi_slopes.copy_(module.compute_slopes(self.config))
        elif isinstance(module, MedEIRLMHead):
            nn.init.zeros_(module.bias)


class MedEIRModel(MedEIRPreTrainedModel):
    """The encoder. ``last_hidden_state`` holds token states (zeros at padding); ``pooler_output`` is the mean of the
    real tokens' states: the sentence embedding (normalise it for cosine similarity)."""

    def __init__(self, config: MedEIRConfig):
        super().__init__(config)
        self.embeddings = MedEIREmbeddings(config)
        self.layers = nn.ModuleList([MedEIRLayer(config) for _ in range(config.num_hidden_layers)])
        self.register_buffer("alibi_slopes", self.compute_slopes(config), persistent=False)
        self.gradient_checkpointing = False
        self.post_init()

    @staticmethod
    def compute_slopes(config: MedEIRConfig) -> torch.Tensor:
        """(2, heads): left-context and right-context slopes."""
        slopes = alibi_slopes(config.num_attention_heads)
        right = slopes if config.alibi_mode == "symmetric" else slopes.flip(0)
        return torch.stack([slopes, right])

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def compile_flex_attention(self) -> None:
        """Compile FlexAttention once for all layers (call on CUDA before using ``attn_implementation='flex_attention'``)."""
        from torch.nn.attention.flex_attention import flex_attention

        compiled = torch.compile(flex_attention, dynamic=True)
        for layer in self.layers:
            layer.attention.compiled_flex = compiled

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """``token_type_ids`` and ``position_ids`` are accepted for drop-in compatibility and ignored: the model has
        one segment type and ALiBi needs no positions."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds")
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        if len(shape) != 2:
            raise ValueError(f"Expected a [batch, sequence] input, got shape {tuple(shape)}")
        if input_ids is not None and input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size}), got {input_ids.min()}..{input_ids.max()}")
        if shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"Sequence length {shape[1]} exceeds max_position_embeddings ({self.config.max_position_embeddings});"
                " truncate the input (the tokenizer does so with truncation=True)"
            )
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        elif attention_mask.shape != shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != input shape {tuple(shape)}")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )

        packed = PackedBatch.from_mask(attention_mask)
        hidden = packed.pack(self.embeddings(input_ids, inputs_embeds))  # (tokens, hidden)
        all_hidden = []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(packed.unpack(hidden))
            hidden = layer(hidden, packed, self.alibi_slopes)
        last_hidden_state = packed.unpack(hidden)  # (b, L, hidden)
        if output_hidden_states:
            all_hidden.append(last_hidden_state)
        pooled = mean_pool(last_hidden_state, attention_mask)

        if not return_dict:
            return (last_hidden_state, pooled) + ((tuple(all_hidden),) if output_hidden_states else ())
        return BaseModelOutputWithPooling(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
        )

    @torch.inference_mode()
    def encode(
        self,
        texts: str | list[str],
        batch_size: int = 32,
        max_length: int | None = None,
        normalize: bool = True,
        prefix: str = "",
        convert_to_numpy: bool = True,
        tokenizer=None,
    ):
        """Embed texts: length-sorted batches, mean pooling over real tokens, optional L2 normalisation.

        Returns ``[n, hidden]`` (numpy by default, else a torch tensor on the model's device); a single string gives
        ``[hidden]``. Inputs longer than ``max_length`` (default: ``config.max_position_embeddings``) are truncated.
        The tokenizer is loaded from the model's folder unless given.
        """
        single = isinstance(texts, str)
        texts = [texts] if single else texts
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.name_or_path)
        max_length = min(max_length or self.config.max_position_embeddings, self.config.max_position_embeddings)
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        chunks = []
        for start in range(0, len(order), batch_size):
            batch = [prefix + texts[i] for i in order[start : start + batch_size]]
            inputs = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            out = self(input_ids=inputs["input_ids"].to(self.device), attention_mask=inputs["attention_mask"].to(self.device))
            emb = out.pooler_output.float()
            chunks.append(F.normalize(emb, dim=-1) if normalize else emb)
        self.train(was_training)
        embeddings = torch.cat(chunks) if chunks else torch.empty(0, self.config.hidden_size, device=self.device)
        embeddings = embeddings[torch.argsort(torch.tensor(order, device=embeddings.device))] if chunks else embeddings
        if single:
            embeddings = embeddings[0]
        return embeddings.cpu().numpy() if convert_to_numpy else embeddings


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the states of real tokens: (b, L, h), (b, L) -> (b, h). An all-padding row gives zeros."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class MedEIRLMHead(nn.Module):
    """dense -> activation -> LayerNorm -> decoder tied to the input embeddings."""

    def __init__(self, config: MedEIRConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.act(self.dense(hidden)))) + self.bias


class MedEIRForMaskedLM(MedEIRPreTrainedModel):
    _tied_weights_keys = {"lm_head.decoder.weight": "medeir.embeddings.word_embeddings.weight"}

    def __init__(self, config: MedEIRConfig):
        super().__init__(config)
        self.medeir = MedEIRModel(config)
        self.lm_head = MedEIRLMHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.medeir.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.medeir.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head.decoder = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        """``labels``: token ids at masked positions, -100 elsewhere. Logits are computed only where labels are set
        when labels are given (the usual 15% of tokens), else at every position."""
        out = self.medeir(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden = out.last_hidden_state
        loss = None
        if labels is not None:
            selected = labels != -100
            logits = self.lm_head(hidden[selected])
            loss = F.cross_entropy(logits.float(), labels[selected])
        else:
            logits = self.lm_head(hidden)
        if not (return_dict if return_dict is not None else self.config.return_dict):
            return ((loss,) if loss is not None else ()) + (logits, out.hidden_states)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


MedEIRModel.register_for_auto_class("AutoModel")
MedEIRForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")

__all__ = ["MedEIRPreTrainedModel", "MedEIRModel", "MedEIRForMaskedLM"]
