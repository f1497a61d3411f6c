"""The KV-cache decoding path of trainer/model.py and the greedy decoder of
trainer/benchmarks/generation.py, checked against the full forward on small random models."""

from __future__ import annotations

import pytest
import torch

from trainer.benchmarks.generation import (
    EvalModel,
    cut_at_stop,
    greedy_generate,
    greedy_generate_uncached,
)
from trainer.model import Transformer
from trainer.model_configs import ModelConfig


def random_model(n_kv_heads: int = 2, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=97,
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=n_kv_heads,
        intermediate_size=64,
        max_seq_len=64,
        init_std=0.2,  # larger than training's 0.02, so argmaxes are not all the same token
    )
    return Transformer(config).eval()


def prompts(seed: int = 1) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 97, (n,), generator=gen).tolist() for n in (5, 11, 1, 8)]


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_cached_logits_equal_the_full_forward(n_kv_heads: int) -> None:
    model = random_model(n_kv_heads)
    rows = prompts()
    new_tokens = torch.randint(0, 97, (len(rows), 6), generator=torch.Generator().manual_seed(2))
    longest = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    valid = torch.zeros(len(rows), longest, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, longest - len(r) :] = torch.tensor(r)
        valid[i, longest - len(r) :] = True
    with torch.no_grad():
        cache = model.new_cache(len(rows), longest + new_tokens.shape[1])
        prefill = model.forward_cached(ids, cache, valid)
        steps = [model.forward_cached(new_tokens[:, j : j + 1], cache)[:, 0] for j in range(6)]
        for i, r in enumerate(rows):
            full = model(torch.tensor([r + new_tokens[i].tolist()]))[0]
            torch.testing.assert_close(
                prefill[i, longest - len(r) :], full[: len(r)], atol=1e-5, rtol=0
            )
            for j, step in enumerate(steps):
                torch.testing.assert_close(step[i], full[len(r) + j], atol=1e-5, rtol=0)


def test_batched_cached_greedy_equals_the_uncached_decode() -> None:
    model = random_model()
    rows = prompts()
    cached = greedy_generate(model, rows, max_new_tokens=20)
    for row, out in zip(rows, cached, strict=True):
        assert out == greedy_generate_uncached(model, row, max_new_tokens=20)
    assert all(len(o) == 20 for o in cached)


def test_rows_stop_at_eos_and_at_the_stop_check() -> None:
    model = random_model()
    rows = prompts()
    free = greedy_generate(model, rows, max_new_tokens=12)
    eos = free[0][3]  # the 4th token of row 0 becomes an eos id
    stopped = greedy_generate(model, rows, max_new_tokens=12, eos_ids=[eos])
    assert stopped[0] == free[0][: free[0].index(eos) + 1]
    for full, out in zip(free, stopped, strict=True):  # every row: cut after its first eos
        assert out == (full[: full.index(eos) + 1] if eos in full else full)
    by_check = greedy_generate(
        model, rows, max_new_tokens=12, should_stop=lambda r, g: len(g) >= 2 + r
    )
    assert [len(o) for o in by_check] == [2, 3, 4, 5]
    assert by_check[1] == free[1][:3]


def test_cut_at_stop() -> None:
    assert cut_at_stop("x = 3.\n\nQ: next", ["Q:", "\n\n"]) == "x = 3."
    assert cut_at_stop("no stop here", ["Q:"]) == "no stop here"


class _ByteTokenizer:
    """A stand-in for tokenizers.Tokenizer: one token per byte (ids 0-96 wrap)."""

    class _Encoding:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids

    def encode(self, text: str, add_special_tokens: bool = False) -> _Encoding:
        return self._Encoding([b % 97 for b in text.encode()])

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(32 + i % 90) for i in ids)


def test_eval_model_loglikelihood_matches_a_direct_computation() -> None:
    model = random_model()
    lm = EvalModel(model, _ByteTokenizer(), batch_size=2)  # type: ignore[arg-type]
    requests = [("Question: 2+2\nAnswer:", " 4"), ("ab", "cdef"), ("x" * 100, "yz")]
    scores = lm.loglikelihood(requests)
    for (ctx, cont), score in zip(requests, scores, strict=True):
        c, t = lm.encode(ctx.rstrip(" ")), lm.encode(ctx[len(ctx.rstrip(" ")) :] + cont)
        seq = (c + t)[-64:]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([seq]))[0].float(), -1)
        expected = sum(float(logp[len(seq) - len(t) - 1 + k, tok]) for k, tok in enumerate(t))
        assert score.tokens == len(t)
        assert score.logprob == pytest.approx(expected, abs=1e-4)
    assert lm.truncated == 1  # the 100-byte context was cut to the window
    texts = lm.generate(["abc", "hello"], stop=[], max_new_tokens=5)
    assert [len(t) for t in texts] == [5, 5]
