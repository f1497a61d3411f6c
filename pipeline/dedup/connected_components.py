"""Connected components of an edge list: a union-find reference and a Beam transform.

Near-duplicate clusters are the components of the LSH edges, each named by its smallest node.
`ConnectedComponents` alternates large-star and small-star rounds (Kiveris et al., SoCC 2014),
unrolled to `max_rounds` with a settle check per round, and never gathers nodes or edges on one
worker; `union_find_components` is the reference. The algorithm: docs/stages/dedup.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import apache_beam as beam
from apache_beam import pvalue

from pipeline.core.counters import StageCounter

Edge = tuple[Any, Any]
OnUnconverged = Literal["raise", "gather"]

# Rounds to convergence grow like log2 of a component's diameter: measured with
# `alternating_components`, a path of 1k nodes in random order takes 8 rounds, 100k nodes 13;
# in sorted order 10 and 17. Near-duplicate clusters are mostly stars (0-1 rounds), so most
# graphs settle within a few rounds; rounds past convergence still cost the building and
# scheduling of their stages (~0.1 s a round on the local runner, more on a cluster), so the
# default stops early and finishes what is left on one worker, within a bound.
DEFAULT_MAX_ROUNDS = 6
# Edges still active after the last round are resolved by union-find on one worker, streamed
# from the group (memory ~200 bytes a node of the leftover components: ~0.4 GB at the bound);
# more than this stops the run with an error naming both knobs. A 100k-node chain (17 rounds
# in sorted order) is 100k edges.
DEFAULT_MAX_GATHERED_EDGES = 2_000_000

# Message tags of the settle check.
_SMALLER = 0  # value is a smaller neighbour of the key
_LARGER = 1  # value is a larger neighbour of the key
_ROOT = 2  # the key has no smaller neighbour
_CHILD = 3  # value is (larger neighbour, whether it is a leaf)
_SELF = 4  # the key has a self-loop (so that a node seen only in one still gets a label)

SETTLED = "settled"
# Counters: `connected_components.note.check<r>_settled_nodes` (nodes labelled by the check
# after round r) and `connected_components.note.check<r>_active_edges` (edges left for round
# r + 1), in the `mathcorpus` namespace like every stage's.
STAGE = "connected_components"


# --- pure logic ---------------------------------------------------------------------------


def union_find_components(edges: Iterable[Edge]) -> dict[Any, Any]:
    """Node -> smallest node of its component, for every node of an edge (the reference)."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            # The smaller root wins, so every root is its component's minimum.
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {node: find(node) for node in parent}


def large_star(node: Any, neighbours: Iterable[Any]) -> list[Edge]:
    """Large-star at `node`: link each larger neighbour to the smallest of node + neighbours."""
    others = set(neighbours)
    others.discard(node)
    if not others:
        return []
    smallest = min(min(others), node)
    return [(v, smallest) for v in others if v > node]


def small_star(node: Any, smaller: Iterable[Any]) -> list[Edge]:
    """Small-star at `node` given its smaller neighbours: link them and the node to the
    smallest of them."""
    members = set(smaller)
    members.add(node)
    smallest = min(members)
    return [(v, smallest) for v in members if v != smallest]


def settle_node(node: Any, messages: Iterable[tuple[int, Any]]) -> list[tuple[Any, Any]]:
    """Check step 1 at `node`, given (_SMALLER, v) / (_LARGER, v) for each neighbour v
    (and (_SELF, None) for a self-loop).

    Tells each smaller neighbour that `node` is its neighbour and whether `node` is a leaf
    (one neighbour, smaller), and tells itself when it is a root (no smaller neighbour).
    """
    smaller: set[Any] = set()
    has_larger = False
    for tag, other in messages:
        if tag == _SMALLER:
            smaller.add(other)
        elif tag == _LARGER:
            has_larger = True
    if not smaller:
        return [(node, (_ROOT, None))]
    leaf = len(smaller) == 1 and not has_larger
    return [(p, (_CHILD, (node, leaf))) for p in smaller]


def root_settled(messages: Iterable[tuple[int, Any]]) -> bool:
    """Check step 2's verdict at a node: it is a root and all its neighbours are leaves, so its
    component is a settled star. One pass, nothing kept (a hub may have millions of leaves)."""
    is_root = False
    for tag, value in messages:
        if tag == _ROOT:
            is_root = True
        elif not value[1]:
            return False
    return is_root


def root_edges(node: Any, messages: Iterable[tuple[int, Any]]) -> Iterator[Edge]:
    """The edges (child, node), one per larger neighbour, streamed."""
    for tag, value in messages:
        if tag != _ROOT:
            yield value[0], node


