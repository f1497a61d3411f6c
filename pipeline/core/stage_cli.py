"""What every stage's driver and Beam graph share: the default runner, the pass-through count
of a stage that is switched off, and the terminal funnel printed after a run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam

from pipeline.core.counters import StageCounter


def with_default_runner(beam_args: Sequence[str]) -> list[str]:
    """Beam args with `--runner=FnApiRunner` added when none is given (plain DirectRunner would
    first try to download Prism, which these machines cannot reach)."""
    args = list(beam_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args.append("--runner=FnApiRunner")
    return args


class CountPassThrough(beam.DoFn):
    """Counts a stage that is switched off (every record kept), so the funnel stays complete."""

    def __init__(self, stage: str) -> None:
        self._stage = stage

    def setup(self) -> None:
        self._counts = StageCounter(self._stage)

    def process(self, element: Any) -> Iterator[Any]:
        self._counts.entered()
        self._counts.kept()
        yield element


def format_funnel(stats: dict[str, Any]) -> str:
    """A short human-readable funnel of a stats.json document, for the terminal."""
    stages = {
        name: s
        for name, s in stats["stages"].items()
        # a helper's notes only (e.g. connected-components rounds) are not a funnel step
        if s["in"] or s["kept"] or s["dropped"] or s["dead_lettered"]
    }
    width = max([10, *(len(name) for name in stages)])
    lines = [f"{'stage':<{width}} {'in':>9} {'kept':>9}  dropped / dead-lettered"]
    for name, s in stages.items():
        losses = {**s["dropped"], **{f"dead:{k}": v for k, v in s["dead_lettered"].items()}}
        detail = ", ".join(f"{k}={v}" for k, v in losses.items()) or "-"
        mark = "" if s["balanced"] else "  (UNBALANCED)"
        lines.append(f"{name:<{width}} {s['in']:>9} {s['kept']:>9}  {detail}{mark}")
    return "\n".join(lines)
