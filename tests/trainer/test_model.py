"""The Llama-style decoder: shapes, causality, document masking, GQA, learning, configs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer import packing
from trainer.attention import DocumentMask
from trainer.model import (
    Attention,
    Transformer,
    apply_rotary,
    cross_entropy_loss,
    document_causal_mask,
    rotary_cos_sin,
)
from trainer.model_configs import (
    MODEL_CONFIGS,
    ModelConfig,
    flops_per_token,
    get_model_config,
    num_params,
)

TINY = get_model_config("tiny")


def tiny_model(seed: int = 0, **changes) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(dataclasses.replace(TINY, **changes)).eval()


def test_forward_shapes_and_index_dtypes() -> None:
    model = tiny_model()
    ids = torch.randint(0, TINY.vocab_size, (3, 17))
    logits = model(ids)
    assert logits.shape == (3, 17, TINY.vocab_size)
    torch.testing.assert_close(model(ids.int()), logits)  # packing hands out int32
    positions = torch.arange(17).expand(3, 17).int()
    torch.testing.assert_close(model(ids, positions), logits)  # one document == plain causal


def test_too_long_a_sequence_is_refused() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, TINY.max_seq_len + 1, dtype=torch.long))


@torch.no_grad()
def test_causal_future_tokens_do_not_change_earlier_logits() -> None:
    model = tiny_model()
    ids = torch.randint(0, TINY.vocab_size, (2, 24))
    changed = ids.clone()
    changed[:, 15:] = (changed[:, 15:] + 1) % TINY.vocab_size
    before, after = model(ids), model(changed)
    torch.testing.assert_close(before[:, :15], after[:, :15])
    assert not torch.allclose(before[:, 15:], after[:, 15:])


@torch.no_grad()
def test_packed_document_sees_only_itself() -> None:
    """Logits of document 2 in a packed row equal those of document 2 run alone from 0."""
    model = tiny_model()
    torch.manual_seed(1)
    docs = [torch.randint(0, TINY.vocab_size, (n,)) for n in (7, 11, 5)]
    ids = torch.cat(docs)[None]
    positions = torch.cat([torch.arange(len(d)) for d in docs])[None]
    packed = model(ids, positions)
    alone = model(docs[1][None])
    torch.testing.assert_close(packed[0, 7:18], alone[0])
    # Without the positions the row is one document, so document 2 sees document 1.
    assert not torch.allclose(model(ids)[0, 7:18], alone[0])


def test_document_mask_is_block_diagonal_causal() -> None:
    positions = torch.tensor([[0, 1, 2, 0, 1, 0]])
    mask = document_causal_mask(positions)[0, 0].long()
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 1, 1, 0],
            [0, 0, 0, 0, 0, 1],
        ]
    )
    torch.testing.assert_close(mask, expected)


@pytest.mark.parametrize("kind", ["sdpa_dense", "flex"])
@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
@torch.no_grad()
def test_grouped_query_attention_matches_repeated_kv_heads(n_kv_heads: int, kind: str) -> None:
    """Query head h uses key/value head h // (n_heads / n_kv_heads), as in HF's repeat_kv,
    with both document-mask implementations (flex: eager on CPU)."""
    config = dataclasses.replace(TINY, n_kv_heads=n_kv_heads)
    torch.manual_seed(0)
    attention = Attention(config)
    x = torch.randn(2, 9, config.dim)
    positions = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 4]] * 2)
    cos, sin = rotary_cos_sin(positions, config, x.dtype)
    mask = document_causal_mask(positions)
    out = attention(x, cos, sin, DocumentMask.build(positions, kind))

    b, t, hd = 2, 9, config.head_dim
    q = apply_rotary(attention.wq(x).view(b, t, config.n_heads, hd), cos, sin).transpose(1, 2)
    k = apply_rotary(attention.wk(x).view(b, t, n_kv_heads, hd), cos, sin).transpose(1, 2)
    v = attention.wv(x).view(b, t, n_kv_heads, hd).transpose(1, 2)
    group = config.n_heads // n_kv_heads
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) / hd**0.5
    weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    expected = attention.wo((weights @ v).transpose(1, 2).reshape(b, t, config.dim))
    torch.testing.assert_close(out, expected)


def test_loss_decreases_on_a_repeated_packed_batch() -> None:
    """Train on one packed batch from trainer.packing (int32 arrays, -100 labels) a few steps."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, size=12)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = rng.integers(1, TINY.vocab_size, size=offsets[-1], dtype=np.int32)
    batch = packing.pack_best_fit(tokens, offsets, 64, pad_id=0)
    ids, labels, positions = (
        torch.from_numpy(a) for a in (batch.input_ids, batch.labels, batch.position_ids)
    )
    model = tiny_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = cross_entropy_loss(model(ids, positions), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(np.log(TINY.vocab_size), rel=0.1)  # starts near uniform
    assert losses[-1] < 0.7 * losses[0]


def test_loss_ignores_minus_100() -> None:
    logits = torch.randn(1, 4, 10)
    labels = torch.tensor([[3, -100, 5, -100]], dtype=torch.int32)
    expected = F.cross_entropy(logits[0, [0, 2]], torch.tensor([3, 5]))
    torch.testing.assert_close(cross_entropy_loss(logits, labels), expected)


def test_summed_loss_is_the_mean_times_the_targets() -> None:
    """The training step and the evaluation sum the loss and divide by a count of their own."""
    logits = torch.randn(2, 5, 10)
    labels = torch.tensor([[3, -100, 5, 1, -100], [0, 2, -100, -100, 9]])
    summed = cross_entropy_loss(logits, labels, reduction="sum")
    torch.testing.assert_close(summed, cross_entropy_loss(logits, labels) * 6)


def test_tied_embeddings_share_one_matrix() -> None:
    model = tiny_model(tie_embeddings=True)
    assert model.output.weight is model.tok_embeddings.weight
    assert sum(p.numel() for p in model.parameters()) == num_params(model.config)


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_num_params_matches_the_model(name: str) -> None:
    config = MODEL_CONFIGS[name]
    with torch.device("meta"):  # shapes only: no memory for the 7B
        model = Transformer(config)
    assert sum(p.numel() for p in model.parameters()) == num_params(config)


def test_published_sizes() -> None:
    """DeepSeek-LLM 7B has 6.9B parameters (DeepSeek-LLM paper, Table 2 and model card)."""
    assert num_params(get_model_config("deepseek-llm-7b")) == pytest.approx(6.91e9, rel=0.01)
    assert num_params(get_model_config("deepseek-coder-1.3b")) == pytest.approx(1.35e9, rel=0.01)
    seven = get_model_config("deepseek-llm-7b")
    n = num_params(seven, include_embedding=False)
    assert flops_per_token(seven, 4096) == 6 * n + 12 * 30 * 4096 * 4096


def test_config_lists_every_problem_at_once() -> None:
    with pytest.raises(ValueError) as error:
        ModelConfig(vocab_size=0, dim=66, n_layers=2, n_heads=4, n_kv_heads=3, intermediate_size=8)
    message = str(error.value)
    assert "3 problem(s)" in message
    assert "vocab_size" in message and "multiple of n_heads" in message
    assert "multiple of n_kv_heads" in message


def test_unknown_config_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="deepseek-llm-7b"):
        get_model_config("llama-9000")
