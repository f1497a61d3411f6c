"""Pack tokenized documents into fixed-length training sequences (Numba).

Best-fit decreasing (Ding et al. 2024: a document is cut only when longer than the sequence)
or concatenate-and-split, over one buffer of documents, deterministically. Labels come already
shifted, -100 at segment ends and padding; `position_ids` restart at every segment and
`cu_seqlens` mark the segments for flash-attn. Layouts, tie-breaking and speed:
docs/trainer.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

IGNORE_INDEX = -100
"""Label of a position that has no next-token target (PyTorch's cross-entropy default)."""

_ONE = np.uint64(1)
_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
_INT32_MAX = np.iinfo(np.int32).max
MAX_SEQ_LEN = 1 << 20
"""Longest sequence accepted (tokens); planning allocates a few arrays of seq_len + 1 entries."""


@dataclass(frozen=True)
class PackingPlan:
    """Where every chunk of every document goes; computed from document lengths only.

    Chunks are listed sequence by sequence: sequence s holds chunks
    `seq_offsets[s]:seq_offsets[s + 1]`, laid out in that order from position 0.
    """

    chunk_doc: np.ndarray
    """int64 [n_chunks]: index of the document each chunk comes from."""
    chunk_start: np.ndarray
    """int64 [n_chunks]: offset of the chunk's first token in the flat `tokens` array."""
    chunk_len: np.ndarray
    """int64 [n_chunks]: chunk length in tokens, 1..seq_len."""
    seq_offsets: np.ndarray
    """int64 [n_sequences + 1]: CSR offsets of each sequence's chunks."""
    seq_len: int
    """L, the length of every packed sequence (tokens)."""

    @property
    def n_sequences(self) -> int:
        return int(self.seq_offsets.size - 1)

    @property
    def n_real_tokens(self) -> int:
        """Document tokens placed (everything that is not padding)."""
        return int(self.chunk_len.sum())

    @property
    def fill_rate(self) -> float:
        """Real tokens / (n_sequences * L); 1.0 for an empty plan."""
        slots = self.n_sequences * self.seq_len
        return self.n_real_tokens / slots if slots else 1.0

    @property
    def n_split_docs(self) -> int:
        """Documents that ended up in more than one chunk (cut, in Ding et al.'s terms)."""
        if self.chunk_doc.size == 0:
            return 0
        return int(np.count_nonzero(np.bincount(self.chunk_doc) > 1))


@dataclass(frozen=True)
class PackedSequences:
    """Fixed-length training sequences from one buffer (conventions: docs/trainer.md)."""

    input_ids: np.ndarray
    """int32 [n_sequences, seq_len]: token ids, `pad_id` in the pad segment."""
    labels: np.ndarray
    """int32 [n_sequences, seq_len]: next-token targets, -100 where there is none."""
    position_ids: np.ndarray
    """int32 [n_sequences, seq_len]: position within the segment, from 0."""
    cu_seqlens: np.ndarray
    """int32: every sequence's segment boundaries [0, ..., seq_len], back to back."""
    cu_seqlens_offsets: np.ndarray
    """int64 [n_sequences + 1]: sequence s owns cu_seqlens[offsets[s]:offsets[s + 1]]."""
    seq_len: int
    """L (tokens)."""
    n_real_tokens: int
    """Document tokens in all sequences (padding excluded)."""

    @property
    def n_sequences(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def fill_rate(self) -> float:
        """Real tokens / (n_sequences * L); 1.0 when there are no sequences."""
        slots = self.n_sequences * self.seq_len
        return self.n_real_tokens / slots if slots else 1.0

    def sequence_cu_seqlens(self, row: int) -> np.ndarray:
        """Segment boundaries [0, ..., L] of one sequence."""
        return self.cu_seqlens[self.cu_seqlens_offsets[row] : self.cu_seqlens_offsets[row + 1]]


def batch_cu_seqlens(packed: PackedSequences, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """cu_seqlens (int32) and max segment length for the flattened tokens of `rows`, in order.

    Row i of the batch starts at token i * L of the flattened (len(rows) * L) tokens, so its
    boundaries are shifted by i * L; the shared endpoint between rows appears once.
    """
    parts = [np.zeros(1, np.int32)]
    max_len = 0
    for i, row in enumerate(np.asarray(rows, dtype=np.int64)):
        bounds = packed.sequence_cu_seqlens(int(row)).astype(np.int64)
        max_len = max(max_len, int(np.diff(bounds).max()))
        parts.append((bounds[1:] + i * packed.seq_len).astype(np.int32))
    return np.concatenate(parts), max_len


# ---------------------------------------------------------------------------------------------
# Input checks (user input: ValueError listing every problem, never assert)


def check_seq_len(seq_len: int) -> None:
    if not isinstance(seq_len, int | np.integer) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    if seq_len > MAX_SEQ_LEN:
        raise ValueError(f"seq_len must be <= {MAX_SEQ_LEN:,} tokens, got {seq_len:,}")


def check_doc_offsets(doc_offsets: np.ndarray, n_tokens: int | None = None) -> np.ndarray:
    """Return doc_offsets as a contiguous int64 array, or raise listing every problem."""
    offsets = np.asarray(doc_offsets)
    problems: list[str] = []
    if offsets.ndim != 1 or offsets.size < 1:
        problems.append(f"doc_offsets must be 1-D with at least one entry, shape {offsets.shape}")
    elif not np.issubdtype(offsets.dtype, np.integer):
        problems.append(f"doc_offsets must be integers, dtype {offsets.dtype}")
    else:
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if offsets[0] < 0:
            problems.append(f"doc_offsets[0] must be >= 0, got {offsets[0]}")
        if offsets.size > 1 and bool((offsets[1:] < offsets[:-1]).any()):
            problems.append("doc_offsets must be non-decreasing")
        if n_tokens is not None and offsets[-1] > n_tokens:
            problems.append(f"doc_offsets[-1] = {offsets[-1]} is past the {n_tokens} tokens")
    if problems:
        raise ValueError("invalid packing input:\n" + "\n".join(f"  - {p}" for p in problems))
    return offsets


def as_int32_tokens(tokens: np.ndarray) -> np.ndarray:
    """The token ids as contiguous int32 (a view for int32 and in-range uint32 input)."""
    arr = np.asarray(tokens)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"tokens must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    if arr.dtype == np.int32:
        return np.ascontiguousarray(arr)
    if arr.size and (int(arr.max()) > _INT32_MAX or int(arr.min()) < 0):
        raise ValueError("token ids must lie in 0..2**31-1 to be packed as int32")
    if arr.dtype == np.uint32:
        return np.ascontiguousarray(arr).view(np.int32)
    return arr.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Hierarchical bitset over the capacities 1..L (bit c - 1 set <=> some open bin has exactly c
# tokens of room): level 0 has one bit per capacity, each higher level one bit per word of the
# level below ("that word is not zero"). Stored flat in one uint64 array.


def _bitset_layout(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(first word of each level, words per level) for a bitset of n_bits at level 0."""
    words = [(n_bits + 63) // 64]
    while words[-1] > 1:
        words.append((words[-1] + 63) // 64)
    starts = np.concatenate([[0], np.cumsum(words)[:-1]]).astype(np.int64)
    return starts, np.asarray(words, dtype=np.int64)


@njit(cache=True, inline="always")
def _bitset_set(bits: np.ndarray, starts: np.ndarray, i: int) -> None:
    for level in range(starts.size):
        word = i >> 6
        k = starts[level] + word
        was_empty = bits[k] == 0
        bits[k] |= _ONE << np.uint64(i & 63)
        if not was_empty:  # the levels above already record this word as non-empty
            break
        i = word


@njit(cache=True, inline="always")
def _bitset_clear(bits: np.ndarray, starts: np.ndarray, i: int) -> None:
    for level in range(starts.size):
        word = i >> 6
        k = starts[level] + word
        bits[k] &= ~(_ONE << np.uint64(i & 63))
        if bits[k] != 0:  # the word still has bits: the levels above stay as they are
            break
        i = word


@njit(cache=True, inline="always")
def _bitset_next(bits: np.ndarray, starts: np.ndarray, words: np.ndarray, i: int) -> int:
    """Smallest set index >= i at level 0, or -1 when there is none."""
    n_levels = starts.size
    level = 0
    while level < n_levels:
        word = i >> 6
        if word >= words[level]:
            return -1
        masked = bits[starts[level] + word] & (_ALL_BITS << np.uint64(i & 63))
        if masked != 0:
            i = (word << 6) + np.int64(trailing_zeros(masked))
            while level > 0:  # descend to the lowest set bit under the word found
                level -= 1
                i = (i << 6) + np.int64(trailing_zeros(bits[starts[level] + i]))
            return i
        i = word + 1  # nothing left in this word: look from the next word, one level up
        level += 1
    return -1


# ---------------------------------------------------------------------------------------------
# Planning


@njit(cache=True)
def _chunks_longest_first(doc_offsets: np.ndarray, seq_len: int) -> tuple:
    """Cut documents into chunks of at most seq_len and counting-sort them, longest first.

    Returns (count of chunks per length 0..seq_len, chunk_doc, chunk_start) with the chunks in
    sorted order; the sort is stable, so equal lengths keep their buffer order.
    """
    n_docs = doc_offsets.size - 1
    counts = np.zeros(seq_len + 1, np.int64)
    for d in range(n_docs):
        n = doc_offsets[d + 1] - doc_offsets[d]
        if n <= seq_len:  # most documents: one chunk, and no slow integer division
            counts[n] += 1
        else:
            counts[seq_len] += n // seq_len
            counts[n % seq_len] += 1
    counts[0] = 0  # an empty document, or a length that is a multiple of seq_len, adds no chunk
    # next_slot[k]: where the next chunk of length k goes in the sorted order.
    next_slot = np.zeros(seq_len + 1, np.int64)
    total = 0
    for k in range(seq_len, 0, -1):
        next_slot[k] = total
        total += counts[k]
    chunk_doc = np.empty(total, np.int64)
    chunk_start = np.empty(total, np.int64)
    for d in range(n_docs):
        start = doc_offsets[d]
        end = doc_offsets[d + 1]
        while start < end:
            n = min(seq_len, end - start)
            j = next_slot[n]
            next_slot[n] += 1
            chunk_doc[j] = d
            chunk_start[j] = start
            start += n
    return counts, chunk_doc, chunk_start


@njit(cache=True)
def _best_fit_assign(counts: np.ndarray, starts: np.ndarray, words: np.ndarray) -> tuple:
    """Best-fit over chunks sorted longest first: (bin of each sorted chunk, n_bins).

    Only the lengths matter, and in sorted order they are `counts[L]` chunks of length L, then
    `counts[L - 1]` of L - 1, and so on, so every array here is read and written in order.
    """
    seq_len = counts.size - 1
    n = counts.sum()
    # Open bins by room left: head[c] tops the stack of bins with exactly c tokens of room,
    # below[b] is the next bin down that stack. Full bins (c == 0) leave the structure.
    head = np.full(seq_len + 1, -1, np.int64)
    below = np.empty(n, np.int64)
    bits = np.zeros(words.sum(), np.uint64)
    chunk_bin = np.empty(n, np.int64)
    n_bins = 0
    j = 0
    for size in range(seq_len, 0, -1):
        # The least room >= size, carried from one chunk of this size to the next (0: no open
        # bin fits). Placing a chunk only empties `room` or adds `room - size`, so the next one
        # rarely needs the bitset search.
        room = _bitset_next(bits, starts, words, size - 1) + 1  # bit c - 1 <=> room c
        for _ in range(counts[size]):
            opened = room == 0
            if opened:  # no open bin fits: open a new one
                b = n_bins
                n_bins += 1
                room = seq_len
            else:
                b = head[room]
                head[room] = below[b]
                if head[room] < 0:
                    _bitset_clear(bits, starts, room - 1)
            chunk_bin[j] = b
            j += 1
            rest = room - size
            if rest > 0:
                if head[rest] < 0:
                    _bitset_set(bits, starts, rest - 1)
                below[b] = head[rest]
                head[rest] = b
            if rest >= size:  # the bin just filled is now the tightest fit
                room = rest
            elif opened:
                room = 0  # nothing fitted before, and only `rest < size` was added
            elif head[room] < 0:  # that room ran out: the next larger one, if any
                room = _bitset_next(bits, starts, words, room) + 1
    return chunk_bin, n_bins


@njit(cache=True)
def _group_by_bin(
    counts: np.ndarray,
    chunk_doc: np.ndarray,
    chunk_start: np.ndarray,
    chunk_bin: np.ndarray,
    n_bins: int,
) -> tuple:
    """Reorder sorted chunks bin by bin (bins in opening order, chunks in placement order)."""
    seq_len = counts.size - 1
    seq_offsets = np.zeros(n_bins + 1, np.int64)
    for j in range(chunk_bin.size):
        seq_offsets[chunk_bin[j] + 1] += 1
    for b in range(n_bins):
        seq_offsets[b + 1] += seq_offsets[b]
    fill = seq_offsets[:-1].copy()
    out_doc = np.empty(chunk_bin.size, np.int64)
    out_start = np.empty(chunk_bin.size, np.int64)
    out_len = np.empty(chunk_bin.size, np.int64)
    j = 0
    for size in range(seq_len, 0, -1):
        for _ in range(counts[size]):
            k = fill[chunk_bin[j]]
            fill[chunk_bin[j]] += 1
            out_doc[k] = chunk_doc[j]
            out_start[k] = chunk_start[j]
            out_len[k] = size
            j += 1
    return out_doc, out_start, out_len, seq_offsets


def plan_best_fit(doc_offsets: np.ndarray, seq_len: int) -> PackingPlan:
    """Best-fit decreasing plan for the documents of `doc_offsets` (docs/trainer.md)."""
    check_seq_len(seq_len)
    offsets = check_doc_offsets(doc_offsets)
    counts, chunk_doc, chunk_start = _chunks_longest_first(offsets, seq_len)
    starts, words = _bitset_layout(seq_len)
    chunk_bin, n_bins = _best_fit_assign(counts, starts, words)
    out_doc, out_start, out_len, seq_offsets = _group_by_bin(
        counts, chunk_doc, chunk_start, chunk_bin, n_bins
    )
    return PackingPlan(out_doc, out_start, out_len, seq_offsets, int(seq_len))


@njit(cache=True)
def _concat_split(doc_offsets: np.ndarray, seq_len: int) -> tuple:
    """Concatenate-and-split: (chunk_doc, chunk_start, chunk_len, seq_offsets)."""
    n_docs = doc_offsets.size - 1
    total = 0
    for d in range(n_docs):
        total += doc_offsets[d + 1] - doc_offsets[d]
    n_seqs = (total + seq_len - 1) // seq_len
    cap = n_docs + n_seqs  # every cut adds at most one chunk to the one per document
    chunk_doc = np.empty(cap, np.int64)
    chunk_start = np.empty(cap, np.int64)
    chunk_len = np.empty(cap, np.int64)
    seq_offsets = np.zeros(n_seqs + 1, np.int64)
    c = 0
    used = 0  # tokens already in the current sequence
    s = 0
    for d in range(n_docs):
        start = doc_offsets[d]
        end = doc_offsets[d + 1]
        while start < end:
            n = min(seq_len - used, end - start)
            chunk_doc[c] = d
            chunk_start[c] = start
            chunk_len[c] = n
            c += 1
            start += n
            used += n
            if used == seq_len:
                s += 1
                seq_offsets[s] = c
                used = 0
    if used > 0:
        seq_offsets[n_seqs] = c
    return chunk_doc[:c].copy(), chunk_start[:c].copy(), chunk_len[:c].copy(), seq_offsets


def plan_concat(doc_offsets: np.ndarray, seq_len: int) -> PackingPlan:
    """Concatenate-and-split plan: documents end to end, cut every seq_len tokens."""
    check_seq_len(seq_len)
    offsets = check_doc_offsets(doc_offsets)
    chunk_doc, chunk_start, chunk_len, seq_offsets = _concat_split(offsets, seq_len)
    return PackingPlan(chunk_doc, chunk_start, chunk_len, seq_offsets, int(seq_len))


# ---------------------------------------------------------------------------------------------
# Materialising


@njit(cache=True)
def _fill_sequences(
    tokens: np.ndarray,
    chunk_start: np.ndarray,
    chunk_len: np.ndarray,
    seq_offsets: np.ndarray,
    seq_len: int,
    pad_id: int,
) -> tuple:
    n_seqs = seq_offsets.size - 1
    input_ids = np.empty((n_seqs, seq_len), np.int32)
    labels = np.empty((n_seqs, seq_len), np.int32)
    position_ids = np.empty((n_seqs, seq_len), np.int32)
    cu_seqlens = np.empty(chunk_len.size + 2 * n_seqs, np.int32)  # upper bound, sliced below
    cu_offsets = np.empty(n_seqs + 1, np.int64)
    cu = 0
    for s in range(n_seqs):
        cu_offsets[s] = cu
        cu_seqlens[cu] = 0
        cu += 1
        p = 0
        for c in range(seq_offsets[s], seq_offsets[s + 1]):
            start = chunk_start[c]
            n = chunk_len[c]
            for t in range(n):
                input_ids[s, p + t] = tokens[start + t]
                position_ids[s, p + t] = t
            for t in range(n - 1):
                labels[s, p + t] = tokens[start + t + 1]
            labels[s, p + n - 1] = IGNORE_INDEX  # the segment's last token has no target
            p += n
            cu_seqlens[cu] = p
            cu += 1
        if p < seq_len:  # the pad segment
            for t in range(seq_len - p):
                input_ids[s, p + t] = pad_id
                position_ids[s, p + t] = t
                labels[s, p + t] = IGNORE_INDEX
            cu_seqlens[cu] = seq_len
            cu += 1
    cu_offsets[n_seqs] = cu
    return input_ids, labels, position_ids, cu_seqlens[:cu].copy(), cu_offsets


def materialize(tokens: np.ndarray, plan: PackingPlan, pad_id: int) -> PackedSequences:
    """Copy the planned chunks of `tokens` into fixed-length sequences."""
    ids = as_int32_tokens(tokens)
    if not 0 <= pad_id <= _INT32_MAX:
        raise ValueError(f"pad_id must lie in 0..2**31-1, got {pad_id}")
    if plan.chunk_len.size and int((plan.chunk_start + plan.chunk_len).max()) > ids.size:
        raise ValueError("the plan reaches past the end of tokens: was it made for this buffer?")
    input_ids, labels, position_ids, cu_seqlens, cu_offsets = _fill_sequences(
        ids, plan.chunk_start, plan.chunk_len, plan.seq_offsets, plan.seq_len, int(pad_id)
    )
    return PackedSequences(
        input_ids=input_ids,
        labels=labels,
        position_ids=position_ids,
        cu_seqlens=cu_seqlens,
        cu_seqlens_offsets=cu_offsets,
        seq_len=plan.seq_len,
        n_real_tokens=plan.n_real_tokens,
    )


def pack_best_fit(
    tokens: np.ndarray, doc_offsets: np.ndarray, seq_len: int, pad_id: int
) -> PackedSequences:
    """Best-fit decreasing packing of one buffer of documents into sequences of seq_len."""
    offsets = check_doc_offsets(doc_offsets, np.asarray(tokens).size)
    return materialize(tokens, plan_best_fit(offsets, seq_len), pad_id)


def pack_concat(
    tokens: np.ndarray, doc_offsets: np.ndarray, seq_len: int, pad_id: int
) -> PackedSequences:
    """Concatenate-and-split packing of one buffer (the last sequence is padded)."""
    offsets = check_doc_offsets(doc_offsets, np.asarray(tokens).size)
    return materialize(tokens, plan_concat(offsets, seq_len), pad_id)
