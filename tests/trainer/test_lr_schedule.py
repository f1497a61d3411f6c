"""Learning-rate schedules at their boundaries (DeepSeekMath sec. 2.3 multi-step, and cosine)."""

from __future__ import annotations

import pytest
import torch

from trainer.lr_schedule import LRScheduleConfig, build_lr_scheduler, lr_multiplier

PAPER = LRScheduleConfig(total_steps=10_000)  # warm-up 2000, drops at 80% and 90%


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1 / 2000),  # the first update already moves
        (999, 0.5),
        (1999, 1.0),  # the last warm-up update is at the peak
        (2000, 1.0),
        (7999, 1.0),
        (8000, 0.316),  # 80% of 10,000 steps
        (8999, 0.316),
        (9000, 0.1),  # 90%
        (9999, 0.1),
        (50_000, 0.1),  # past the end: stays at the floor
    ],
)
def test_multi_step_boundaries(step: int, expected: float) -> None:
    assert lr_multiplier(step, PAPER) == pytest.approx(expected)


def test_milestones_are_exact_integers() -> None:
    assert PAPER.milestone_steps == (8000, 9000)
    assert LRScheduleConfig(total_steps=1001, warmup_steps=10).milestone_steps == (800, 900)
    # 0.29 * 100 is 28.999999999999996 in floats; the schedule must still drop at step 29.
    odd = LRScheduleConfig(total_steps=100, warmup_steps=0, milestones=(0.29,), factors=(0.5,))
    assert odd.milestone_steps == (29,)
    assert lr_multiplier(28, odd) == 1.0 and lr_multiplier(29, odd) == 0.5


def test_no_warmup_starts_at_the_peak() -> None:
    config = LRScheduleConfig(total_steps=10, warmup_steps=0)
    assert [lr_multiplier(s, config) for s in (0, 7, 8, 9)] == [1.0, 1.0, 0.316, 0.1]


def test_cosine_boundaries() -> None:
    config = LRScheduleConfig(total_steps=1100, warmup_steps=100, kind="cosine", min_ratio=0.1)
    assert lr_multiplier(0, config) == pytest.approx(0.01)
    assert lr_multiplier(99, config) == pytest.approx(1.0)
    assert lr_multiplier(100, config) == pytest.approx(1.0)
    assert lr_multiplier(600, config) == pytest.approx(0.55)  # halfway: (1 + min) / 2
    assert lr_multiplier(1100, config) == pytest.approx(0.1)
    assert lr_multiplier(5000, config) == pytest.approx(0.1)


def test_lambda_lr_scales_the_optimizer_peak() -> None:
    config = LRScheduleConfig(total_steps=20, warmup_steps=4)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=4.2e-4)  # the 7B peak, DeepSeekMath sec. 2.3
    scheduler = build_lr_scheduler(optimizer, config)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [4.2e-4 * lr_multiplier(s, config) for s in range(20)]
    assert seen == pytest.approx(expected)
    assert seen[3] == pytest.approx(4.2e-4) and seen[16] == pytest.approx(4.2e-4 * 0.316)


def test_negative_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="step"):
        lr_multiplier(-1, PAPER)


def test_config_lists_every_problem_at_once() -> None:
    with pytest.raises(ValueError) as error:
        LRScheduleConfig(total_steps=0, warmup_steps=-1, milestones=(0.9, 0.8), factors=(0.5,))
    message = str(error.value)
    for part in ("total_steps", "warmup_steps", "same length", "increasing"):
        assert part in message


def test_warmup_longer_than_the_first_drop_is_refused() -> None:
    with pytest.raises(ValueError, match="raise total_steps"):
        LRScheduleConfig(total_steps=1000)  # warm-up 2000 > first drop at 800
