"""Hot keys: a URL, text hash, LSH bucket or cluster shared by a huge number of pages is streamed
by its DoFn (read twice as an iterable), never gathered into a list (issue 14, item 2).

Each DoFn gets a group of GROUP members generated on the fly; the Python heap it allocates
while deciding must stay far below what a list of the members would take.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeline.dedup.connected_components import _ROOT, _SettleRoots
from pipeline.dedup.near import BucketEdges, ChooseKept
from pipeline.dedup.parts import make_ref
from pipeline.dedup.transforms import ChooseExact, NewestCapture

GROUP = 200_000
# A list of GROUP small tuples alone takes > 20 MB; a streaming DoFn needs a few hundred KB.
MAX_PEAK_BYTES = 2 * 1024 * 1024
BANDS = bytes(range(112))


class Regenerated:
    """A reiterable group (as a runner's lazily paged GroupByKey values): each pass
    regenerates the members; counts the passes."""

    def __init__(self, make: Callable[[int], Any], n: int = GROUP) -> None:
        self._make = make
        self._n = n
        self.passes = 0

    def __iter__(self) -> Iterator[Any]:
        self.passes += 1
        return (self._make(i) for i in range(self._n))


def drain(dofn: Any, element: Any) -> tuple[int, int]:
    """(outputs, peak traced heap bytes) of one process() call, outputs counted, not kept."""
    if hasattr(dofn, "setup"):
        dofn.setup()
    tracemalloc.start()
    try:
        count = sum(1 for _ in dofn.process(element))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def doc(i: int) -> str:
    return f"{i:016x}"


@pytest.mark.parametrize(
    ("name", "dofn", "element", "outputs"),
    [
        (
            "one URL captured GROUP times",
            NewestCapture(),
            ("u", Regenerated(lambda i: (make_ref(0, i), i, i, b"h" * 16, 100, BANDS))),
            GROUP,  # the newest survives, the others are decisions
        ),
        (
            "one text hash on GROUP pages",
            ChooseExact(),
            (b"h" * 16, Regenerated(lambda i: (doc(i), 100, make_ref(0, i), BANDS))),
            GROUP + 1,  # one survivor, GROUP - 1 decisions, one cluster size
        ),
        (
            "one LSH bucket of GROUP pages",
            BucketEdges(),
            ((0, 7), Regenerated(doc)),
            GROUP - 1,  # a star from the smallest doc_id
        ),
        (
            "one cluster of GROUP pages",
            ChooseKept(sample_rate=1),
            (doc(0), Regenerated(lambda i: (doc(i), 100 + (i == 5), make_ref(0, i)))),
            GROUP + 1,  # GROUP - 1 removed, the cluster, the sampled kept page
        ),
        (
            "a settled star's root with GROUP leaves",
            _SettleRoots(0),
            (doc(0), Regenerated(lambda i: (_ROOT, None) if i == 0 else (3, (doc(i), True)))),
            GROUP,  # the root's own label and one per leaf
        ),
    ],
)
def test_a_hot_group_is_streamed(name: str, dofn: Any, element: Any, outputs: int) -> None:
    count, peak = drain(dofn, element)
    assert count == outputs, name
    assert element[1].passes <= 2, f"{name}: {element[1].passes} passes"
    assert peak < MAX_PEAK_BYTES, f"{name}: {peak / 2**20:.1f} MiB traced"


def test_an_unsettled_root_streams_its_edges_on() -> None:
    # One neighbour is not a leaf: every edge goes on to the next round, still streamed.
    group = Regenerated(lambda i: (_ROOT, None) if i == 0 else (3, (doc(i), i != 9)))
    # GROUP - 1 active edges, plus one (next round, active edges) count record.
    count, peak = drain(_SettleRoots(0), (doc(0), group))
    assert count == GROUP and peak < MAX_PEAK_BYTES
