"""bench/mine_loso.py computes honest leave-one-site-out figures of the mining loop.

The split never puts a seed page in the pool, the budget is the held-out math tokens, and the
recall and precision it reports are those of the loop's own collection (read back here from the
scores files independently). The figures themselves are reported by the bench, not asserted
(docs/stages/mine.md, "Leave one site out").
"""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.mine_loso import (
    OTHER,
    SAME_SITE,
    Page,
    load_pages,
    recall_precision,
    run_group,
    site_groups,
    split_for,
    summarise,
)
from pipeline.mine.classifier import ClassifierConfig
from pipeline.mine.transforms import estimate_tokens


def page(key: str, is_math: bool) -> Page:
    return Page(f"html/{key}", key.split("/")[0], is_math, f"text of {key}")


def toy_pages() -> list[Page]:
    pages = [page(f"big/m{i}.html", True) for i in range(3)]
    pages += [page(f"big/n{i}.html", False) for i in range(2)]
    pages += [page(f"blog/m{i}.html", True) for i in range(4)]
    pages += [page("mixed/m0.html", True), page("mixed2/m0.html", True)]
    pages += [page(f"mixed/n{i}.html", False) for i in range(20)]
    return pages


def test_groups_and_splits_keep_seed_out_of_the_pool() -> None:
    pages = toy_pages()
    groups = site_groups(pages, min_site_math=3)
    assert groups == {"big": "big", "blog": "blog", "mixed": OTHER, "mixed2": OTHER}
    for group in ("big", "blog", OTHER):
        split = split_for(pages, groups, group)
        seed = {p.key for p in split.positives + split.negatives}
        pool = {p.key for p in split.pool}
        assert not seed & pool
        # Every page is used once: seed or pool.
        assert len(seed) + len(pool) == len(pages)
        assert all(p.is_math for p in split.positives)
        assert not any(p.is_math for p in split.negatives)
        assert len(split.negatives) == len(split.positives)
        held = {p.key for p in pages if groups[p.site] == group and (p.is_math or group != OTHER)}
        assert {p.key for p in split.pool if p.is_math} <= held <= pool
        assert split.budget_tokens == sum(estimate_tokens(p.text) for p in split.held_out_math)
    # The held-out site's not-math pages are scored too; "other" holds out math pages only.
    assert {p.key for p in split_for(pages, groups, "big").pool} >= {
        "html/big/n0.html",
        "html/big/n1.html",
    }
    assert {p.key for p in split_for(pages, groups, OTHER).held_out_math} == {
        "html/mixed/m0.html",
        "html/mixed2/m0.html",
    }
    # The negative draw is seeded.
    assert split_for(pages, groups, "big", seed=1) == split_for(pages, groups, "big", seed=1)


def test_recall_precision_and_summary() -> None:
    got = recall_precision({"a", "b", "c", "d"}, {"a", "b", "c", "x"})
    assert got == {"recall": 0.75, "precision": 0.75, "collected": 4, "math_collected": 3}
    assert recall_precision({"a"}, set())["precision"] is None
    results = [
        {"final": {"recall": 1.0, "precision": 0.5}},
        {"final": {"recall": 0.5, "precision": None}},
    ]
    assert summarise(results) == {
        "recall_min": 0.5,
        "recall_mean": 0.75,
        "precision_min": 0.0,
        "precision_mean": 0.25,
    }


@pytest.mark.slow
def test_one_held_out_group_through_the_real_loop(shared_data: Path, tmp_path: Path) -> None:
    pages = load_pages(shared_data)
    groups = site_groups(pages)
    # Groups follow labels.csv: every math page is in one, and each site has enough math.
    assert {g for f, g in groups.items() if g != OTHER}
    for site, group in groups.items():
        if group != OTHER:
            assert sum(p.is_math for p in pages if p.site == site) >= 3
    # A collection page that comes from a held-out site is held out with it, never seeded.
    for p in pages:
        if p.key in SAME_SITE:
            split = split_for(pages, groups, groups[SAME_SITE[p.key]])
            assert p in split.pool and p not in split.positives + split.negatives
    split = split_for(pages, groups, OTHER)
    # 200k n-gram buckets instead of the paper's 2M: the same loop, a faster test.
    result = run_group(split, tmp_path, ClassifierConfig(bucket=200_000))
    math_keys = {p.key for p in split.held_out_math}
    assert result["pool_pages"] == len(split.pool)
    assert result["pool_math"] == len(math_keys) > 0
    assert result["budget_tokens"] == split.budget_tokens
    # Recompute the figures from the loop's own output: the final collection.
    final = sorted(glob.glob(str(tmp_path / "mine" / "final" / "pool-*.parquet")))
    collected = {k for f in final for k in pq.read_table(f).column("doc_id").to_pylist()}
    assert result["final"]["collected"] == len(collected)
    assert result["final"]["math_collected"] == len(collected & math_keys)
    assert result["final"]["recall"] == len(collected & math_keys) / len(math_keys)
    if collected:
        assert result["final"]["precision"] == len(collected & math_keys) / len(collected)
    # The budget rule holds: the collection never exceeds the held-out math tokens.
    tokens = {p.key: estimate_tokens(p.text) for p in split.pool}
    assert sum(tokens[k] for k in collected) <= split.budget_tokens
    for rule in ("final", "iteration_1", "at_probability_0.5"):
        for name in ("recall", "precision"):
            value = result[rule][name]
            assert value is None or 0.0 <= value <= 1.0
