"""Document-causal attention of packed rows: a FlexAttention block mask or a dense SDPA mask.

A packed row holds several documents (trainer/packing.py); a token attends to earlier tokens of
its own document only. Documents are read from `position_ids`, which restart at 0 at every
document. Two implementations, chosen by `train.attention` (docs/trainer.md):

- `flex`: `torch.nn.attention.flex_attention` with a `BlockMask` from `create_block_mask`
  (mask_mod: causal and same document, the document-causal mask torchtitan uses). Blocks
  wholly outside the mask are skipped and no T x T tensor exists; compiled on CUDA, where it
  is a fused kernel. On CPU it runs eagerly and unfused (slow; used by the tests only).
- `sdpa_dense`: `scaled_dot_product_attention` with a dense boolean mask (batch, 1, T, T). A
  dense mask rules out SDPA's flash kernels and costs T^2 bytes per row; the CPU default and
  the reference the flex path is tested against.

The mask of a micro-batch is built once (`DocumentMask.build`) and shared by every layer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

AttentionKind = Literal["auto", "flex", "sdpa_dense"]
ATTENTION_KINDS: tuple[str, ...] = ("auto", "flex", "sdpa_dense")

FLEX_BLOCK_SIZE = 128  # tokens per side of a BlockMask tile (FlexAttention's kernel tile)


def resolve_attention(kind: str, device: torch.device) -> Literal["flex", "sdpa_dense"]:
    """The implementation `kind` means on `device`: `auto` is flex on CUDA, dense elsewhere."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")
    if kind == "auto":
        return "flex" if device.type == "cuda" else "sdpa_dense"
    return "flex" if kind == "flex" else "sdpa_dense"


def document_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Document number (batch, T) of every token: a new document starts where position_ids
    is 0 (the first token of a row is always a start, so numbers begin at 1)."""
    return torch.cumsum(position_ids == 0, dim=-1)


def document_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """Boolean mask (batch, 1, T, T), True where query t may attend to key s.

    s <= t and both in the same document; a document starts wherever position_ids is 0.
    """
    doc = document_ids(position_ids)
    same_doc = doc[:, :, None] == doc[:, None, :]
    t = position_ids.shape[-1]
    causal = torch.ones(t, t, dtype=torch.bool, device=position_ids.device).tril()
    return (same_doc & causal)[:, None, :, :]


@torch.compiler.disable  # built outside a compiled model's graph (its own compile on CUDA)
def document_block_mask(position_ids: torch.Tensor) -> BlockMask:
    """FlexAttention BlockMask of the document-causal mask of position_ids (batch, T).

    One mask for all heads (H=None). On CUDA, create_block_mask is compiled (_compile=True) so
    the (batch, T, T) mask is evaluated tile by tile and never materialised.
    """
    doc = document_ids(position_ids)
    batch, t = position_ids.shape

    def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return (kv_idx <= q_idx) & (doc[b, q_idx] == doc[b, kv_idx])

    return create_block_mask(
        mask_mod,
        batch,
        None,
        t,
        t,
        device=position_ids.device,
        BLOCK_SIZE=FLEX_BLOCK_SIZE,
        _compile=position_ids.is_cuda,
    )


@functools.cache
def _compiled_flex_attention() -> Any:
    """flex_attention compiled once per process (the fused Triton kernel; without compiling,
    flex_attention materialises the scores)."""
    return torch.compile(flex_attention, dynamic=False)


@dataclass(frozen=True)
class DocumentMask:
    """The attention mask of one micro-batch, built once and passed to every layer.

    Exactly one of `dense` / `block` is set, or neither for a plain causal row.
    """

    kind: Literal["flex", "sdpa_dense"]
    """Which implementation `attend` runs."""
    dense: torch.Tensor | None = None
    """sdpa_dense: boolean (batch, 1, T, T), True where attention is allowed."""
    block: BlockMask | None = None
    """flex: the document-causal BlockMask."""

    @staticmethod
    def build(position_ids: torch.Tensor | None, kind: str) -> DocumentMask:
        """The mask of position_ids (batch, T) for `kind` (auto / flex / sdpa_dense);
        position_ids None: one causal sequence per row (SDPA is_causal, no mask)."""
        if position_ids is None:
            return DocumentMask(resolve_attention(kind, torch.device("cpu")))
        resolved = resolve_attention(kind, position_ids.device)
        if resolved == "flex":
            return DocumentMask(resolved, block=document_block_mask(position_ids))
        return DocumentMask(resolved, dense=document_causal_mask(position_ids))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention output (batch, heads, T, head_dim) of q (batch, heads, T, head_dim) over
        k/v (batch, kv_heads, T, head_dim); kv_heads may divide heads (grouped-query)."""
        gqa = k.shape[1] != q.shape[1]
        if self.block is not None:
            # Inside a compiled model (train.compile) dynamo compiles flex_attention itself;
            # eager on CPU (no fused CPU backward exists)
            eager = torch.compiler.is_compiling() or not q.is_cuda
            fn = flex_attention if eager else _compiled_flex_attention()
            return fn(q, k, v, block_mask=self.block, enable_gqa=gqa)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.dense, is_causal=self.dense is None, enable_gqa=gqa
        )
