"""A Llama-style decoder in one file (the model of DeepSeek-LLM and DeepSeekMath), and its loss.

RMSNorm pre-norm blocks, rotary embeddings in Hugging Face's rotate_half layout (HF weights load
without permutation), grouped-query attention and a SwiGLU MLP. A packed row is masked per
document from `position_ids` (trainer/attention.py: a FlexAttention block mask on GPU, a dense
boolean mask through SDPA on CPU).
`cross_entropy_loss` is the trainer's one loss; labels come already shifted. `KVCache` and
`Transformer.forward_cached` are the incremental-decoding path of the evaluation (docs/eval.md);
the training forward never touches them. docs/trainer.md explains the conventions.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainer.attention import AttentionKind, DocumentMask
from trainer.attention import document_causal_mask as document_causal_mask  # moved; re-exported
from trainer.model_configs import ModelConfig

IGNORE_INDEX = -100  # label of a position without a target (trainer/packing.py writes them)


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 and cast back (as HF's LlamaRMSNorm)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotary_cos_sin(
    position_ids: torch.Tensor, config: ModelConfig, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every position's rotation angles, (batch, T, head_dim), rotate_half layout.

    Computed from position_ids on every call, in float32 (no cached table: position ids restart
    per document, and a table cast to bf16 with the model would lose precision).
    """
    head_dim = config.head_dim
    exponents = torch.arange(0, head_dim, 2, device=position_ids.device).float() / head_dim
    inv_freq = 1.0 / (config.rope_theta**exponents) / config.rope_scaling_factor  # rad / token
    angles = position_ids.float()[..., None] * inv_freq  # (batch, T, head_dim / 2)
    angles = torch.cat((angles, angles), dim=-1)  # channels i, i + head_dim / 2: one angle
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x, (batch, T, heads, head_dim), by the angles of cos/sin, (batch, T, head_dim)."""
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    # Keep x's dtype: under autocast x is bf16 while cos/sin may be float32.
    return (x * cos + rotate_half(x) * sin).to(x.dtype)


class Attention(nn.Module):
    """Grouped-query self-attention: n_heads query heads share n_kv_heads key/value heads."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.wq = nn.Linear(config.dim, config.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(config.dim, config.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(config.dim, config.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * self.head_dim, config.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: DocumentMask,
    ) -> torch.Tensor:
        batch, t, _ = x.shape
        q = self.wq(x).view(batch, t, self.n_heads, self.head_dim)
        k = self.wk(x).view(batch, t, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(batch, t, self.n_kv_heads, self.head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = mask.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)
        return self.wo(out.reshape(batch, t, self.n_heads * self.head_dim))

    def forward_cached(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        start: int,
    ) -> torch.Tensor:
        """Attention of t new tokens at cache slots [start, start + t) over slots [0, start + t).

        keys/values (batch, n_kv_heads, capacity, head_dim) are this layer's preallocated cache:
        the new keys and values are written into them in place. mask (batch, 1, t, start + t)
        is True where a query may attend to a slot (see KVCache.attention_mask).
        """
        batch, t, _ = x.shape
        q = self.wq(x).view(batch, t, self.n_heads, self.head_dim)
        k = self.wk(x).view(batch, t, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(batch, t, self.n_kv_heads, self.head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        end = start + t
        keys[:, :, start:end] = k.transpose(1, 2)
        values[:, :, start:end] = v.transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            keys[:, :, :end],
            values[:, :, :end],
            attn_mask=mask,
            enable_gqa=self.n_kv_heads != self.n_heads,
        ).transpose(1, 2)
        return self.wo(out.reshape(batch, t, self.n_heads * self.head_dim))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x) (Shazeer 2020); w1 is HF's gate_proj, w3 up_proj."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.w3 = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.w2 = nn.Linear(config.intermediate_size, config.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.dim, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: DocumentMask,
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, mask)
        return x + self.feed_forward(self.ffn_norm(x))

    def forward_cached(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        start: int,
    ) -> torch.Tensor:
        """forward() for new tokens whose earlier keys/values are in the cache."""
        h = self.attention_norm(x)
        x = x + self.attention.forward_cached(h, cos, sin, mask, keys, values, start)
        return x + self.feed_forward(self.ffn_norm(x))