def settle_root(node: Any, messages: Iterable[tuple[int, Any]]) -> tuple[bool, list[Edge]]:
    """Check step 2 at `node`: (settled, edges). Settled: `node` is a root and all its
    neighbours are leaves, so the edges (child, node) are the final labels of a whole
    component. Otherwise the edges go on to the next round. Edges (child, node) are those from
    each larger neighbour, so every edge comes out here exactly once."""
    messages = list(messages)
    return root_settled(messages), list(root_edges(node, messages))


def _check_messages(edge: Edge) -> list[tuple[Any, tuple[int, Any]]]:
    a, b = edge
    if a == b:
        return [(a, (_SELF, None))]
    lo, hi = (a, b) if a < b else (b, a)
    return [(hi, (_SMALLER, lo)), (lo, (_LARGER, hi))]


def _group(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return groups


def settle_check(edges: Iterable[Edge]) -> tuple[dict[Any, Any], list[Edge]]:
    """The settle check in memory: (labels of settled components, edges still active)."""
    step1 = _group(m for e in edges for m in _check_messages(e))
    step2 = _group(m for node, msgs in step1.items() for m in settle_node(node, msgs))
    labels: dict[Any, Any] = {}
    active: list[Edge] = []
    for node, msgs in step2.items():
        settled, out = settle_root(node, msgs)
        if settled:
            labels[node] = node
            labels.update(out)
        else:
            active.extend(out)
    return labels, active


def alternating_components(
    edges: Iterable[Edge], max_rounds: int = DEFAULT_MAX_ROUNDS
) -> tuple[dict[Any, Any], list[int]]:
    """The Beam algorithm run in memory: (labels, active edges entering each round 1..K).

    Raises RuntimeError if edges are still active after `max_rounds` rounds.
    """
    labels, active = settle_check(edges)
    per_round: list[int] = []
    for _ in range(max_rounds):
        per_round.append(len(active))
        if not active:
            continue
        adjacency = _group(p for a, b in active if a != b for p in ((a, b), (b, a)))
        after_large = [e for u, nbrs in adjacency.items() for e in large_star(u, nbrs)]
        by_larger = _group((max(a, b), min(a, b)) for a, b in after_large if a != b)
        after_small = [e for u, smaller in by_larger.items() for e in small_star(u, smaller)]
        settled, active = settle_check(after_small)
        labels.update(settled)
    if active:
        raise RuntimeError(unconverged_message(max_rounds, len(active)))
    return labels, per_round


def unconverged_message(max_rounds: int, active_edges: int, gather_bound: int = 0) -> str:
    more = f"more than {gather_bound:,}" if gather_bound else f"{active_edges}"
    return (
        f"connected components did not converge in {max_rounds} rounds: {more} edges still "
        "active; raise max_rounds (--max-cc-rounds) or the edges resolved on one worker "
        "after them (--max-cc-gathered-edges)"
    )


# --- Beam ---------------------------------------------------------------------------------


def _both_directions(edge: Edge) -> list[Edge]:
    a, b = edge
    return [] if a == b else [(a, b), (b, a)]


def _small_star_messages(node: Any, smaller: Iterable[Any]) -> list[tuple[Any, tuple[int, Any]]]:
    """Small-star at `node`, then the settle check's first messages of its edges (one step, so
    the graph has one transform fewer per round)."""
    return [m for edge in small_star(node, smaller) for m in _check_messages(edge)]


COUNTS = "counts"


class _SettleRoots(beam.DoFn):
    """Check step 2 as a DoFn: settled labels to the main output, other edges to `active`, and
    (next round, active edges) per unsettled root to `counts` (summed per round later)."""

    def __init__(self, round_index: int) -> None:
        self._round = round_index

    def setup(self) -> None:
        self._counter = StageCounter(STAGE)

    def process(self, element: tuple[Any, Iterable[tuple[int, Any]]]):
        # Two passes over the group, never a list: a settled star's root may have millions of
        # leaves (one boilerplate text in a million pages).
        node, messages = element
        if root_settled(messages):
            count = 1
            yield (node, node)
            for edge in root_edges(node, messages):
                count += 1
                yield edge
            self._counter.note(f"check{self._round}_settled_nodes", count)
        else:
            count = 0
            for edge in root_edges(node, messages):
                count += 1
                yield pvalue.TaggedOutput("active", edge)
            if count:
                yield pvalue.TaggedOutput(COUNTS, (self._round + 1, count))
            self._counter.note(f"check{self._round}_active_edges", count)


class _SettleCheck(beam.PTransform):
    """Check messages -> (settled labels, active edges, per-root active counts) (two
    GroupByKeys). The input is `_check_messages` of the edges, already made."""

    def __init__(self, round_index: int) -> None:
        super().__init__()
        self._round = round_index

    def expand(self, messages):
        outputs = (
            messages
            | "ByNode" >> beam.GroupByKey()
            | "Classify" >> beam.FlatMapTuple(settle_node)
            | "ByRoot" >> beam.GroupByKey()
            | "Settle"
            >> beam.ParDo(_SettleRoots(self._round)).with_outputs("active", COUNTS, main=SETTLED)
        )
        return outputs[SETTLED], outputs.active, outputs[COUNTS]


class _RaiseIfAny(beam.DoFn):
    """Fails the pipeline when edges are left after the last round."""

    def __init__(self, max_rounds: int) -> None:
        self._max_rounds = max_rounds

    def process(self, count: int):
        if count:
            raise RuntimeError(unconverged_message(self._max_rounds, count))
        return []


def gather_labels(edges: Iterable[Edge], max_edges: int | None, max_rounds: int) -> dict[Any, Any]:
    """Union-find over `edges`, streamed; RuntimeError once more than `max_edges` arrive (the
    memory held is the leftover components' nodes, so the bound is a memory bound)."""

    def bounded() -> Iterator[Edge]:
        for count, edge in enumerate(edges, start=1):
            if max_edges is not None and count > max_edges:
                raise RuntimeError(unconverged_message(max_rounds, count, max_edges))
            yield edge

    return union_find_components(bounded())


class _GatherLeftover(beam.DoFn):
    """The edges left after the last round (one group) -> their labels, by union-find."""

    def __init__(self, max_edges: int | None, max_rounds: int) -> None:
        self._max_edges = max_edges
        self._max_rounds = max_rounds

    def setup(self) -> None:
        self._counter = StageCounter(STAGE)

    def process(self, element: tuple[None, Iterable[Edge]]):
        labels = gather_labels(element[1], self._max_edges, self._max_rounds)
        self._counter.note("gathered_nodes", len(labels))
        yield from labels.items()


class ConnectedComponents(beam.PTransform):
    """PCollection of edges (a, b) -> {"labels": (node, smallest node of its component) for
    every node of an edge, "rounds": (round, active edges entering it) for rounds 1..K}.

    Node ids must be totally ordered and of one type (str doc ids, or ints). A round is four
    GroupByKeys (large-star, small-star, the two of the settle check) and five light maps: the
    graph's size, and the local runner's fixed cost, grow with `max_rounds`. Edges left after
    the last round fail the pipeline (`on_unconverged="raise"`) or are resolved on one worker
    (`"gather"`), failing it only past `max_gathered_edges` (None: no bound).
    """

    def __init__(
        self,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        on_unconverged: OnUnconverged = "raise",
        max_gathered_edges: int | None = None,
    ) -> None:
        super().__init__()
        if max_rounds < 0:
            raise ValueError(f"max_rounds must be >= 0, got {max_rounds}")
        if on_unconverged not in ("raise", "gather"):
            raise ValueError(f"on_unconverged must be 'raise' or 'gather', got {on_unconverged!r}")
        if max_gathered_edges is not None and max_gathered_edges < 1:
            raise ValueError(f"max_gathered_edges must be >= 1, got {max_gathered_edges}")
        self._max_rounds = max_rounds
        self._on_unconverged = on_unconverged
        self._max_gathered_edges = max_gathered_edges

    def expand(self, edges):
        messages = edges | "Messages0" >> beam.FlatMap(_check_messages)
        settled, active, counts = messages | "Check0" >> _SettleCheck(0)
        labels = [settled]
        round_counts = [counts]
        for r in range(1, self._max_rounds + 1):
            # Large-star emits (larger, smaller) pairs, already keyed for small-star's group.
            messages = (
                active
                | f"LargeStarMap{r}" >> beam.FlatMap(_both_directions)
                | f"LargeStarGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMapTuple(large_star)
                | f"SmallStarGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMapTuple(_small_star_messages)
            )
            settled, active, counts = messages | f"Check{r}" >> _SettleCheck(r)
            labels.append(settled)
            if r < self._max_rounds:
                round_counts.append(counts)
        if self._on_unconverged == "raise":
            _ = (
                active
                | "CountUnconverged" >> beam.combiners.Count.Globally()
                | "FailIfUnconverged" >> beam.ParDo(_RaiseIfAny(self._max_rounds))
            )
        else:
            labels.append(
                active
                | "KeyLeftover" >> beam.Map(lambda e: (None, e))
                | "GatherLeftover" >> beam.GroupByKey()
                | "UnionFindLeftover"
                >> beam.ParDo(_GatherLeftover(self._max_gathered_edges, self._max_rounds))
            )
        if self._max_rounds:
            # Every round 1..K gets a count, 0 when no edge entered it.
            zeros = edges.pipeline | "RoundZeros" >> beam.Create(
                [(r, 0) for r in range(1, self._max_rounds + 1)]
            )
            rounds = (
                [zeros, *round_counts]
                | "FlattenCounts" >> beam.Flatten()
                | "SumPerRound" >> beam.CombinePerKey(sum)
            )
        else:  # an empty PCollection for the same output
            rounds = edges | "NoRounds" >> beam.FlatMap(lambda _: [])
        return {"labels": labels | "FlattenLabels" >> beam.Flatten(), "rounds": rounds}
