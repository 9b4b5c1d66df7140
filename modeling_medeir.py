"""MedEIR: a bidirectional Transformer encoder with ALiBi attention (Hub remote code: torch + transformers only).

Reading order: ALiBi slopes and bias -> padding helpers -> attention backends -> attention, MLP, layer -> pretrained
base -> ``MedEIRModel`` -> ``MedEIRForMaskedLM``. Inside the layers, hidden states are *packed*: the real tokens of
all sequences in a batch, concatenated as ``[tokens, hidden]`` (no compute is spent on padding); ``cu_seqlens`` holds
the cumulative sequence lengths. Each attention backend sees the packed tensors and handles padding its own way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise

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

FLEX_BLOCK_SIZE = 128  # FlexAttention's default tile: the granularity at which its block mask lists what to visit

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
    """ALiBi bias ``[heads, queries, keys]`` in fp32: ``-m_left * |i - j|`` for keys left of the query, ``-m_right *
    |i - j|`` for keys to its right.

    ``slopes`` is ``[2, heads]``: row 0 weighs keys to the left of the query, row 1 keys to the right. Only one
    ``[heads, queries, keys]`` tensor is allocated (the right-hand term is added in place).
    """
    slopes = slopes.float()
    distance = key_pos[None, :].float() - query_pos[:, None].float()  # (q, k), positive = key to the right
    if torch.equal(slopes[0], slopes[1]):  # symmetric: one pass over (h, q, k), the same values as the two below
        return slopes[0, :, None, None] * distance.abs().neg_()
    bias = slopes[0, :, None, None] * distance.clamp(max=0)  # (h, q, k), <= 0 left of the query, 0 right of it
    return bias.addcmul_(slopes[1, :, None, None], distance.clamp(min=0), value=-1.0)


def mask_fill_value(dtype: torch.dtype) -> float:
    """Finite additive value for masked keys: half the dtype's minimum, so adding the ALiBi bias cannot overflow."""
    return torch.finfo(dtype).min / 2


# ----------------------------------------------------------------------------------------------------------------------
# Packing: [batch, seq] <-> [tokens]


