"""Recall and JoinCollected (pipeline/mine/transforms.py): one scoring pass and the pool join."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from mathcorpus.sample_pages import TOPICS, prose_paragraph, seed_page_text
from pipeline.core.counters import counters_from_beam_result
from pipeline.core.dead_letters import DEAD_LETTER
from pipeline.mine.classifier import ClassifierConfig, MathScorer, probability, train_classifier
from pipeline.mine.score_histogram import bin_index
from pipeline.mine.transforms import (
    JoinCollected,
    KeepCollected,
    Recall,
    SeedExpansion,
)
from tests.helpers import BEAM_TEST_ARGS, make_pool_row, seeds, write_tiny_tokenizer

MATH = "math.example"
NEWS = "news.example"
# Pages of the math site: problem sets under /q/algebra and /q/calculus, and one prose post.
MATH_PAGES = [f"q/algebra/{i}" for i in range(4)] + [f"q/calculus/{i}" for i in range(2)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A classifier trained on generated LaTeX problem sets against generated prose."""
    folder = tmp_path_factory.mktemp("model")
    train_classifier(*seeds(60, 5), str(folder), ClassifierConfig(bucket=100_000))
    return str(folder)


@pytest.fixture(scope="module")
def scorer(model_dir: str) -> MathScorer:
    return MathScorer.load(model_dir)


@pytest.fixture(scope="module")
def pool(scorer: MathScorer) -> list[dict]:
    """Pool rows: 6 problem-set pages and 1 prose post on math.example, 4 prose pages on
    news.example (none of them in the training seed)."""
    rng = random.Random(99)
    topics = sorted(TOPICS)
    rows = [
        make_pool_row(f"m{i}", seed_page_text(rng, 2), f"https://{MATH}/{path}", MATH, i)
        for i, path in enumerate(MATH_PAGES)
    ]
    prose = [(MATH, "blog/welcome")] + [(NEWS, f"sport/{i}") for i in range(4)]
    for i, (domain, path) in enumerate(prose):
        text = " ".join(prose_paragraph(rng, topics[i], 4) for _ in range(2))
        rows.append(make_pool_row(f"p{i}", text, f"https://{domain}/{path}", domain, 10 + i))
    # The classifier separates them (else the expectations below would be about the model).
    for row in rows:
        assert (scorer.logit(row["text"]) > 0) == row["doc_id"].startswith("m"), row["doc_id"]
    return rows


BAD_ROWS = [
    {"doc_id": "no-text", "url": "https://x.example/a", "text": None, "warc_offset": 3},
    {"doc_id": "", "url": "https://x.example/b", "text": "Solve $x+1=2$.", "warc_offset": 4},
]


def math_ids(rows: list[dict]) -> list[str]:
    return sorted(r["doc_id"] for r in rows if r["doc_id"].startswith("m"))


def single(check: Callable[[Any], None]) -> Callable[[list[Any]], None]:
    """A matcher for a one-element PCollection."""

    def match(actual: list[Any]) -> None:
        if len(actual) != 1:
            raise BeamAssertException(f"{len(actual)} elements, expected one")
        check(actual[0])

    return match


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise BeamAssertException(message)


def run_recall(
    inputs: Callable[[beam.Pipeline], Any],
    recall: Recall,
    checks: dict[str, Callable[[list[Any]], None]],
) -> dict[str, int]:
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = inputs(p) | recall
        for name, matcher in checks.items():
            assert_that(out[name], matcher, label=name)
    return counters_from_beam_result(p.result)