class KVCache:
    """Preallocated keys and values of every layer for batched incremental decoding.

    Rows are left-padded: slot j of every row holds the j-th token fed to the model, and
    `valid` (batch, capacity) says which slots hold real tokens (False for the padding on the
    left of shorter prompts). Every row shares one fill level `length`, so a decode step writes
    one slot for all rows. Position ids count only a row's valid tokens (the first real token is
    position 0), which makes a left-padded row compute what it would compute alone.
    """

    def __init__(
        self,
        config: ModelConfig,
        batch: int,
        capacity: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        if capacity > config.max_seq_len:
            raise ValueError(f"cache of {capacity} slots > max_seq_len {config.max_seq_len}")
        shape = (batch, config.n_kv_heads, capacity, config.head_dim)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.values = [
            torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layers)
        ]
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=device)
        self.capacity = capacity
        self.length = 0  # slots filled (the same for every row)

    def append(self, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reserve slots for t new tokens per row; returns (position_ids, mask) for them.

        valid (batch, t): which new tokens are real. position_ids (batch, t): the number of
        valid tokens before each one in its row. mask (batch, 1, t, length + t): query i may
        attend to slot j when j is valid and j <= its own slot; every query also sees its own
        slot, so a padding query never has an empty row (its output is never read).
        """
        t = valid.shape[1]
        start, end = self.length, self.length + t
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} slots needed, capacity {self.capacity}")
        self.valid[:, start:end] = valid
        seen = self.valid[:, :end].long().cumsum(dim=1)  # valid tokens up to each slot
        position_ids = (seen[:, start:end] - 1).clamp(min=0)
        slots = torch.arange(end, device=valid.device)
        query_slots = slots[start:end]
        causal = slots[None, :] <= query_slots[:, None]  # (t, end)
        own = slots[None, :] == query_slots[:, None]
        mask = (causal[None] & self.valid[:, None, :end]) | own[None]
        self.length = end
        return position_ids, mask[:, None]


class Transformer(nn.Module):
    """The decoder: embedding, n_layers blocks, final RMSNorm, output projection to logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.tie_weights()
        self.reset_parameters()

    def tie_weights(self) -> None:
        """With tie_embeddings, make the output projection the embedding matrix itself."""
        if self.config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight

    def reset_parameters(self) -> None:
        """Normal(0, init_std) weights, residual output projections scaled by 1/sqrt(2 layers)."""
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layers)
        for name, param in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(param)
            elif name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
                nn.init.normal_(param, mean=0.0, std=residual_std)
            else:
                nn.init.normal_(param, mean=0.0, std=std)

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attention: AttentionKind = "auto",
    ) -> torch.Tensor:
        """Logits (batch, T, vocab_size) for input_ids (batch, T).

        position_ids (batch, T): position of each token within its document, restarting at 0
        at every document (packing's convention); they set both the rotary angles and the
        document mask. attention: `flex` (FlexAttention block mask), `sdpa_dense` (dense
        boolean mask through SDPA) or `auto` (flex on CUDA, dense otherwise); the mask is
        built once here and shared by every layer (trainer/attention.py).
        """
        batch, t = input_ids.shape
        if t > self.config.max_seq_len:
            raise ValueError(f"sequence of {t} tokens > max_seq_len {self.config.max_seq_len}")
        x = self.tok_embeddings(input_ids)
        mask = DocumentMask.build(position_ids, attention)
        if position_ids is None:
            position_ids = torch.arange(t, device=input_ids.device).expand(batch, t)
        cos, sin = rotary_cos_sin(position_ids, self.config, x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.output(self.norm(x))

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        """An empty KVCache for `batch` rows of up to `capacity` tokens, on the model's device
        and in its dtype."""
        weight = self.tok_embeddings.weight
        return KVCache(self.config, batch, capacity, weight.device, weight.dtype)

    def forward_cached(
        self, input_ids: torch.Tensor, cache: KVCache, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (batch, t, vocab_size) of t new tokens per row, appended to `cache`.

        The prefill passes the left-padded prompts with valid False on the padding; each decode
        step then passes one token per row (valid None: all real). The logits equal those of
        forward() on each row's real tokens alone (tests/trainer/benchmarks/test_generation.py).
        """
        if valid is None:
            valid = torch.ones_like(input_ids, dtype=torch.bool)
        start = cache.length
        position_ids, mask = cache.append(valid)
        x = self.tok_embeddings(input_ids)
        cos, sin = rotary_cos_sin(position_ids, self.config, x.dtype)
        for layer, keys, values in zip(self.layers, cache.keys, cache.values, strict=True):
            x = layer.forward_cached(x, cos, sin, mask, keys, values, start)
        return self.output(self.norm(x))


def cross_entropy_loss(
    logits: torch.Tensor, labels: torch.Tensor, reduction: Literal["mean", "sum"] = "mean"
) -> torch.Tensor:
    """Next-token cross-entropy (nats) over positions whose label is not -100.

    The one loss of the trainer: the training step and the evaluation both call it.
    labels are already shifted (packing's convention); logits are cast to float32 first, so a
    bf16 forward pass still gets a float32 loss. `mean`: per target token; `sum`: summed over
    the target tokens, for callers that divide by a count over several batches or ranks.
    """
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.long().reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction=reduction,
    )
