"""Document-causal attention: the FlexAttention block mask against the dense SDPA mask.

On CPU flex_attention runs eagerly (unfused: it materialises the scores), and torch refuses a
flex backward on CPU outright ("FlexAttention does not support backward on CPU"); the gradient
test lifts that device check so that flex's own eager forward and backward (the math reference
of the flex_attention operator) run on CPU. The fused kernel that runs on GPU is the compiled
one, not exercised here: these tests check the mask_mod, the document ids, the block mask and
GQA, not the Triton kernel.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.attention.flex_attention as flex_module

from trainer.attention import (
    DocumentMask,
    document_block_mask,
    document_causal_mask,
    document_ids,
    resolve_attention,
)
from trainer.model import Transformer, cross_entropy_loss
from trainer.model_configs import get_model_config

# Documents of 37, 1, 150, 60 and 8 tokens; row 2 is one document over a block boundary.
DOC_LENGTHS = ([37, 1, 150, 60, 8], [256])
T = 256  # two FlexAttention blocks of 128


def packed_positions() -> torch.Tensor:
    rows = [torch.cat([torch.arange(n) for n in lengths]) for lengths in DOC_LENGTHS]
    return torch.stack(rows)


def test_document_ids_start_where_position_ids_are_zero() -> None:
    ids = document_ids(torch.tensor([[0, 1, 2, 0, 0, 1]]))
    assert ids.tolist() == [[1, 1, 1, 2, 3, 3]]


def test_block_mask_is_the_dense_mask() -> None:
    positions = packed_positions()
    block = document_block_mask(positions)
    dense = document_causal_mask(positions)[:, 0]
    rebuilt = block.to_dense()  # (batch, 1, q blocks, kv blocks): 1 where a tile is visited
    q = torch.arange(T) // 128
    visited = rebuilt[:, 0][:, q][:, :, q].bool()
    assert not (dense & ~visited).any()  # no allowed pair lies in a skipped tile
    # a tile with no allowed pair is skipped: row 0's documents end before token 128 except
    # the 150-token one, so the (1, 0) tile still has pairs; the (0, 1) tile is acausal
    assert rebuilt[:, 0, 0, 1].sum() == 0


def test_resolve_attention() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_attention("auto", cpu) == "sdpa_dense"
    assert resolve_attention("auto", cuda) == "flex"
    assert resolve_attention("flex", cpu) == "flex"
    assert resolve_attention("sdpa_dense", cuda) == "sdpa_dense"
    with pytest.raises(ValueError, match="attention"):
        resolve_attention("flash", cpu)


@pytest.mark.parametrize("n_kv_heads", [1, 2])  # tiny has 4 query heads: GQA 4:1 and 2:1
def test_flex_matches_dense_outputs_and_gradients(
    n_kv_heads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A packed batch of several documents: the same logits, loss and every parameter's
    gradient through the flex block mask and the dense mask (float32, CPU)."""
    # torch only supports flex backward on CUDA; its eager backward is device-independent
    monkeypatch.setattr(flex_module, "_validate_device", lambda query, key, value: None)
    config = dataclasses.replace(get_model_config("tiny"), n_kv_heads=n_kv_heads, max_seq_len=T)
    torch.manual_seed(0)
    model = Transformer(config)
    positions = packed_positions()
    ids = torch.randint(0, config.vocab_size, positions.shape)
    labels = torch.randint(0, config.vocab_size, positions.shape)
    results = {}
    for kind in ("sdpa_dense", "flex"):
        model.zero_grad()
        logits = model(ids, positions, attention=kind)
        cross_entropy_loss(logits, labels).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results[kind] = (logits.detach(), grads)
    dense_logits, dense_grads = results["sdpa_dense"]
    flex_logits, flex_grads = results["flex"]
    out_diff = (flex_logits - dense_logits).abs().max().item()
    grad_diff = max((flex_grads[n] - dense_grads[n]).abs().max().item() for n in dense_grads)
    print(f"n_kv_heads {n_kv_heads}: max |logits diff| {out_diff:.2e}, |grad diff| {grad_diff:.2e}")
    torch.testing.assert_close(flex_logits, dense_logits, rtol=1e-5, atol=1e-5)
    for name, grad in dense_grads.items():
        torch.testing.assert_close(flex_grads[name], grad, rtol=1e-5, atol=1e-5, msg=name)


def test_flex_keeps_documents_apart() -> None:
    """Changing one document leaves the other documents' logits unchanged under flex."""
    config = dataclasses.replace(get_model_config("tiny"), max_seq_len=T)
    torch.manual_seed(0)
    model = Transformer(config)
    positions = packed_positions()
    ids = torch.randint(0, config.vocab_size, positions.shape)
    changed = ids.clone()
    changed[0, 38:188] = (changed[0, 38:188] + 1) % config.vocab_size  # the 150-token document
    with torch.no_grad():
        before = model(ids, positions, attention="flex")
        after = model(changed, positions, attention="flex")
    torch.testing.assert_close(before[0, :38], after[0, :38])
    torch.testing.assert_close(before[0, 188:], after[0, 188:])
    assert not torch.allclose(before[0, 38:188], after[0, 38:188])


def test_unpacked_rows_need_no_mask() -> None:
    mask = DocumentMask.build(None, "flex")
    assert mask.dense is None and mask.block is None