def test_min_score_recall_collects_the_math_pages(
    model_dir: str, scorer: MathScorer, pool: list[dict]
) -> None:
    texts = {r["doc_id"]: r["text"] for r in pool}
    collected = math_ids(pool)

    def check_scores(scores: list[dict]) -> None:
        got = {s["doc_id"]: s for s in scores}
        expect(sorted(got) == sorted(texts), f"scored {sorted(got)}")
        for doc_id, s in got.items():
            expect(
                set(s) == {"doc_id", "url", "domain", "logit", "score", "n_tokens", "collected"},
                str(s),
            )
            expect(math.isclose(s["logit"], scorer.logit(texts[doc_id]), abs_tol=1e-9), doc_id)
            expect(math.isclose(s["score"], probability(s["logit"])), doc_id)
            # No tokenizer: the documented estimate of 4 characters per token.
            expect(s["n_tokens"] == math.ceil(len(texts[doc_id]) / 4), f"{doc_id}: {s['n_tokens']}")
            expect(s["collected"] == (doc_id in collected), f"{doc_id}: collected {s['collected']}")

    def check_histogram(hist: Any) -> None:
        expect(hist.total_pages == len(pool), f"{hist.total_pages} pages")
        expect(hist.total_tokens == sum(math.ceil(len(t) / 4) for t in texts.values()), "tokens")

    def check_cut(cut: Any) -> None:
        expect((cut.rule, cut.min_logit) == ("min_score", 0.0), str(cut))
        expect(cut.selects(1e-3) and not cut.selects(-1e-3), str(cut))

    counters = run_recall(
        lambda p: p | beam.Create(pool + BAD_ROWS),
        Recall(model_dir, None, None, 0.5, domain_threshold=0.1, min_prefix_pages=2),
        {
            "scores": check_scores,
            "collected": equal_to(collected),
            # (pool pages, collected) per domain.
            "domains": equal_to([(MATH, (7, 6)), (NEWS, (4, 0))]),
            # Only math domains have prefixes, and only those with >= 2 pages (not /blog).
            "prefixes": equal_to(
                [
                    (f"{MATH}/q", (6, 6)),
                    (f"{MATH}/q/algebra", (4, 4)),
                    (f"{MATH}/q/calculus", (2, 2)),
                ]
            ),
            "histogram": single(check_histogram),
            "cut": single(check_cut),
            DEAD_LETTER: lambda letters: expect(
                sorted((d.stage, d.reason, d.doc_id, d.url, d.offset) for d in letters)
                == [
                    ("score", "missing_field", "", "https://x.example/b", 4),
                    ("score", "missing_field", "no-text", "https://x.example/a", 3),
                ],
                str(letters),
            ),
        },
    )
    assert counters["score.in"] == len(pool) + 2
    assert counters["score.kept"] == len(pool)
    assert counters["score.dead_letter.missing_field"] == 2
    assert counters["select.kept"] == 6
    assert counters["select.dropped.below_cut"] == 5
    assert "overlap.in" not in counters


def test_budget_recall_collects_the_top_ranked_pages_that_fit(
    model_dir: str, scorer: MathScorer, pool: list[dict]
) -> None:
    ranked = sorted(pool, key=lambda r: -scorer.logit(r["text"]))
    bins = [bin_index(scorer.logit(r["text"])) for r in ranked]
    assert len(set(bins[:4])) == 4, "the top pages must fall in different histogram bins"
    top3 = ranked[:3]
    budget = sum(math.ceil(len(r["text"]) / 4) for r in top3)

    def check_cut(cut: Any) -> None:
        expect(
            (cut.rule, cut.pages, cut.tokens, cut.cut_bin) == ("budget", 3, budget, bins[2]),
            str(cut),
        )

    counters = run_recall(
        lambda p: p | beam.Create(pool),
        Recall(model_dir, None, budget, None, domain_threshold=0.1, min_prefix_pages=2),
        {
            "collected": equal_to(sorted(r["doc_id"] for r in top3)),
            "cut": single(check_cut),
        },
    )
    assert counters["select.kept"] == 3
    # One token less and the third page no longer fits.
    counters = run_recall(
        lambda p: p | beam.Create(pool),
        Recall(model_dir, None, budget - 1, None, domain_threshold=0.1, min_prefix_pages=2),
        {"collected": equal_to(sorted(r["doc_id"] for r in ranked[:2]))},
    )
    assert counters["select.kept"] == 2