@dataclass
class PackedBatch:
    """Where the real tokens of a padded batch live once packed.

    Two padded layouts appear: the *original* one of the inputs (``pack``/``unpack``; padding may sit anywhere, e.g.
    on the left) and a *left-aligned* one of width ``max_seqlen`` in which every sequence starts at position 0
    (``pack_left``/``unpack_left``; what the dense attention backends work on). A sequence's real tokens are taken in
    order and numbered 0, 1, ... whatever padding surrounds them, so left and right padding give the same states.
    """

    indices: torch.Tensor  # (tokens,) flat positions of real tokens in the [batch * seq] layout
    cu_seqlens: torch.Tensor  # (batch + 1,) int32 cumulative lengths
    max_seqlen: int
    num_tokens: int
    batch_size: int
    seq_len: int
    cache: dict = field(default_factory=dict, repr=False)  # per forward pass, shared by all layers (SDPA's ALiBi mask)

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor) -> PackedBatch:
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1, dtype=torch.int32)
        cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
        indices = mask.flatten().nonzero(as_tuple=False).flatten()
        max_seqlen = int(lengths.max().item()) if len(lengths) else 0
        return cls(indices, cu_seqlens, max_seqlen, len(indices), *mask.shape)

    @property
    def has_padding(self) -> bool:
        """Whether the original layout holds any padding (if not, packing is a reshape)."""
        return self.num_tokens != self.batch_size * self.seq_len

    @property
    def is_uniform(self) -> bool:
        """Whether all sequences have the same length (then the left-aligned layout holds no padding)."""
        return self.num_tokens == self.batch_size * self.max_seqlen

    @cached_property
    def bounds(self) -> list[int]:
        """``cu_seqlens`` as Python ints: sequence ``i`` is packed tokens ``bounds[i]:bounds[i + 1]``."""
        return self.cu_seqlens.tolist()

    @cached_property
    def sequence_ids(self) -> torch.Tensor:
        """(tokens,) the sequence each packed token belongs to."""
        lengths = (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).long()
        rows = torch.arange(self.batch_size, device=lengths.device)
        return torch.repeat_interleave(rows, lengths, output_size=self.num_tokens)

    @cached_property
    def positions(self) -> torch.Tensor:
        """(tokens,) each packed token's position inside its own sequence, from 0."""
        starts = self.cu_seqlens[:-1].long()[self.sequence_ids]
        return torch.arange(self.num_tokens, device=starts.device) - starts

    @cached_property
    def flex_block_mask(self):
        """FlexAttention ``BlockMask`` that keeps the packed sequences apart (built once, shared by all layers).

        Worked out per pair of 128-token blocks from the sequence each block starts and ends in, so nothing of size
        ``tokens x tokens`` is ever built: a kv block is visited by a q block when they share a sequence, and skips the
        mask when both lie wholly inside the same one."""
        from torch.nn.attention.flex_attention import BlockMask

        size, tokens, sequence = FLEX_BLOCK_SIZE, self.num_tokens, self.sequence_ids
        starts = torch.arange(0, tokens, size, device=sequence.device)
        first, last = sequence[starts], sequence[(starts + size - 1).clamp(max=tokens - 1)]
        shared = (last[None, :] >= first[:, None]) & (first[None, :] <= last[:, None])  # (q blocks, kv blocks)
        whole = (first == last) & (starts + size <= tokens)  # inside one sequence, and not cut short by the end
        full = whole[:, None] & whole[None, :] & (first[:, None] == first[None, :])

        def same_sequence(b, h, q_idx, kv_idx):
            return sequence[q_idx] == sequence[kv_idx]

        def listed(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(q blocks, kv blocks) bool -> per q block: how many kv blocks, and their indices (those first)."""
            counts = blocks.sum(dim=-1, dtype=torch.int32)
            indices = torch.argsort((~blocks).to(torch.int8), dim=-1, stable=True).to(torch.int32)
            return counts[None, None], indices[None, None]

        partial_blocks, full_blocks = listed(shared & ~full), listed(full)
        return BlockMask.from_kv_blocks(
            *partial_blocks, *full_blocks, BLOCK_SIZE=size, mask_mod=same_sequence, seq_lengths=(tokens, tokens)
        )

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """(batch, seq, ...) in the original layout -> (tokens, ...)"""
        flat = padded.flatten(0, 1)
        return flat[self.indices] if self.has_padding else flat

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(tokens, ...) -> (batch, seq, ...) in the original layout, zeros at padding."""
        if not self.has_padding:
            return packed.view(self.batch_size, self.seq_len, *packed.shape[1:])
        out = packed.new_zeros(self.batch_size * self.seq_len, *packed.shape[1:])
        out[self.indices] = packed
        return out.view(self.batch_size, self.seq_len, *packed.shape[1:])

    def pack_left(self, padded: torch.Tensor) -> torch.Tensor:
        """(batch, max_seqlen, ...) in the left-aligned layout -> (tokens, ...); inverse of ``unpack_left``."""
        if self.is_uniform:
            return padded.flatten(0, 1)
        return padded[self.sequence_ids, self.positions]

    def unpack_left(self, packed: torch.Tensor) -> torch.Tensor:
        """(tokens, ...) -> (batch, max_seqlen, ...), each sequence from position 0, zeros at padding."""
        if self.is_uniform:
            return packed.view(self.batch_size, self.max_seqlen, *packed.shape[1:])
        out = packed.new_zeros(self.batch_size, self.max_seqlen, *packed.shape[1:])
        out[self.sequence_ids, self.positions] = packed
        return out

    def dense_key_mask(self) -> torch.Tensor:
        """(batch, max_seqlen) bool, True at real tokens of the left-aligned layout."""
        lengths = self.cu_seqlens[1:] - self.cu_seqlens[:-1]
        return torch.arange(self.max_seqlen, device=lengths.device)[None, :] < lengths[:, None]


# ----------------------------------------------------------------------------------------------------------------------
# Attention backends. Each takes packed q, k, v of shape (tokens, heads, head_dim) and returns the same shape.


def eager_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """Reference: softmax(q k^T * scale + ALiBi + padding mask) v, in fp32, with the full bias of every head."""
    q, k, v = (packed.unpack_left(t).transpose(1, 2) for t in (q, k, v))  # (b, h, L, d)
    positions = torch.arange(packed.max_seqlen, device=q.device)
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
    """PyTorch SDPA with the ALiBi bias as a float mask, and no compute on padding.

    A batch of equal lengths is one call; otherwise each sequence is attended on its own, over its real tokens only
    (no padded queries, no key-padding mask). See ``alibi_sdpa`` for how the mask is built and bounded.
    """
    if packed.is_uniform:  # (tokens, h, d) -> (b, h, L, d) is a view
        shape = (packed.batch_size, packed.max_seqlen, *q.shape[1:])
        out = alibi_sdpa(module, *(t.view(shape).transpose(1, 2) for t in (q, k, v)), packed, slopes)
        return out.transpose(1, 2).reshape(q.shape)
    outputs = [
        alibi_sdpa(module, *(t[start:end].transpose(0, 1)[None] for t in (q, k, v)), packed, slopes)[0].transpose(0, 1)
        for start, end in pairwise(packed.bounds)
        if end > start
    ]  # each (n, h, d)
    return torch.cat(outputs)


def alibi_sdpa(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """SDPA with ALiBi over ``(n, h, L, d)`` sequences without padding, L <= ``packed.max_seqlen``. Every mask built
    here (fp32 bias plus its cast to the compute dtype) stays under ``config.attention_block_bytes``.

    On CPU no ``L x L`` mask exists: the bias of query i and key j depends on j - i alone, so with the keys (and values)
    in reverse order, j' = L - 1 - j, it depends on i + j', and the ``[heads, L, L]`` mask is a view with strides
    (1, 1) of one row of ``2 * max_seqlen - 1`` biases per head, built once per forward pass (PyTorch's CPU kernels
    read masks through their strides; CUDA's copy such a mask into an aligned ``L x L`` buffer).

    Elsewhere the mask of a length-L sequence is the top-left ``L x L`` corner of the mask of the longest one; when that
    mask fits the budget it is built once per forward pass and shared by all layers and sequences. Otherwise queries
    are processed in blocks whose mask fits: an 8,192-token input never holds its full ``L x L`` bias. Under autograd
    SDPA keeps each block's mask for the backward pass, so the bound holds for inference; train long inputs with
    gradient checkpointing or a CUDA backend.
    """
    heads, length = q.shape[1:3]
    longest = packed.max_seqlen
    bytes_per_entry = 4 + (0 if q.dtype == torch.float32 else q.element_size())
    dropout = module.dropout_p if module.training else 0.0
    if q.device.type == "cpu" and heads * (2 * longest - 1) * bytes_per_entry <= module.block_bytes:
        key = ("sdpa_alibi_row", q.dtype)
        if key not in packed.cache:  # entry t: the bias at distance j - i = (longest - 1) - t
            distance = longest - 1 - torch.arange(2 * longest - 1, device=q.device)
            row = alibi_bias(slopes, torch.zeros(1, device=q.device), distance)[:, 0]  # (h, 2 * longest - 1)
            packed.cache[key] = row.to(q.dtype).contiguous()
        row = packed.cache[key]
        # mask[0, h, i, j'] = row[h, i + j' + longest - length]: the bias at distance (length - 1) - (i + j') = j - i
        mask = row.as_strided((1, heads, length, length), (0, row.stride(0), 1, 1), longest - length)
        k, v = k.flip(2), v.flip(2)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=module.scaling)
    if heads * longest**2 * bytes_per_entry <= module.block_bytes:
        key = ("sdpa_alibi_mask", q.dtype)
        if key not in packed.cache:
            positions = torch.arange(longest, device=q.device)
            packed.cache[key] = alibi_bias(slopes, positions, positions).to(q.dtype)[None]  # (1, h, L, L)
        mask = packed.cache[key][:, :, :length, :length]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=module.scaling)
    block = max(1, min(length, module.block_bytes // (heads * length * bytes_per_entry)))
    positions = torch.arange(length, device=q.device)
    outputs = []
    for start in range(0, length, block):
        mask = alibi_bias(slopes, positions[start : start + block], positions).to(q.dtype)[None]  # (1, h, blk, L)
        outputs.append(
            F.scaled_dot_product_attention(
                q[:, :, start : start + block], k, v, attn_mask=mask, dropout_p=dropout, scale=module.scaling
            )
        )
    return torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]


def alibi_score_mod(slopes: torch.Tensor, symmetric: bool):
    """FlexAttention ``score_mod`` adding the ALiBi bias of (2, heads) ``slopes`` (left, right) at distance
    ``kv_idx - q_idx``. ``symmetric`` (both rows equal) uses ``-slope * |distance|``, the cheaper form inside the
    kernel (measured on an H100: docs/BENCHMARKS.md); otherwise each side has its own slope."""
    left, right = slopes[0].float(), slopes[1].float()
    if symmetric:

        def alibi(score, b, h, q_idx, kv_idx):
            return score - left[h] * (kv_idx - q_idx).abs().float()

        return alibi

    def two_sided(score, b, h, q_idx, kv_idx):
        distance = (kv_idx - q_idx).float()
        return score + torch.where(distance < 0, left[h] * distance, -right[h] * distance)

    return two_sided


def flex_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """FlexAttention over the packed tokens as one sequence: a block mask keeps sequences apart and an ALiBi
    ``score_mod`` adds the bias, so no bias tensor and no padding exist at all (the CUDA fast path; call
    ``MedEIRModel.compile_flex_attention()`` first). FlexAttention has no dropout: attention-probability dropout is
    not applied on this path."""
    from torch.nn.attention.flex_attention import flex_attention

    # The block mask keeps q and kv in one sequence, so packed offsets differ as positions do.
    alibi = alibi_score_mod(slopes, symmetric=module.config.alibi_mode == "symmetric")
    attend = module.compiled_flex or flex_attention
    out = attend(
        q.transpose(0, 1)[None],
        k.transpose(0, 1)[None],
        v.transpose(0, 1)[None],
        score_mod=alibi,
        block_mask=packed.flex_block_mask,
        scale=module.scaling,
    )  # (1, h, tokens, d)
    return out[0].transpose(0, 1)


def flash_attention_forward(
    module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedBatch, slopes: torch.Tensor
) -> torch.Tensor:
    """flash-attn's varlen kernel with its built-in (symmetric) ALiBi: packed in, packed out."""
    try:  # a try block keeps transformers' import check from demanding flash-attn when the model is loaded
        from flash_attn import flash_attn_varlen_func
    except ImportError as error:
        raise ImportError("attn_implementation='flash_attention_2' needs the flash-attn package") from error

    if not torch.equal(slopes[0], slopes[1]):
        raise ValueError("flash_attention_2 supports only alibi_mode='symmetric'")
    cu = packed.cu_seqlens.to(q.device)
    return flash_attn_varlen_func(
        q,
        k,
        v,
        cu,
        cu,
        packed.max_seqlen,
        packed.max_seqlen,
        dropout_p=module.dropout_p if module.training else 0.0,
        softmax_scale=module.scaling,
        causal=False,
        alibi_slopes=slopes[0].to(q.device, torch.float32),
    )


ATTENTION_BACKENDS = {
    "eager": eager_attention_forward,
    "sdpa": sdpa_attention_forward,
    "flex_attention": flex_attention_forward,
    "flash_attention_2": flash_attention_forward,
}


def attention_backend(name: str):
    """The backend function for ``config._attn_implementation``, with a clear error for names MedEIR lacks."""
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"MedEIR has no attention backend {name!r}; choose one of {sorted(ATTENTION_BACKENDS)}")
    return ATTENTION_BACKENDS[name]


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


