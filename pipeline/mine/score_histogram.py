"""Where to cut the ranked pool: a token-weighted histogram of scores, merged across workers.

Workers add pages and tokens into fixed asinh-spaced bins of the log-odds, a CombineFn sums them,
and the cut for a token budget (DeepSeekMath section 2.1) is read off the merged histogram, so no
worker sorts the pool. Bins and the two rules: docs/stages/mine.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np

LOGIT_EPS = 1e-4
T_LIMIT = 16.0
BINS_PER_UNIT = 512
BINS = int(2 * T_LIMIT * BINS_PER_UNIT)


def bin_index(logit: float) -> int:
    """The histogram bin of a log-odds value (end bins take everything beyond them)."""
    if math.isnan(logit):
        return 0
    t = math.asinh(logit / LOGIT_EPS)
    i = math.floor((t + T_LIMIT) * BINS_PER_UNIT)
    return min(max(i, 0), BINS - 1)


def bin_lower_edge(index: int) -> float:
    return LOGIT_EPS * math.sinh(index / BINS_PER_UNIT - T_LIMIT)


@dataclass
class ScoreHistogram:
    """Pages and tokens per log-odds bin."""

    pages: np.ndarray
    tokens: np.ndarray

    @classmethod
    def empty(cls) -> ScoreHistogram:
        return cls(np.zeros(BINS, dtype=np.int64), np.zeros(BINS, dtype=np.int64))

    def add(self, logit: float, n_tokens: int) -> None:
        i = bin_index(logit)
        self.pages[i] += 1
        self.tokens[i] += n_tokens

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        self.pages += other.pages
        self.tokens += other.tokens
        return self

    @property
    def total_pages(self) -> int:
        return int(self.pages.sum())

    @property
    def total_tokens(self) -> int:
        return int(self.tokens.sum())

    def to_json(self) -> dict[str, Any]:
        """Sparse form: only non-empty bins (index, pages, tokens)."""
        nz = np.nonzero(self.pages)[0]
        return {
            "bins": BINS,
            "bins_per_unit": BINS_PER_UNIT,
            "t_limit": T_LIMIT,
            "logit_eps": LOGIT_EPS,
            "nonempty": [[int(i), int(self.pages[i]), int(self.tokens[i])] for i in nz],
            "total_pages": self.total_pages,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoreHistogram:
        if (data["bins"], data["bins_per_unit"], data.get("logit_eps")) != (
            BINS,
            BINS_PER_UNIT,
            LOGIT_EPS,
        ):
            raise ValueError("histogram written with other bins; rescore")
        hist = cls.empty()
        for i, pages, tokens in data["nonempty"]:
            hist.pages[i] = pages
            hist.tokens[i] = tokens
        return hist


@dataclass(frozen=True)
class Cut:
    """Which pages are collected: those with `bin_index(logit) >= cut_bin` (budget rule) or
    `logit >= min_logit` (min-score rule)."""

    rule: str
    """`budget` or `min_score`."""
    cut_bin: int
    """Budget rule: the lowest selected bin (BINS: nothing selected)."""
    min_logit: float
    """Min-score rule: log-odds of min_score (-inf for the budget rule)."""
    pages: int
    """Pages selected (from the histogram; exact)."""
    tokens: int
    """Tokens selected (exact)."""

    def selects(self, logit: float) -> bool:
        if self.rule == "budget":
            return bin_index(logit) >= self.cut_bin
        return logit >= self.min_logit

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "cut_bin": self.cut_bin,
            "cut_logit": bin_lower_edge(self.cut_bin) if self.rule == "budget" else self.min_logit,
            "pages": self.pages,
            "tokens": self.tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cut:
        min_logit = -math.inf if data["rule"] == "budget" else float(data["cut_logit"])
        return cls(data["rule"], data["cut_bin"], min_logit, data["pages"], data["tokens"])


def cut_for_budget(hist: ScoreHistogram, budget_tokens: int) -> Cut:
    """The largest top-ranked set of whole bins whose tokens are at most the budget."""
    tokens_from = np.cumsum(hist.tokens[::-1])[::-1]  # tokens in bins i..top
    fits = np.nonzero(tokens_from <= budget_tokens)[0]
    cut_bin = int(fits[0]) if len(fits) else BINS
    pages = int(hist.pages[cut_bin:].sum())
    tokens = int(hist.tokens[cut_bin:].sum())
    return Cut("budget", cut_bin, -math.inf, pages, tokens)


def cut_for_min_score(hist: ScoreHistogram, min_score: float) -> Cut:
    """Every page with probability >= min_score; the counts are exact only at bin edges, so
    the selection pass recounts them (the returned counts are the histogram's estimate)."""
    min_logit = math.log(min_score / (1.0 - min_score))
    first = bin_index(min_logit)
    return Cut(
        "min_score",
        first,
        min_logit,
        int(hist.pages[first:].sum()),
        int(hist.tokens[first:].sum()),
    )


class ScoreHistogramCombineFn(beam.CombineFn):
    """(logit, n_tokens) pairs -> ScoreHistogram; Beam merges partial histograms in a tree, so
    no worker ever holds more than one histogram per input bundle."""

    def create_accumulator(self) -> ScoreHistogram:
        return ScoreHistogram.empty()

    def add_input(self, acc: ScoreHistogram, element: tuple[float, int]) -> ScoreHistogram:
        acc.add(element[0], element[1])
        return acc

    def merge_accumulators(self, accumulators: Iterable[ScoreHistogram]) -> ScoreHistogram:
        merged = ScoreHistogram.empty()
        for acc in accumulators:
            merged.merge(acc)
        return merged

    def extract_output(self, acc: ScoreHistogram) -> ScoreHistogram:
        return acc
