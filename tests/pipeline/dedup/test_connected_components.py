"""Connected components (pipeline/dedup/connected_components.py): union-find against the
large-star / small-star algorithm, in memory and in Beam."""

from __future__ import annotations

import itertools
import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline.dedup.connected_components import (
    ConnectedComponents,
    alternating_components,
    large_star,
    settle_check,
    small_star,
    union_find_components,
)

FNAPI = ["--runner=FnApiRunner"]


def random_graph(rng: random.Random, nodes: int, edges: int) -> list[tuple[int, int]]:
    return [(rng.randrange(nodes), rng.randrange(nodes)) for _ in range(edges)]


def path(order: list) -> list[tuple]:
    return list(itertools.pairwise(order))


def test_union_find_chain_is_one_component_named_by_its_minimum():
    assert union_find_components([("b", "c"), ("a", "b"), ("x", "y")]) == {
        "a": "a",
        "b": "a",
        "c": "a",
        "x": "x",
        "y": "x",
    }
    assert union_find_components([(3, 3)]) == {3: 3}
    assert union_find_components([]) == {}


def test_star_steps():
    assert sorted(large_star(5, [2, 7, 9, 7])) == [(7, 2), (9, 2)]
    assert large_star(5, [5]) == []
    assert sorted(small_star(5, [2, 3])) == [(3, 2), (5, 2)]


def test_settle_check_takes_finished_stars_only():
    labels, active = settle_check([(1, 2), (1, 3), (10, 11), (11, 12)])
    assert labels == {1: 1, 2: 1, 3: 1}
    assert sorted(active) == [(11, 10), (12, 11)]


def test_alternating_equals_union_find_on_random_graphs():
    rng = random.Random(0)
    for _ in range(300):
        edges = random_graph(rng, rng.randint(2, 60), rng.randint(0, 80))
        labels, _ = alternating_components(edges, max_rounds=30)
        assert labels == union_find_components(edges), edges


def test_rounds_grow_like_log_of_the_path_length():
    rng = random.Random(1)
    for n, bound in ((10, 5), (100, 8), (1000, 11)):
        nodes = list(range(n))
        rng.shuffle(nodes)
        for order in (nodes, sorted(nodes), sorted(nodes, reverse=True)):
            labels, per_round = alternating_components(path(order), max_rounds=30)
            assert set(labels.values()) == {0}
            assert sum(1 for edges in per_round if edges) <= bound, (n, per_round)


def test_alternating_raises_when_rounds_run_out():
    with pytest.raises(RuntimeError, match="did not converge in 2 rounds"):
        alternating_components(path(list(range(64))), max_rounds=2)


def beam_graph() -> list[tuple]:
    """Chains in random and sorted order, a random graph, stars, a self-loop, str ids."""
    rng = random.Random(2)
    shuffled = [f"n{i:03d}" for i in range(120)]
    rng.shuffle(shuffled)
    edges = path(shuffled)  # a chain A~B~C~...: one component
    edges += path([f"s{i:03d}" for i in range(40)])
    edges += [(f"r{a:03d}", f"r{b:03d}") for a, b in random_graph(rng, 150, 120)]
    edges += [("hub", f"spoke{i}") for i in range(20)] + [("z", "z")]
    rng.shuffle(edges)
    return edges


def run_components(edges, options, max_rounds, on_unconverged="raise", max_gathered_edges=None):
    expected = union_find_components(edges)
    with beam.Pipeline(options=PipelineOptions(options)) as p:
        out = (
            p
            | beam.Create(edges)
            | ConnectedComponents(max_rounds, on_unconverged, max_gathered_edges)
        )
        assert_that(out["labels"], equal_to(sorted(expected.items())), label="labels")
        if on_unconverged == "raise":
            _, per_round = alternating_components(edges, max_rounds)
            rounds = list(enumerate(per_round, start=1))
            assert_that(out["rounds"], equal_to(rounds), label="rounds")


def test_beam_components_equal_union_find():
    run_components(beam_graph(), FNAPI, max_rounds=9)


@pytest.mark.slow
def test_beam_components_with_two_worker_processes():
    options = [*FNAPI, "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    run_components(beam_graph(), options, max_rounds=9)


def test_beam_fails_when_rounds_run_out():
    with pytest.raises(Exception, match="did not converge in 1 rounds"):
        run_components(path(list(range(32))), FNAPI, max_rounds=1)


def test_beam_gathers_the_leftover_when_asked():
    edges = [*path(list(range(32))), (100, 101), (101, 102)]
    run_components(edges, FNAPI, max_rounds=1, on_unconverged="gather")


def test_beam_gathers_the_leftover_within_its_bound():
    # A 64-node chain needs more than 2 rounds: its 63 edges are left and resolved on one worker.
    edges = [*path(list(range(64))), *((1000 + i, 2000) for i in range(10))]
    run_components(edges, FNAPI, max_rounds=2, on_unconverged="gather", max_gathered_edges=63)


def test_beam_fails_when_the_leftover_exceeds_the_bound():
    with pytest.raises(Exception, match="more than 62 edges still active"):
        run_components(
            path(list(range(64))),
            FNAPI,
            max_rounds=2,
            on_unconverged="gather",
            max_gathered_edges=62,
        )


def test_gather_labels_streams_and_stops_past_the_bound():
    from pipeline.dedup.connected_components import gather_labels

    seen = []

    def edges():
        for i in range(10):
            seen.append(i)
            yield i, i + 1

    assert gather_labels(edges(), 10, 3) == {i: 0 for i in range(11)}
    seen.clear()
    with pytest.raises(RuntimeError, match="more than 4 edges"):
        gather_labels(edges(), 4, 3)
    assert len(seen) == 5  # stopped at the first edge past the bound, the rest never read
