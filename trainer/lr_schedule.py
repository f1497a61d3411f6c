"""Learning-rate schedules as pure functions of the step, and a torch LambdaLR factory.

`multi_step` is DeepSeekMath's (sec. 2.3): linear warm-up, then 31.6% of the peak after 80% of
the steps and 10% after 90%; `cosine` is the usual alternative. The functions return a
multiplier of the optimizer's peak `lr`; steps count optimizer updates from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class LRScheduleConfig:
    """Shape of the learning-rate schedule (the peak itself is the optimizer's lr)."""

    total_steps: int
    """Optimizer updates in the whole run; the milestones are fractions of it."""
    kind: Literal["multi_step", "cosine"] = "multi_step"
    """`multi_step` (DeepSeekMath / DeepSeek-LLM) or `cosine`."""
    warmup_steps: int = 2000
    """Linear warm-up length in updates (DeepSeekMath sec. 2.3: 2,000). Update k < warmup_steps
    uses (k + 1) / warmup_steps of the peak, so the last warm-up update is at the peak."""
    milestones: tuple[float, ...] = (0.8, 0.9)
    """multi_step: fractions of total_steps after which the rate drops (sec. 2.3: 80%, 90%)."""
    factors: tuple[float, ...] = (0.316, 0.1)
    """multi_step: multiplier of the peak from each milestone on (sec. 2.3: 31.6%, 10%)."""
    min_ratio: float = 0.1
    """cosine: multiplier reached at total_steps and kept after it."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.kind not in ("multi_step", "cosine"):
            problems.append(f"kind must be 'multi_step' or 'cosine', got {self.kind!r}")
        if self.total_steps < 1:
            problems.append(f"total_steps must be >= 1, got {self.total_steps}")
        if self.warmup_steps < 0:
            problems.append(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if len(self.milestones) != len(self.factors):
            problems.append(
                f"milestones ({len(self.milestones)}) and factors ({len(self.factors)}) must "
                "have the same length"
            )
        if any(not 0 < m <= 1 for m in self.milestones):
            problems.append(f"milestones must lie in (0, 1], got {self.milestones}")
        if list(self.milestones) != sorted(self.milestones):
            problems.append(f"milestones must be increasing, got {self.milestones}")
        if any(f <= 0 for f in self.factors):
            problems.append(f"factors must be > 0, got {self.factors}")
        if not 0 <= self.min_ratio <= 1:
            problems.append(f"min_ratio must lie in [0, 1], got {self.min_ratio}")
        if (
            self.kind == "multi_step"
            and self.milestones
            and not problems
            and self.warmup_steps > self.milestone_steps[0]
        ):
            problems.append(
                f"warmup_steps ({self.warmup_steps}) ends after the first drop at step "
                f"{self.milestone_steps[0]}: raise total_steps or lower warmup_steps"
            )
        if self.kind == "cosine" and self.total_steps >= 1 and self.warmup_steps > self.total_steps:
            problems.append(
                f"warmup_steps ({self.warmup_steps}) must be <= total_steps ({self.total_steps})"
            )
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            raise ValueError(f"invalid LRScheduleConfig ({len(problems)} problem(s)):\n{listing}")

    @property
    def milestone_steps(self) -> tuple[int, ...]:
        """First step at each reduced rate: floor(fraction * total_steps), computed exactly.

        Fraction(str(0.8)) is exactly 4/5, so 0.8 * 100 gives 80, not 80.00000000000001 or
        79.99999999999999 as float products can.
        """
        return tuple(math.floor(Fraction(str(m)) * self.total_steps) for m in self.milestones)


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def multi_step(step: int, config: LRScheduleConfig) -> float:
    """DeepSeekMath's multiplier of the peak lr for update `step` (0-based)."""
    if step < config.warmup_steps:
        return _warmup(step, config.warmup_steps)
    factor = 1.0
    for boundary, value in zip(config.milestone_steps, config.factors, strict=True):
        if step >= boundary:
            factor = value
    return factor


def cosine(step: int, config: LRScheduleConfig) -> float:
    """Warm-up, then a half cosine from 1 down to min_ratio at total_steps, flat after it."""
    if step < config.warmup_steps:
        return _warmup(step, config.warmup_steps)
    span = config.total_steps - config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / span) if span else 1.0
    return config.min_ratio + (1 - config.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_multiplier(step: int, config: LRScheduleConfig) -> float:
    """Multiplier of the peak lr for update `step` under config.kind."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return multi_step(step, config) if config.kind == "multi_step" else cosine(step, config)


def build_lr_scheduler(optimizer: Optimizer, config: LRScheduleConfig) -> LambdaLR:
    """LambdaLR over the optimizer's lr (the peak); call scheduler.step() after each update."""
    return LambdaLR(optimizer, lambda step: lr_multiplier(step, config))
