"""Decontaminate and ContaminationReport (pipeline/decontaminate/transforms.py) on GSM8K items."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from pipeline.core.counters import counters_from_beam_result
from pipeline.core.dead_letters import DEAD_LETTER
from pipeline.decontaminate.benchmarks import BenchmarkItem, load_benchmarks
from pipeline.decontaminate.config import EXAMPLE_URLS, KEPT, REMOVED
from pipeline.decontaminate.ngram_index import BenchmarkIndex
from pipeline.decontaminate.transforms import ContaminationReport, Decontaminate
from tests.helpers import BEAM_TEST_ARGS, make_pool_row, require_shared

INTRO = (
    "Welcome back to our weekly homework help column, where readers send in the questions "
    "that stumped them at the kitchen table.\n"
)
OUTRO = "\nLet us know in the comments how you solved it, and see you next week."


@pytest.fixture(scope="module")
def items() -> list[BenchmarkItem]:
    """Every GSM8K test item (ids are line numbers)."""
    return load_benchmarks([str(require_shared("benchmarks", "gsm8k"))])


@pytest.fixture(scope="module")
def index(items: list[BenchmarkItem]) -> BenchmarkIndex:
    return BenchmarkIndex.build(items)


def text_of(item: BenchmarkItem, field: str) -> str:
    return dict(item.texts)[field]


@pytest.fixture(scope="module")
def pages(items: list[BenchmarkItem]) -> dict[str, dict]:
    """Pool rows by doc_id: the middle item's question and the last item's solution planted in
    a column page, the first two questions on one page, and pages with no benchmark text."""
    middle, last = items[len(items) // 2], items[-1]
    texts = {
        "clean": INTRO + "This week there was no question at all, only a recipe for pancakes.",
        "question": INTRO + text_of(middle, "question") + OUTRO,
        "solution": INTRO + "The worked answer:\n" + text_of(last, "answer") + OUTRO,
        "two": INTRO + text_of(items[0], "question") + "\n\n" + text_of(items[1], "question"),
        # A few words of a question: far fewer than the 10 grams of the rule.
        "fragment": INTRO + " ".join(text_of(middle, "question").split()[:5]) + OUTRO,
    }
    return {
        doc_id: make_pool_row(doc_id, text, f"https://column.example/{doc_id}", offset=i)
        for i, (doc_id, text) in enumerate(texts.items())
    }


def run(
    rows: list[dict], index: Any, checks: dict[str, Callable[[list[Any]], None]]
) -> dict[str, int]:
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        index_pc = p | "Index" >> beam.Create([index])
        out = p | "Rows" >> beam.Create(rows) | Decontaminate(index_pc)
        assert set(out) == {KEPT, REMOVED, DEAD_LETTER}
        for name, matcher in checks.items():
            assert_that(out[name], matcher, label=name)
    return counters_from_beam_result(p.result)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise BeamAssertException(message)


def test_pages_with_benchmark_text_are_removed_with_what_matched(
    items: list[BenchmarkItem], index: BenchmarkIndex, pages: dict[str, dict]
) -> None:
    middle, last = items[len(items) // 2], items[-1]

    def check_removed(removed: list[dict]) -> None:
        got = {r["doc_id"]: r for r in removed}
        expect(sorted(got) == ["question", "solution", "two"], f"removed {sorted(got)}")
        primary = {d: (r["benchmark"], r["item_id"], r["match_rule"]) for d, r in got.items()}
        expect(
            primary
            == {
                "question": ("gsm8k", middle.item_id, "ngram"),
                "solution": ("gsm8k", last.item_id, "ngram"),
                # Both questions are named; the one with more matched windows first.
                "two": ("gsm8k", items[0].item_id, "ngram"),
            },
            str(primary),
        )
        for doc_id, row in got.items():
            page = pages[doc_id]
            # Every pool column is carried unchanged, plus what matched.
            expect({k: row[k] for k in page} == page, f"{doc_id}: pool columns changed")
            expect(row["matched_span"] in page["text"], f"{doc_id}: span not in the page")
            expect(INTRO.strip() not in row["matched_span"], f"{doc_id}: span too wide")
            expect(row["matched_items"][0]["item_id"] == row["item_id"], doc_id)
            expect(all(m["windows"] > 0 for m in row["matched_items"]), doc_id)
        question_span = got["question"]["matched_span"]
        expect(question_span.split()[:4] == text_of(middle, "question").split()[:4], question_span)
        two = [(m["item_id"], m["windows"]) for m in got["two"]["matched_items"]]
        ids = [i for i, _ in two]
        expect(ids[:1] == [items[0].item_id] and items[1].item_id in ids, str(two))
        expect(two == sorted(two, key=lambda t: -t[1]), f"not by windows: {two}")

    counters = run(
        list(pages.values()),
        index,
        {
            KEPT: lambda kept: expect(
                sorted(r["doc_id"] for r in kept) == ["clean", "fragment"]
                and all(r == pages[r["doc_id"]] for r in kept),
                str(kept),
            ),
            REMOVED: check_removed,
            DEAD_LETTER: equal_to([]),
        },
    )
    assert counters["decontaminate.in"] == len(pages)
    assert counters["decontaminate.kept"] == 2
    assert counters["decontaminate.dropped.contaminated"] == 3
    assert counters["decontaminate.note.rule_ngram"] == 3


class BrokenIndex:
    """An index whose matcher fails on one page (a bug or a pathological page)."""

    def __init__(self, index: BenchmarkIndex) -> None:
        self.index = index

    def match(self, text: str) -> Any:
        if "pancakes" in text:
            raise RuntimeError("matcher failed")
        return self.index.match(text)


def test_pages_that_cannot_be_matched_are_dead_lettered(
    index: BenchmarkIndex, pages: dict[str, dict]
) -> None:
    no_text = {**pages["fragment"], "doc_id": "nt", "url": "https://column.example/nt"}
    no_text["text"] = None
    bytes_text = {**no_text, "doc_id": "bt", "text": b"bytes", "warc_offset": 99}

    def check_dead(letters: list[Any]) -> None:
        got = sorted((d.stage, d.reason, d.doc_id, d.source, d.offset, d.error) for d in letters)
        expect(
            got
            == [
                ("decontaminate", "match_error", "clean", "test.warc.gz", 0,
                 "RuntimeError: matcher failed"),
                ("decontaminate", "no_text", "bt", "test.warc.gz", 99,
                 "text is bytes, not a string"),
                ("decontaminate", "no_text", "nt", "test.warc.gz", 4,
                 "text is NoneType, not a string"),
            ],
            str(got),
        )  # fmt: skip

    counters = run(
        [*pages.values(), no_text, bytes_text],
        BrokenIndex(index),
        {
            KEPT: lambda kept: expect([r["doc_id"] for r in kept] == ["fragment"], str(kept)),
            REMOVED: lambda removed: expect(len(removed) == 3, str(len(removed))),
            DEAD_LETTER: check_dead,
        },
    )
    assert counters["decontaminate.dead_letter.no_text"] == 2
    assert counters["decontaminate.dead_letter.match_error"] == 1
    assert counters["decontaminate.in"] == len(pages) + 2


# --- ContaminationReport ------------------------------------------------------------------


def removed(url: str, *matched: tuple[str, str, int]) -> dict:
    """A removed row (only the columns the report reads)."""
    items = [{"benchmark": b, "item_id": i, "rule": "ngram", "windows": w} for b, i, w in matched]
    return {"url": url, "matched_items": items}


def canonical(line: str) -> str:
    return json.dumps(json.loads(line), sort_keys=True)


def report_lines(*records: dict) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def test_report_counts_pages_per_item_and_per_benchmark() -> None:
    rows = [
        removed("https://e.example/4", ("gsm8k", "7", 3)),
        removed("https://e.example/1", ("gsm8k", "7", 9), ("gsm8k", "8", 2)),
        removed("https://e.example/3", ("gsm8k", "7", 1)),
        removed("https://e.example/2", ("gsm8k", "7", 2), ("math", "7", 5)),
    ]
    expected = report_lines(
        # Four pages, the most windows on one page, the EXAMPLE_URLS smallest URLs.
        {
            "kind": "item",
            "benchmark": "gsm8k",
            "item_id": "7",
            "pages": 4,
            "max_windows": 9,
            "example_urls": [f"https://e.example/{i}" for i in range(1, EXAMPLE_URLS + 1)],
        },
        {
            "kind": "item",
            "benchmark": "gsm8k",
            "item_id": "8",
            "pages": 1,
            "max_windows": 2,
            "example_urls": ["https://e.example/1"],
        },
        # The same item id in another benchmark is another item.
        {
            "kind": "item",
            "benchmark": "math",
            "item_id": "7",
            "pages": 1,
            "max_windows": 5,
            "example_urls": ["https://e.example/2"],
        },
        # A page with two items of one benchmark counts once for it.
        {"kind": "benchmark", "benchmark": "gsm8k", "pages": 4},
        {"kind": "benchmark", "benchmark": "math", "pages": 1},
    )
    assert EXAMPLE_URLS == 3, "the expectation above lists three example URLs"
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        lines = p | beam.Create(rows) | ContaminationReport()
        assert_that(lines | beam.Map(canonical), equal_to(expected))


def test_empty_report_has_no_line() -> None:
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        lines = p | beam.Create([]).with_output_types(dict) | ContaminationReport()
        assert_that(lines, equal_to([]))


def test_report_of_real_removed_pages(
    items: list[BenchmarkItem], index: BenchmarkIndex, pages: dict[str, dict]
) -> None:
    """Decontaminate then ContaminationReport, as the pipeline chains them."""
    middle = items[len(items) // 2]

    def check(lines: list[str]) -> None:
        records = [json.loads(line) for line in lines]
        benchmarks = [r for r in records if r["kind"] == "benchmark"]
        expect(benchmarks == [{"kind": "benchmark", "benchmark": "gsm8k", "pages": 3}], str(lines))
        leaked = {r["item_id"]: r for r in records if r["kind"] == "item"}
        for item_id, url in (
            (middle.item_id, "https://column.example/question"),
            (items[-1].item_id, "https://column.example/solution"),
            (items[0].item_id, "https://column.example/two"),
            (items[1].item_id, "https://column.example/two"),
        ):
            expect(url in leaked[item_id]["example_urls"], f"item {item_id}: {leaked[item_id]}")
            expect(leaked[item_id]["max_windows"] > 0, item_id)
        expect(all(r["benchmark"] == "gsm8k" and r["pages"] >= 1 for r in leaked.values()), "")

    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        index_pc = p | "Index" >> beam.Create([index])
        out = p | "Rows" >> beam.Create(list(pages.values())) | Decontaminate(index_pc)
        assert_that(out[REMOVED] | ContaminationReport(), check)
