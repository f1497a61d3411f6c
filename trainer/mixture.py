"""The mixture sampler: which bucket the next document comes from, stage by stage.

The next document comes from the bucket furthest below its weight (deterministic, so the
measured shares follow the weights within one document); stages run in order, each for its
token budget. `state_dict()` is plain integers and strings, for checkpoints. Why, and how a
stage ends: docs/trainer.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.shard_source import DocumentStream


@dataclass(frozen=True)
class Stage:
    """One stage as the sampler runs it on one rank."""

    weights: dict[str, float]
    """Mixture key -> weight (any positive scale)."""
    tokens: int
    """This rank's document tokens in the stage; 0: no end."""


class MixtureSampler:
    """Draws documents from per-key streams following the stages' weights."""

    def __init__(
        self,
        stages: Sequence[Stage],
        streams: Mapping[str, DocumentStream],
        bos_id: int | None = None,
        eos_id: int | None = None,
    ) -> None:
        if not stages:
            raise ValueError("a mixture needs at least one stage")
        missing = sorted({k for s in stages for k in s.weights} - set(streams))
        if missing:
            raise ValueError(f"no stream for mixture key(s) {missing}")
        self.stages = list(stages)
        self.streams = dict(streams)
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.stage = 0
        self.stage_tokens: dict[str, int] = {}
        """Tokens drawn per key in the current stage."""
        self.total_tokens: dict[str, int] = dict.fromkeys(self.streams, 0)
        """Tokens drawn per key over the whole run (this rank)."""
        self._reset_stage()

    def _reset_stage(self) -> None:
        self.stage_tokens = dict.fromkeys(self.stages[self.stage].weights, 0)

    def _advance_if_done(self) -> None:
        while self.stage < len(self.stages) - 1:
            limit = self.stages[self.stage].tokens
            if limit == 0 or sum(self.stage_tokens.values()) < limit:
                return
            self.stage += 1
            self._reset_stage()

    def peek_stage(self) -> int:
        """The stage the next document will come from."""
        self._advance_if_done()
        return self.stage

    def _choose(self) -> str:
        weights = self.stages[self.stage].weights
        return min(weights, key=lambda k: self.stage_tokens[k] / weights[k])

    def next_document(self) -> tuple[np.ndarray, str]:
        """(token ids with bos/eos added, mixture key) of the next document."""
        self._advance_if_done()
        key = self._choose()
        doc = self.streams[key].next_document()
        parts = []
        if self.bos_id is not None:
            parts.append(np.array([self.bos_id], dtype=doc.dtype))
        parts.append(doc)
        if self.eos_id is not None:
            parts.append(np.array([self.eos_id], dtype=doc.dtype))
        tokens = np.concatenate(parts) if len(parts) > 1 else doc
        self.stage_tokens[key] += int(tokens.size)
        self.total_tokens[key] += int(tokens.size)
        return tokens, key

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "stage_tokens": dict(self.stage_tokens),
            "total_tokens": dict(self.total_tokens),
            "streams": {k: s.state_dict() for k, s in sorted(self.streams.items())},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if sorted(state["streams"]) != sorted(self.streams):
            raise ValueError(
                f"sampler state is for keys {sorted(state['streams'])}, this mixture has "
                f"{sorted(self.streams)}: was the mixture changed since the checkpoint?"
            )
        self.stage = int(state["stage"])
        self.stage_tokens = {k: int(v) for k, v in state["stage_tokens"].items()}
        self.total_tokens = {k: int(v) for k, v in state["total_tokens"].items()}
        for key, stream in self.streams.items():
            stream.load_state_dict(state["streams"][key])