def test_previous_iteration_overlap_is_counted(model_dir: str, pool: list[dict]) -> None:
    previous = ["m0", "m1", "p3", "gone-from-pool"]
    counters = run_recall(
        lambda p: {
            "rows": p | "Rows" >> beam.Create(pool),
            "previous": p | "Previous" >> beam.Create(previous),
        },
        Recall(model_dir, None, None, 0.5, domain_threshold=0.1, min_prefix_pages=2),
        {"collected": equal_to(math_ids(pool))},
    )
    # Collected now: 6; of them collected before: m0 and m1.
    assert counters["overlap.in"] == 6
    assert counters["overlap.kept"] == 2
    assert counters["overlap.dropped.new"] == 4


def test_tokens_are_counted_with_the_given_tokenizer(
    model_dir: str, pool: list[dict], tmp_path: Path
) -> None:
    from tokenizers import Tokenizer

    path = write_tiny_tokenizer(tmp_path)
    tokenizer = Tokenizer.from_file(str(path))
    expected = sorted(
        (r["doc_id"], len(tokenizer.encode(r["text"], add_special_tokens=False).ids)) for r in pool
    )
    estimate = sorted((r["doc_id"], math.ceil(len(r["text"]) / 4)) for r in pool)
    assert expected != estimate, "the tokenizer's counts must differ from the estimate"
    run_recall(
        lambda p: p | beam.Create(pool),
        Recall(model_dir, str(path), None, 0.5, domain_threshold=0.1, min_prefix_pages=2),
        {
            "scores": lambda scores: expect(
                sorted((s["doc_id"], s["n_tokens"]) for s in scores) == expected, str(scores)
            )
        },
    )


# --- JoinCollected -------------------------------------------------------------------------


def test_join_collected_pairs_each_pool_row_with_its_collection_mark() -> None:
    rows = [
        make_pool_row("a", "first page", "https://s.example/q/a", "s.example"),
        make_pool_row("b", "second page", "https://s.example/q/b", "s.example"),
        make_pool_row("c", "third page", "https://s.example/blog/c", "s.example"),
    ]
    by_id = {r["doc_id"]: r for r in rows}

    def check(joined: list[tuple[str, dict]]) -> None:
        got = sorted((k, [r["doc_id"] for r in v["pool"]], list(v["collected"])) for k, v in joined)
        expect(
            got
            == [
                ("a", ["a"], [1]),
                ("b", ["b"], []),
                ("c", ["c"], [1, 1]),  # listed twice in the collected ids
                ("zz", [], [1]),  # collected, but not in this pool
            ],
            str(got),
        )
        for key, v in joined:
            for row in v["pool"]:
                expect(row == by_id[key], f"{key}: the pool row is changed")

    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        joined = {
            "pool": p | "Pool" >> beam.Create(rows),
            "collected": p | "Collected" >> beam.Create(["a", "c", "c", "zz"]),
        } | JoinCollected()
        assert_that(joined, check)


def test_join_collected_feeds_the_final_and_expansion_steps() -> None:
    """As the mining loop uses it: the final step keeps the collected rows, the expansion step
    turns the uncollected ones into seed JSON lines."""
    rows = [make_pool_row(d, f"text of {d}") for d in ("a", "b", "c")]
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        joined = {
            "pool": p | "Pool" >> beam.Create(rows),
            "collected": p | "Collected" >> beam.Create(["b", "zz"]),
        } | JoinCollected()
        kept = joined | "Keep" >> beam.ParDo(KeepCollected())
        seed = joined | "Expand" >> beam.ParDo(SeedExpansion())
        assert_that(kept, equal_to([rows[1]]), label="final")
        assert_that(
            seed | beam.Map(json.loads),
            equal_to(
                [
                    {
                        "doc_id": d,
                        "url": f"https://pages.example/{d}",
                        "domain": "pages.example",
                        "text": f"text of {d}",
                    }
                    for d in ("a", "c")
                ]
            ),
            label="expansion",
        )
    counters = counters_from_beam_result(p.result)
    assert (
        counters["final.in"],
        counters["final.kept"],
        counters["final.dropped.not_collected"],
    ) == (3, 1, 2)
    assert (
        counters["expand.in"],
        counters["expand.kept"],
        counters["expand.dropped.already_collected"],
    ) == (3, 2, 1)
