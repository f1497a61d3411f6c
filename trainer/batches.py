"""Micro-batches of packed sequences drawn from the mixture sampler, resumable exactly.

`PackedBatches` draws a buffer of documents, packs it (trainer/packing.py), shuffles its
sequences (seeded) and hands them out `micro_batch_size` at a time. Its `state_dict` makes a
resumed run get exactly the micro-batches an uninterrupted run would have. Buffers, state and
the MicroBatch layout: docs/trainer.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer import packing
from trainer.mixture import MixtureSampler
from trainer.shard_source import seed_for


@dataclass(frozen=True)
class MicroBatch:
    """B packed sequences of L tokens (numpy; the training loop moves them to the device)."""

    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    cu_seqlens: np.ndarray
    """int32 document boundaries over the flattened B * L tokens, from 0 to B * L."""
    max_seqlen: int
    """Longest document (segment) in the micro-batch (tokens)."""
    stage: int
    """Mixture stage of the last sequence."""
    real_tokens: int
    """Tokens that are not padding."""

    @property
    def target_tokens(self) -> int:
        """Positions with a next-token target (label != -100)."""
        return int(np.count_nonzero(self.labels != packing.IGNORE_INDEX))


def cu_seqlens_from_positions(position_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Document boundaries of the flattened rows: a document starts where position_ids is 0
    (packing's convention, the pad segment included), and every row starts one."""
    flat = position_ids.reshape(-1)
    starts = np.flatnonzero(flat == 0)
    bounds = np.append(starts, flat.size).astype(np.int32)
    return bounds, int(np.diff(bounds).max()) if bounds.size > 1 else 0


@dataclass
class _Buffer:
    packed: packing.PackedSequences
    order: np.ndarray
    stage: int
    real_per_seq: np.ndarray


class PackedBatches:
    """Endless micro-batches for one rank."""

    def __init__(
        self,
        sampler: MixtureSampler,
        seq_len: int,
        micro_batch_size: int,
        pad_id: int,
        algorithm: str = "best_fit",
        buffer_sequences: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        if algorithm not in ("best_fit", "concat"):
            raise ValueError(f"algorithm must be best_fit or concat, got {algorithm!r}")
        self.sampler = sampler
        self.seq_len = seq_len
        self.micro_batch_size = micro_batch_size
        self.pad_id = pad_id
        self.algorithm = algorithm
        self.buffer_tokens = buffer_sequences * seq_len
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.buffer_index = -1  # number of the current buffer; -1: none drawn yet
        self.consumed = 0  # sequences of the current buffer handed out
        self._buffer_start_state: dict[str, Any] = sampler.state_dict()
        self._buffer: _Buffer | None = None
        # Fill rate of everything packed so far on this rank (not saved in the state).
        self.packed_real_tokens = 0
        self.packed_slots = 0

    def _fill(self) -> None:
        """Draw, pack and shuffle the next buffer."""
        self.buffer_index += 1
        self.consumed = 0
        self._buffer_start_state = self.sampler.state_dict()
        stage = self.sampler.peek_stage()
        docs: list[np.ndarray] = []
        total = 0
        while total < self.buffer_tokens and self.sampler.peek_stage() == stage:
            doc, _ = self.sampler.next_document()
            docs.append(doc)
            total += doc.size
        offsets = np.zeros(len(docs) + 1, np.int64)
        np.cumsum([d.size for d in docs], out=offsets[1:])
        tokens = np.concatenate(docs).astype(np.int32, copy=False)
        plan_fn = packing.plan_best_fit if self.algorithm == "best_fit" else packing.plan_concat
        plan = plan_fn(offsets, self.seq_len)
        packed = packing.materialize(tokens, plan, self.pad_id)
        n = packed.n_sequences
        if self.shuffle:
            rng = np.random.default_rng(seed_for(self.seed, self.rank, self.buffer_index))
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        # Document tokens per sequence (the rest is the pad segment).
        real = np.add.reduceat(plan.chunk_len, plan.seq_offsets[:-1]) if n else np.zeros(0)
        self.packed_real_tokens += packed.n_real_tokens
        self.packed_slots += n * self.seq_len
        self._buffer = _Buffer(packed, order, stage, real)

    def next_micro_batch(self) -> MicroBatch:
        rows: list[tuple[_Buffer, np.ndarray]] = []
        needed = self.micro_batch_size
        while needed:
            if self._buffer is None or self.consumed >= self._buffer.order.size:
                self._fill()
            assert self._buffer is not None
            take = self._buffer.order[self.consumed : self.consumed + needed]
            rows.append((self._buffer, take))
            self.consumed += take.size
            needed -= take.size
        input_ids = np.concatenate([b.packed.input_ids[r] for b, r in rows]).astype(np.int64)
        labels = np.concatenate([b.packed.labels[r] for b, r in rows]).astype(np.int64)
        position_ids = np.concatenate([b.packed.position_ids[r] for b, r in rows]).astype(np.int64)
        real = int(sum(int(b.real_per_seq[r].sum()) for b, r in rows))
        cu_seqlens, max_seqlen = cu_seqlens_from_positions(position_ids)
        return MicroBatch(
            input_ids, labels, position_ids, cu_seqlens, max_seqlen, rows[-1][0].stage, real
        )

    def peek_stage(self) -> int:
        """Stage of the next sequence handed out."""
        if self._buffer is not None and self.consumed < self._buffer.order.size:
            return self._buffer.stage
        return self.sampler.peek_stage()

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self._buffer_start_state,
            "buffer_index": self.buffer_index,
            "consumed": self.consumed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self._buffer = None
        self.buffer_index = int(state["buffer_index"])
        if self.buffer_index < 0:
            self.consumed = 0
            self._buffer_start_state = self.sampler.state_dict()
            return
        self.buffer_index -= 1  # _fill() counts it again
        self._fill()
        self.consumed = int(state["consumed"])