class MedEIRSelfAttention(nn.Module):
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
        backend = attention_backend(self.config._attn_implementation)
        context = backend(self, q, k, v, packed, slopes) if tokens else q  # (t, h, d); an all-padding batch has none
        return self.out(context.reshape(tokens, self.num_heads * self.head_dim))


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

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        """``set_attn_implementation`` may switch backends on a loaded model: each call looks the backend up anew."""
        return True

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """``PreTrainedModel.save_pretrained``, and the folder's config.json maps AutoConfig, AutoModel and
        AutoModelForMaskedLM to the MedEIR classes whichever class saved it (transformers adds only its own)."""
        module = type(self).__module__.split(".")[-1]
        auto_map = {
            "AutoConfig": f"{type(self.config).__module__.split('.')[-1]}.{type(self.config).__name__}",
            "AutoModel": f"{module}.MedEIRModel",
            "AutoModelForMaskedLM": f"{module}.MedEIRForMaskedLM",
        }
        self.config.auto_map = {**auto_map, **(getattr(self.config, "auto_map", None) or {})}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            # A row slice loses transformers' "already loaded" flag: check it, or loading would zero a trained row.
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
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
        slopes = alibi_slopes(config.num_attention_heads) * config.alibi_slope_scale
        right = slopes if config.alibi_mode == "symmetric" else slopes.flip(0)
        return torch.stack([slopes, right])

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def compile_flex_attention(self) -> None:
        """Compile FlexAttention once for all layers (on CUDA, before ``attn_implementation="flex_attention"``)."""
        from torch.nn.attention.flex_attention import flex_attention

        compiled = torch.compile(flex_attention, dynamic=True)
        for layer in self.layers:
            layer.attention.compiled_flex = compiled

    def _checked_attention_mask(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, inputs_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        """Validate the inputs with messages that say what is wrong; return the mask (all ones if none was given)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds")
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, sequence], got shape {tuple(input_ids.shape)}")
        hidden_size = self.config.hidden_size
        if inputs_embeds is not None and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != hidden_size):
            raise ValueError(
                f"inputs_embeds must be [batch, sequence, {hidden_size}], got shape {tuple(inputs_embeds.shape)}"
            )
        reference = input_ids if input_ids is not None else inputs_embeds
        shape = reference.shape[:2]
        if input_ids is not None and input_ids.numel():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.config.vocab_size:
                raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size}), got values in [{low}, {high}]")
        if shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"Sequence length {shape[1]} exceeds max_position_embeddings ({self.config.max_position_embeddings});"
                " truncate the input (the tokenizer does so with truncation=True)"
            )
        if attention_mask is None:
            return torch.ones(shape, dtype=torch.long, device=reference.device)
        if attention_mask.shape != shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != input shape {tuple(shape)}")
        return attention_mask

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
        attention_mask = self._checked_attention_mask(input_ids, attention_mask, inputs_embeds)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )

        slopes = self.alibi_slopes
        if slopes.dtype != torch.float32:  # model.to(bf16) casts buffers too: rebuild the exact slopes
            slopes = self.compute_slopes(self.config).to(slopes.device)

        packed = PackedBatch.from_mask(attention_mask)
        hidden = packed.pack(self.embeddings(input_ids, inputs_embeds))  # (tokens, hidden)
        all_hidden = []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(packed.unpack(hidden))
            hidden = layer(hidden, packed, slopes)
        last_hidden_state = packed.unpack(hidden)  # (b, L, hidden)
        if output_hidden_states:
            all_hidden.append(last_hidden_state)
        pooled = mean_pool(last_hidden_state, attention_mask)

        output = BaseModelOutputWithPooling(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()

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
            if not self.name_or_path:
                raise ValueError("This model was not loaded from a folder: pass tokenizer=")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.name_or_path, trust_remote_code=True)
        max_length = min(max_length or self.config.max_position_embeddings, self.config.max_position_embeddings)
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        chunks = []
        for start in range(0, len(order), batch_size):
            batch = [prefix + texts[i] for i in order[start : start + batch_size]]
            inputs = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            ids, mask = inputs["input_ids"].to(self.device), inputs["attention_mask"].to(self.device)
            out = self(input_ids=ids, attention_mask=mask)
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
        when labels are given (only the masked share of tokens), else at every position."""
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
        output = MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


MedEIRModel.register_for_auto_class("AutoModel")
MedEIRForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")

__all__ = ["MedEIRPreTrainedModel", "MedEIRModel", "MedEIRForMaskedLM"]
