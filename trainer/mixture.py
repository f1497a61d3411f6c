"""The mixture sampler: which bucket the next document comes from, stage by stage.

Within a stage, the next document comes from the bucket furthest below its share: the key k
with the smallest tokens_k / weight_k (ties: the order the keys are written in). That is
deterministic and keeps every bucket's share of the stage's document tokens within one
document of its weight at any moment, so measured proportions converge to the weights (1/n
error after n tokens, bounded by the longest document) instead of wandering as a random draw
does. The randomness (seeded) is in which documents each bucket yields
(trainer/shard_source.py).

Stages run in order; a stage ends once its document tokens (bos/eos included, summed over the
ranks: each rank draws tokens / world_size) are reached, and the document that crosses the
limit is the stage's last. A stage of 0 tokens never ends. After the last limited stage, the
last stage's weights continue.

`state_dict()` holds the stage, the tokens per key and every stream's position: integers and
strings only, so it goes through torch.save / torch.load(weights_only=True).
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
