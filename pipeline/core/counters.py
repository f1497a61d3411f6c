"""Per-stage accounting: every record that enters a stage is kept, dropped or dead-lettered.

DoFns count with Beam `Metrics.counter` under one namespace, with names `<stage>.in`,
`<stage>.kept`, `<stage>.dropped.<reason>`, `<stage>.dead_letter.<reason>` and free-form
`<stage>.note.<name>` (things worth knowing that are not record outcomes, such as bytes replaced
while decoding). After the run, `stats_document` turns the counter values into `stats.json`,
checking for every stage that in = kept + dropped + dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

METRICS_NAMESPACE = "mathcorpus"
STATS_SCHEMA_VERSION = 1


class StageCounter:
    """Thin wrapper over Beam counters for one stage; create it in a DoFn's `setup`."""

    def __init__(self, stage: str) -> None:
        from apache_beam.metrics import Metrics  # Beam only where counters are used

        self._metrics = Metrics
        self.stage = stage
        self._in = Metrics.counter(METRICS_NAMESPACE, f"{stage}.in")
        self._kept = Metrics.counter(METRICS_NAMESPACE, f"{stage}.kept")
        self._others: dict[str, Any] = {}

    def _counter(self, name: str) -> Any:
        counter = self._others.get(name)
        if counter is None:
            counter = self._metrics.counter(METRICS_NAMESPACE, f"{self.stage}.{name}")
            self._others[name] = counter
        return counter

    def entered(self, n: int = 1) -> None:
        self._in.inc(n)

    def kept(self, n: int = 1) -> None:
        self._kept.inc(n)

    def dropped(self, reason: str, n: int = 1) -> None:
        self._counter(f"dropped.{reason}").inc(n)

    def dead_lettered(self, reason: str, n: int = 1) -> None:
        self._counter(f"dead_letter.{reason}").inc(n)

    def note(self, name: str, n: int = 1) -> None:
        self._counter(f"note.{name}").inc(n)


@dataclass
class StageStats:
    """The outcome counts of one stage."""

    entered: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.entered == self.kept + sum(self.dropped.values()) + sum(
            self.dead_lettered.values()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "in": self.entered,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "dead_lettered": dict(sorted(self.dead_lettered.items())),
            "notes": dict(sorted(self.notes.items())),
            "balanced": self.balanced,
        }


def stage_stats_from_counters(
    counters: Mapping[str, int], stage_order: Iterable[str]
) -> dict[str, StageStats]:
    """Group flat counter values (`<stage>.<kind>[.<reason>]`) by stage, in pipeline order."""
    stages: dict[str, StageStats] = {name: StageStats() for name in stage_order}
    for name, value in counters.items():
        stage, _, rest = name.partition(".")
        stats = stages.setdefault(stage, StageStats())
        kind, _, reason = rest.partition(".")
        if kind == "in":
            stats.entered += value
        elif kind == "kept":
            stats.kept += value
        elif kind == "dropped":
            stats.dropped[reason] = stats.dropped.get(reason, 0) + value
        elif kind == "dead_letter":
            stats.dead_lettered[reason] = stats.dead_lettered.get(reason, 0) + value
        elif kind == "note":
            stats.notes[reason] = stats.notes.get(reason, 0) + value
        else:
            raise ValueError(f"unknown counter kind in {name!r}")
    return stages


def stats_document(
    counters: Mapping[str, int], stage_order: Iterable[str], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `stats.json` document: stages in order, the funnel, and whether every stage balances."""
    stage_order = tuple(stage_order)
    stages = stage_stats_from_counters(counters, stage_order)
    doc: dict[str, Any] = {
        "schema_version": STATS_SCHEMA_VERSION,
        "stages": {name: stats.to_json() for name, stats in stages.items()},
        # The funnel follows the pipeline's stages; helper counters (notes only, such as the
        # connected-components rounds) stay in `stages` but are not a step of the funnel.
        "funnel": [
            {"stage": name, "in": stages[name].entered, "kept": stages[name].kept}
            for name in stage_order
        ],
        "all_balanced": all(s.balanced for s in stages.values()),
    }
    if extra:
        doc.update(extra)
    return doc


def counters_from_beam_result(result: Any) -> dict[str, int]:
    """Sum the committed (else attempted) values of our counters over all steps of a run."""
    from apache_beam.metrics.metric import MetricsFilter

    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    totals: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + int(value or 0)
    return totals
