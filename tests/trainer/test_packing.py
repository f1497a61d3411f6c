"""Packing: Numba agrees with the pure-Python reference, and the output keeps its promises."""

from __future__ import annotations

import numpy as np
import pytest

from trainer import packing, packing_reference
from trainer.packing import IGNORE_INDEX, PackedSequences

PAD = 0
ALGORITHMS = {
    "best_fit": (packing.pack_best_fit, packing_reference.pack_best_fit),
    "concat": (packing.pack_concat, packing_reference.pack_concat),
}
PLANS = {
    "best_fit": (packing.plan_best_fit, packing_reference.plan_best_fit),
    "concat": (packing.plan_concat, packing_reference.plan_concat),
}
PACKED_FIELDS = ("input_ids", "labels", "position_ids", "cu_seqlens", "cu_seqlens_offsets")
PLAN_FIELDS = ("chunk_doc", "chunk_start", "chunk_len", "seq_offsets")


def offsets_of(lengths: np.ndarray, first: int = 0) -> np.ndarray:
    return np.concatenate([[first], first + np.cumsum(lengths)]).astype(np.int64)


def unique_buffer(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tokens 1..n (every token its own id, 0 left for the pad) and their doc offsets."""
    offsets = offsets_of(lengths)
    return np.arange(1, offsets[-1] + 1, dtype=np.int32), offsets


def lognormal_lengths(rng: np.random.Generator, n: int, median: float = 600.0) -> np.ndarray:
    """Web-like document lengths (tokens): lognormal, sigma 1 (mean about 1.65 x median)."""
    return np.maximum(1, np.rint(rng.lognormal(np.log(median), 1.0, n))).astype(np.int64)


def random_cases(seed: int, count: int) -> list[tuple[np.ndarray, int]]:
    """(lengths, seq_len) pairs: short and long documents, empty ones, lengths == L."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        seq_len = int(rng.integers(1, 150))
        if i % 3 == 0:  # many short documents: lots of bins shared
            lengths = rng.integers(0, seq_len // 3 + 2, size=int(rng.integers(0, 120)))
        else:  # up to 3 L: some documents are split
            lengths = rng.integers(0, 3 * seq_len + 1, size=int(rng.integers(0, 40)))
        if i % 5 == 0 and lengths.size:
            lengths[0] = seq_len
        cases.append((lengths.astype(np.int64), seq_len))
    return cases


def assert_same_packed(a: PackedSequences, b: PackedSequences) -> None:
    for field in PACKED_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.seq_len, a.n_real_tokens) == (b.seq_len, b.n_real_tokens)


def segments(packed: PackedSequences, row: int) -> list[tuple[int, int]]:
    bounds = packed.sequence_cu_seqlens(row)
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


# ---------------------------------------------------------------------------------------------
# Numba == reference


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_numba_matches_reference_on_random_buffers(algorithm: str) -> None:
    fast, reference = ALGORITHMS[algorithm]
    rng = np.random.default_rng(7)
    for lengths, seq_len in random_cases(seed=11, count=300):
        offsets = offsets_of(lengths)
        tokens = rng.integers(0, 50_000, size=offsets[-1], dtype=np.int32)
        assert_same_packed(
            fast(tokens, offsets, seq_len, PAD), reference(tokens, offsets, seq_len, PAD)
        )


@pytest.mark.parametrize("algorithm", sorted(PLANS))
@pytest.mark.parametrize("seq_len", [63, 64, 65, 4095, 4096, 4097, 70_000])
def test_plans_match_reference_across_bitset_levels(algorithm: str, seq_len: int) -> None:
    """Capacities 1..L need 1 (L <= 64), 2 (<= 4096) or 3 (<= 262144) bitset levels."""
    fast, reference = PLANS[algorithm]
    rng = np.random.default_rng(seq_len)
    lengths = np.concatenate(
        [
            rng.integers(1, seq_len + 1, size=150),
            rng.integers(1, max(2, seq_len // 20), size=600),
            [seq_len, 2 * seq_len, seq_len + 1, 0],
        ]
    )
    rng.shuffle(lengths)
    offsets = offsets_of(lengths)
    a, b = fast(offsets, seq_len), reference(offsets, seq_len)
    for field in PLAN_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_best_fit_matches_reference_on_a_realistic_buffer() -> None:
    lengths = lognormal_lengths(np.random.default_rng(3), 20_000)
    offsets = offsets_of(lengths)
    a = packing.plan_best_fit(offsets, 4096)
    b = packing_reference.plan_best_fit(offsets, 4096)
    for field in PLAN_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_edge_cases_match_reference(algorithm: str) -> None:
    fast, reference = ALGORITHMS[algorithm]
    cases = [
        (np.zeros(0, np.int32), np.array([0]), 8),  # no documents
        (np.zeros(0, np.int32), np.array([0, 0, 0]), 8),  # only empty documents
        (np.arange(1, 9, dtype=np.int32), np.array([0, 8]), 8),  # exactly L
        (np.arange(1, 10, dtype=np.int32), np.array([0, 9]), 8),  # L + 1
        (np.arange(1, 6, dtype=np.int32), np.array([0, 2, 5]), 1),  # L = 1
        (np.arange(1, 12, dtype=np.int32), np.array([3, 5, 9]), 4),  # a slice of a larger buffer
    ]
    for tokens, offsets, seq_len in cases:
        assert_same_packed(
            fast(tokens, offsets, seq_len, PAD), reference(tokens, offsets, seq_len, PAD)
        )


def test_packing_is_deterministic() -> None:
    lengths = lognormal_lengths(np.random.default_rng(5), 3_000, median=200)
    tokens, offsets = unique_buffer(lengths)
    assert_same_packed(
        packing.pack_best_fit(tokens, offsets, 1024, PAD),
        packing.pack_best_fit(tokens.copy(), offsets.copy(), 1024, PAD),
    )


# ---------------------------------------------------------------------------------------------
# What the output promises (on both algorithms)


@pytest.fixture(scope="module")
def realistic() -> tuple[np.ndarray, np.ndarray, int]:
    """3,000 web-like documents (median 300 tokens) and L = 1024, so some exceed L."""
    lengths = lognormal_lengths(np.random.default_rng(2024), 3_000, median=300)
    tokens, offsets = unique_buffer(lengths)
    return tokens, offsets, 1024


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_token_appears_exactly_once(realistic, algorithm: str) -> None:
    tokens, offsets, seq_len = realistic
    packed = ALGORITHMS[algorithm][0](tokens, offsets, seq_len, PAD)
    real = packed.input_ids[packed.input_ids != PAD]
    np.testing.assert_array_equal(np.sort(real), tokens)  # ids are unique: nothing lost or doubled
    assert packed.n_real_tokens == tokens.size
    doc_of_token = np.searchsorted(offsets, tokens - 1, side="right") - 1
    for row in range(packed.n_sequences):
        for start, end in segments(packed, row):
            ids = packed.input_ids[row, start:end]
            if ids[0] == PAD:  # the pad segment: pads only, and it is the row's last segment
                assert (ids == PAD).all() and end == seq_len
                continue
            # A segment is one contiguous slice of one document.
            np.testing.assert_array_equal(np.diff(ids), 1)
            assert doc_of_token[ids[0] - 1] == doc_of_token[ids[-1] - 1]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_positions_restart_and_labels_stop_at_every_boundary(realistic, algorithm: str) -> None:
    tokens, offsets, seq_len = realistic
    packed = ALGORITHMS[algorithm][0](tokens, offsets, seq_len, PAD)
    assert packed.input_ids.shape == (packed.n_sequences, seq_len)
    for row in range(packed.n_sequences):
        bounds = packed.sequence_cu_seqlens(row)
        assert bounds[0] == 0 and bounds[-1] == seq_len
        for start, end in segments(packed, row):
            ids = packed.input_ids[row, start:end]
            np.testing.assert_array_equal(
                packed.position_ids[row, start:end], np.arange(end - start)
            )
            labels = packed.labels[row, start:end]
            if ids[0] == PAD:
                assert (labels == IGNORE_INDEX).all()
            else:
                np.testing.assert_array_equal(labels[:-1], ids[1:])
                assert labels[-1] == IGNORE_INDEX  # never predicts the next segment's first token
        # Segments start exactly where position_ids is 0 (what the model's mask relies on).
        np.testing.assert_array_equal(np.flatnonzero(packed.position_ids[row] == 0), bounds[:-1])


def test_best_fit_splits_only_documents_longer_than_l(realistic) -> None:
    _, offsets, seq_len = realistic
    lengths = np.diff(offsets)
    best = packing.plan_best_fit(offsets, seq_len)
    concat = packing.plan_concat(offsets, seq_len)
    assert best.chunk_len.max() <= seq_len
    assert best.n_split_docs == int((lengths > seq_len).sum())

    def cut_short_docs(plan: packing.PackingPlan) -> int:
        """Documents of at most L tokens that the plan still cut."""
        pieces = np.bincount(plan.chunk_doc, minlength=lengths.size)
        return int(((pieces > 1) & (lengths <= seq_len)).sum())

    assert cut_short_docs(best) == 0
    assert cut_short_docs(concat) > concat.n_sequences / 2


def test_fill_rate_on_a_realistic_length_distribution() -> None:
    """Lognormal lengths, median 600, L = 4096 (the bench's setting, 20k documents).

    Best-fit keeps concatenate-and-split's fill rate (>= 99%) while cutting only the documents
    that cannot fit (> L); concatenation cuts about one document per sequence, and giving every
    document its own sequence (no cuts beyond > L) fills only about a quarter of the tokens.
    """
    seq_len = 4096
    lengths = lognormal_lengths(np.random.default_rng(600), 20_000)
    offsets = offsets_of(lengths)
    best = packing.plan_best_fit(offsets, seq_len)
    concat = packing.plan_concat(offsets, seq_len)
    one_per_sequence = lengths.sum() / (np.ceil(lengths / seq_len).sum() * seq_len)
    print(
        f"fill rate: best-fit {best.fill_rate:.4f}, concat {concat.fill_rate:.4f}, "
        f"one doc per sequence {one_per_sequence:.4f}; documents cut: best-fit "
        f"{best.n_split_docs}, concat {concat.n_split_docs} of {lengths.size}"
    )
    assert best.fill_rate >= 0.99
    assert concat.fill_rate >= 0.999
    assert one_per_sequence < 0.5
    assert best.n_split_docs == int((lengths > seq_len).sum())
    assert concat.n_split_docs > 0.8 * concat.n_sequences


def test_batch_cu_seqlens_joins_rows_with_offsets() -> None:
    tokens = np.arange(1, 12, dtype=np.int32)
    offsets = np.array([0, 3, 5, 11])  # lengths 3, 2, 6 with L = 8: bins {6, 2} and {3} + pad
    packed = packing.pack_best_fit(tokens, offsets, 8, PAD)
    np.testing.assert_array_equal(packed.sequence_cu_seqlens(0), [0, 6, 8])
    np.testing.assert_array_equal(packed.sequence_cu_seqlens(1), [0, 3, 8])
    cu, max_len = packing.batch_cu_seqlens(packed, np.array([1, 0]))
    np.testing.assert_array_equal(cu, [0, 3, 8, 14, 16])
    assert cu.dtype == np.int32 and max_len == 6


def test_uint32_tokens_are_accepted() -> None:
    tokens = np.arange(1, 21, dtype=np.uint32)
    offsets = np.array([0, 7, 20])
    a = packing.pack_best_fit(tokens, offsets, 16, PAD)
    b = packing.pack_best_fit(tokens.astype(np.int32), offsets, 16, PAD)
    assert_same_packed(a, b)


@pytest.mark.parametrize(
    ("tokens", "offsets", "seq_len", "message"),
    [
        (np.arange(10), np.array([0, 6, 4, 10]), 8, "non-decreasing"),
        (np.arange(10), np.array([0, 11]), 8, "past the 10 tokens"),
        (np.arange(10), np.array([-1, 10]), 8, ">= 0"),
        (np.arange(10), np.array([0, 10]), 0, "positive"),
        (np.arange(10) - 5, np.array([0, 10]), 8, "0..2\\*\\*31-1"),
        (np.arange(10), np.array([[0, 10]]), 8, "1-D"),
    ],
)
def test_bad_input_is_a_clear_error(tokens, offsets, seq_len, message) -> None:
    with pytest.raises(ValueError, match=message):
        packing.pack_best_fit(tokens, offsets, seq_len, PAD)
