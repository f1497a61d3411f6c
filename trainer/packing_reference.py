"""Pure-Python reference of trainer/packing.py: the same algorithms, written to be read.

Plain lists, `sorted` and `bisect`; the tests check that the Numba version agrees with it
exactly, and bench/packing_throughput.py uses it as the speed baseline.
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np

from trainer.packing import (
    IGNORE_INDEX,
    PackedSequences,
    PackingPlan,
    as_int32_tokens,
    check_doc_offsets,
    check_seq_len,
)

Chunk = tuple[int, int, int]
"""(document index, offset of the first token in `tokens`, length in tokens)."""


def split_into_chunks(doc_offsets: list[int], seq_len: int) -> list[Chunk]:
    """Each document as chunks of seq_len tokens, the last one shorter (Ding et al. sec. 3)."""
    chunks: list[Chunk] = []
    for doc, (start, end) in enumerate(itertools.pairwise(doc_offsets)):
        for chunk_start in range(start, end, seq_len):
            chunks.append((doc, chunk_start, min(seq_len, end - chunk_start)))
    return chunks


def best_fit_bins(chunks: list[Chunk], seq_len: int) -> list[list[int]]:
    """Chunk indices per bin, by best-fit decreasing.

    Chunks go longest first (`sorted` is stable: equal lengths keep their order). Each goes into
    the open bin with the least room that still fits it; among bins with that same room, the one
    that reached it last (a stack per amount of room). No bin fits: open a new one.
    """
    order = sorted(range(len(chunks)), key=lambda i: -chunks[i][2])
    bins: list[list[int]] = []
    stacks: dict[int, list[int]] = {}  # room (tokens) -> bins with exactly that room
    rooms: list[int] = []  # sorted rooms that have at least one bin
    for i in order:
        size = chunks[i][2]
        k = bisect.bisect_left(rooms, size)
        if k == len(rooms):
            bin_id, room = len(bins), seq_len
            bins.append([])
        else:
            room = rooms[k]
            bin_id = stacks[room].pop()
            if not stacks[room]:
                del stacks[room]
                del rooms[k]
        bins[bin_id].append(i)
        rest = room - size
        if rest > 0:
            if rest not in stacks:
                stacks[rest] = []
                bisect.insort(rooms, rest)
            stacks[rest].append(bin_id)
    return bins


def concat_bins(doc_offsets: list[int], seq_len: int) -> tuple[list[Chunk], list[list[int]]]:
    """Documents end to end, cut every seq_len tokens: (chunks, chunk indices per sequence)."""
    chunks: list[Chunk] = []
    bins: list[list[int]] = [[]]
    used = 0
    for doc, (start, end) in enumerate(itertools.pairwise(doc_offsets)):
        while start < end:
            n = min(seq_len - used, end - start)
            bins[-1].append(len(chunks))
            chunks.append((doc, start, n))
            start += n
            used += n
            if used == seq_len:
                bins.append([])
                used = 0
    if not bins[-1]:
        bins.pop()
    return chunks, bins


def _to_plan(chunks: list[Chunk], bins: list[list[int]], seq_len: int) -> PackingPlan:
    placed = [chunks[i] for members in bins for i in members]
    columns = np.asarray(placed, dtype=np.int64).reshape(-1, 3)
    seq_offsets = np.concatenate([[0], np.cumsum([len(m) for m in bins])]).astype(np.int64)
    return PackingPlan(
        chunk_doc=columns[:, 0].copy(),
        chunk_start=columns[:, 1].copy(),
        chunk_len=columns[:, 2].copy(),
        seq_offsets=seq_offsets,
        seq_len=seq_len,
    )


def plan_best_fit(doc_offsets: np.ndarray, seq_len: int) -> PackingPlan:
    check_seq_len(seq_len)
    offsets = check_doc_offsets(doc_offsets).tolist()
    chunks = split_into_chunks(offsets, seq_len)
    return _to_plan(chunks, best_fit_bins(chunks, seq_len), int(seq_len))


def plan_concat(doc_offsets: np.ndarray, seq_len: int) -> PackingPlan:
    check_seq_len(seq_len)
    chunks, bins = concat_bins(check_doc_offsets(doc_offsets).tolist(), seq_len)
    return _to_plan(chunks, bins, int(seq_len))


def materialize(tokens: np.ndarray, plan: PackingPlan, pad_id: int) -> PackedSequences:
    """Lay each sequence's chunks out from position 0, then one pad segment up to seq_len."""
    ids = as_int32_tokens(tokens).tolist()
    seq_len = plan.seq_len
    rows_ids: list[list[int]] = []
    rows_labels: list[list[int]] = []
    rows_pos: list[list[int]] = []
    cu_seqlens: list[int] = []
    cu_offsets = [0]
    for s in range(plan.n_sequences):
        row_ids: list[int] = []
        row_labels: list[int] = []
        row_pos: list[int] = []
        bounds = [0]
        for c in range(plan.seq_offsets[s], plan.seq_offsets[s + 1]):
            start, n = int(plan.chunk_start[c]), int(plan.chunk_len[c])
            segment = ids[start : start + n]
            row_ids += segment
            row_labels += [*segment[1:], IGNORE_INDEX]  # next token within the segment only
            row_pos += list(range(n))
            bounds.append(len(row_ids))
        pad = seq_len - len(row_ids)
        if pad:
            row_ids += [pad_id] * pad
            row_labels += [IGNORE_INDEX] * pad
            row_pos += list(range(pad))
            bounds.append(seq_len)
        rows_ids.append(row_ids)
        rows_labels.append(row_labels)
        rows_pos.append(row_pos)
        cu_seqlens += bounds
        cu_offsets.append(len(cu_seqlens))
    shape = (plan.n_sequences, seq_len)
    return PackedSequences(
        input_ids=np.asarray(rows_ids, dtype=np.int32).reshape(shape),
        labels=np.asarray(rows_labels, dtype=np.int32).reshape(shape),
        position_ids=np.asarray(rows_pos, dtype=np.int32).reshape(shape),
        cu_seqlens=np.asarray(cu_seqlens, dtype=np.int32),
        cu_seqlens_offsets=np.asarray(cu_offsets, dtype=np.int64),
        seq_len=seq_len,
        n_real_tokens=plan.n_real_tokens,
    )


def pack_best_fit(
    tokens: np.ndarray, doc_offsets: np.ndarray, seq_len: int, pad_id: int
) -> PackedSequences:
    offsets = check_doc_offsets(doc_offsets, np.asarray(tokens).size)
    return materialize(tokens, plan_best_fit(offsets, seq_len), pad_id)


def pack_concat(
    tokens: np.ndarray, doc_offsets: np.ndarray, seq_len: int, pad_id: int
) -> PackedSequences:
    offsets = check_doc_offsets(doc_offsets, np.asarray(tokens).size)
    return materialize(tokens, plan_concat(offsets, seq_len), pad_id)
