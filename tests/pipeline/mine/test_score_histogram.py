"""The token-weighted score histogram: merged in Beam equals one pass; cuts match a full sort."""

from __future__ import annotations

import math
import random

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from pipeline.mine.score_histogram import (
    BINS,
    ScoreHistogram,
    ScoreHistogramCombineFn,
    bin_index,
    cut_for_budget,
    cut_for_min_score,
)


def pages(n: int, seed: int) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    # Two clusters like a real pool (many non-math pages, some math), plus saturated extremes.
    out = [(rng.gauss(-6, 2), rng.randint(50, 3000)) for _ in range(n)]
    out += [(rng.gauss(5, 2), rng.randint(200, 5000)) for _ in range(n // 5)]
    out += [(1e9, 10), (-1e9, 10), (float("nan"), 5)]
    return out


def one_pass(items: list[tuple[float, int]]) -> ScoreHistogram:
    hist = ScoreHistogram.empty()
    for logit, tokens in items:
        hist.add(logit, tokens)
    return hist


def test_budget_cut_equals_the_sorted_top_pages_in_whole_bins() -> None:
    items = pages(5000, 1)
    hist = one_pass(items)
    for budget in (0, 1000, 250_000, 1_000_000, 10**9):
        cut = cut_for_budget(hist, budget)
        chosen = [t for logit, t in items if cut.selects(logit)]
        assert sum(chosen) == cut.tokens <= budget
        assert len(chosen) == cut.pages
        # Exactly the top of the ranking: nothing left out scores above anything chosen.
        if cut.cut_bin > 0 and cut.cut_bin < BINS:
            next_bin = sum(t for logit, t in items if bin_index(logit) == cut.cut_bin - 1)
            assert cut.tokens + next_bin > budget  # one more bin would not fit
    assert cut_for_budget(hist, 10**12).pages == len(items)


def test_min_score_cut_is_exact_on_the_logit() -> None:
    items = pages(2000, 2)
    cut = cut_for_min_score(one_pass(items), 0.9)
    threshold = math.log(0.9 / 0.1)
    assert all(cut.selects(x) == (x >= threshold) for x, _ in items if not math.isnan(x))


def test_histogram_merged_by_beam_equals_one_pass() -> None:
    items = pages(3000, 3)
    expected = one_pass(items)

    def check(outputs: list[ScoreHistogram]) -> None:
        (merged,) = outputs
        assert np.array_equal(merged.pages, expected.pages)
        assert np.array_equal(merged.tokens, expected.tokens)

    with TestPipeline(
        options=beam.options.pipeline_options.PipelineOptions(["--runner=FnApiRunner"])
    ) as p:
        result = (
            p | beam.Create(items, reshuffle=True) | beam.CombineGlobally(ScoreHistogramCombineFn())
        )
        assert_that(result, check)


def test_json_round_trip() -> None:
    hist = one_pass(pages(500, 4))
    again = ScoreHistogram.from_json(hist.to_json())
    assert np.array_equal(again.tokens, hist.tokens) and again.total_pages == hist.total_pages
