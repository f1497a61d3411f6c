"""bench/gpu_attention.py (the FlexAttention vs dense-mask GPU benchmark) refuses a machine
without CUDA with a clear message, before building anything. The benchmark itself is GPU-only
and not run by the tests."""

from __future__ import annotations

import pytest
import torch

from bench import gpu_attention


def test_refuses_cleanly_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        gpu_attention.main(["--steps", "1"])


def test_synthetic_rows_hold_several_documents() -> None:
    docs = gpu_attention.synthetic_documents(32 * 512, vocab_size=1000, seed=0)
    ids, labels, positions = gpu_attention.packed_rows(docs, seq_len=512, rows=4)
    assert ids.shape == labels.shape == positions.shape == (4, 512)
    assert (positions == 0).sum() > 4  # documents per row > 1 on average
