"""Dedup decisions and the per-part split (pipeline/dedup/transforms.py) on real texts with
planted exact and near copies."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from pipeline.core.counters import counters_from_beam_result, stats_document
from pipeline.dedup.config import DedupOptions
from pipeline.dedup.exact import text_hash
from pipeline.dedup.minhash import MinHashConfig, text_band_keys
from pipeline.dedup.report import shingle_jaccard
from pipeline.dedup.transforms import DEDUP_STAGES, PARTS, decide_and_write, stage_pool_files
from pipeline.extract.extractors import extract_page, get_extractor
from pipeline.pool.schema import POOL_SCHEMA
from tests.helpers import BEAM_TEST_ARGS, make_pool_row, real_pages

MINHASH = MinHashConfig()
# Connected-components rounds unrolled in the graph: the planted clusters are stars, settled
# before round 1, and fewer rounds keep the test pipeline small.
ROUNDS = 2


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Three real, unrelated page texts of 300 words (main content of labelled pages)."""
    extractor = get_extractor("resiliparse")
    out: list[str] = []
    for _, html in real_pages("not-math"):
        words = extract_page(html, extractor).text.split(" ")
        if len(words) >= 300:
            out.append(" ".join(words[:300]))
        if len(out) == 3:
            return out
    pytest.skip("fewer than three real pages of 300 words")


def edit_words(text: str, n: int, seed: int) -> str:
    """`n` words replaced by made-up words of the same length (the length is unchanged)."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in rng.sample(range(len(words)), n):
        words[i] = "q" * len(words[i])
    return " ".join(words)


@pytest.fixture(scope="module")
def rows(texts: list[str]) -> list[dict]:
    """Pool rows: 'a1' an original; 'a2' the same text upper-cased (an exact copy of the same
    length); 'a3' a near copy of it (3 of 300 words changed, the last sentence cut: shorter);
    'b1' another page; 'c1' a third page and 'c2' its exact copy with doubled spaces (longer
    raw text); 'd1' a page of two words (one shingle: itself); 'e1' a page of symbols only (no
    word, no shingle)."""
    a, b, c = texts
    near = edit_words(a, 3, seed=1)
    near = near[: near.rindex(" ", 0, len(near) - 40)]
    docs = {
        "a1": a,
        "a2": a.upper(),
        "a3": near,
        "b1": b,
        "c1": c,
        "c2": c.replace(" ", "  "),
        "d1": "Hello world",
        "e1": "∑ ∫ √ ≠ ≤ ≥ → ∞",
    }
    return [make_pool_row(doc_id, text, offset=i) for i, (doc_id, text) in enumerate(docs.items())]


def run(
    rows: list[dict],
    options: DedupOptions,
    checks: dict[str, Callable[[list[Any]], None]],
    prior: list[dict] | None = None,
) -> dict[str, int]:
    """The rows as a pool of two files -> staged parts -> decisions -> split parts; `checks`
    on the written pool, duplicates and index rows and on the report's PCollections."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k in range(2):
            path = Path(tmp) / f"pool-{k:05d}-of-00002.parquet"
            pq.write_table(pa.Table.from_pylist(rows[k::2], schema=POOL_SCHEMA), path)
            files.append(str(path))
        staging = Path(tmp) / "_staging"
        stages = tuple(s for s in DEDUP_STAGES if s != "prior_urls" or prior is not None)
        stages = tuple(
            s
            for s in stages
            if (s != "exact_dedup" or options.exact) and (s != "near_dedup" or options.near)
        )
        with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
            prior_pc = p | "Prior" >> beam.Create(prior) if prior is not None else None
            staged = stage_pool_files(p, files, str(staging), options)
            out = decide_and_write(
                staged["keys"],
                staged[PARTS],
                str(staging),
                len(files),
                stages,
                options,
                False,
                prior_pc,
            )
            assert set(out) == {"pairs", "cluster_sizes", "rounds"}
            for name, matcher in checks.items():
                if name in out:
                    assert_that(out[name], matcher, label=name)
        written = {
            "pages": sorted(staging.glob("pool-*.parquet")),
            "duplicates": sorted((staging / "duplicates").glob("*.parquet")),
            "index": sorted((staging / "band_index").glob("*.parquet")),
        }
        for name, paths in written.items():
            assert len(paths) == len(files), f"{name}: one file per input file"
            if name in checks:
                checks[name]([r for f in paths for r in pq.read_table(f).to_pylist()])
    return counters_from_beam_result(p.result)


def ids(pcoll_rows: list[dict]) -> list[str]:
    return sorted(r["doc_id"] for r in pcoll_rows)


def dup_of(rows: list[dict]) -> list[tuple[str, str, str, str]]:
    """(removed doc_id, cluster_id, kept_id, kind) of duplicate rows."""
    return sorted((r["doc_id"], r["cluster_id"], r["kept_id"], r["duplicate_kind"]) for r in rows)


def projected(fn: Callable[[list[Any]], Any], expected: Any) -> Callable[[list[Any]], None]:
    """A matcher: fn(actual) must equal `expected`."""

    def match(actual: list[Any]) -> None:
        got = fn(actual)
        if got != expected:
            raise BeamAssertException(f"got {got!r}, expected {expected!r}")

    return match


def test_planted_copies_are_precise(rows: list[dict], texts: list[str]) -> None:
    a = texts[0]
    assert 0.8 < shingle_jaccard(a, rows[2]["text"], MINHASH) < 1.0  # a near, not exact, copy
    by_id = {r["doc_id"]: r for r in rows}

    def check_index(index: list[dict]) -> None:
        got = {r["doc_id"]: r for r in index}
        if sorted(got) != ["a1", "b1", "c2", "d1", "e1"]:
            raise BeamAssertException(f"index of {sorted(got)}")
        for doc_id, entry in got.items():
            if entry["n_chars"] != len(by_id[doc_id]["text"]):
                raise BeamAssertException(f"{doc_id}: n_chars {entry['n_chars']}")
            expected_bands = 0 if doc_id == "e1" else MINHASH.bands
            if len(entry["band_keys"]) != expected_bands:
                raise BeamAssertException(f"{doc_id}: {len(entry['band_keys'])} band keys")
        # The index holds each kept page's text hash: the copies of a text share it.
        if got["a1"]["text_hash"] == got["c2"]["text_hash"]:
            raise BeamAssertException("two different texts share a hash")
        keys, _ = text_band_keys([by_id["a1"]["text"]], MINHASH)
        if got["a1"]["band_keys"] != keys[0].tolist():
            raise BeamAssertException("a1's band keys are not its MinHash bands")

    def check_pairs(pairs: list[dict]) -> None:
        (pair,) = pairs
        if (pair["kept_id"], pair["duplicate_id"], pair["cluster_id"]) != ("a1", "a3", "a1"):
            raise BeamAssertException(str(pair))
        expected = round(shingle_jaccard(a, by_id["a3"]["text"], MINHASH), 4)
        if pair["jaccard"] != expected:
            raise BeamAssertException(f"jaccard {pair['jaccard']} != {expected}")

    counters = run(
        rows,
        DedupOptions(max_rounds=ROUNDS, report_sample_rate=1),
        {
            "pages": projected(ids, ["a1", "b1", "c2", "d1", "e1"]),
            # Exact: the upper-cased copy goes to the smallest doc_id (same length); of c1/c2
            # the longer raw text is kept and the cluster is named by the smallest doc_id.
            # Near: the shorter, edited copy goes to a1.
            "duplicates": projected(
                dup_of,
                [
                    ("a2", "a1", "a1", "exact"),
                    ("a3", "a1", "a1", "near"),
                    ("c1", "c1", "c2", "exact"),
                ],
            ),
            "index": check_index,
            "pairs": check_pairs,
            "cluster_sizes": equal_to([("exact", 2, 2), ("near", 2, 1)]),
            # The only component is a star (a1 - a3): settled in the check before round 1, so no
            # edge enters a round.
            "rounds": projected(sorted, [(r, 0) for r in range(1, ROUNDS + 1)]),
        },
    )
    stats = stats_document(counters, DEDUP_STAGES[1:])
    assert stats["all_balanced"], stats
    assert stats["stages"]["exact_dedup"] == {
        "in": 8,
        "kept": 6,
        "dropped": {"exact_duplicate": 2},
        "dead_lettered": {},
        "notes": {},
        "balanced": True,
    }
    assert stats["stages"]["near_dedup"]["in"] == 6
    assert stats["stages"]["near_dedup"]["kept"] == 5
    assert stats["stages"]["near_dedup"]["dropped"] == {"near_duplicate": 1}
    assert stats["stages"]["near_dedup"]["notes"]["no_shingles"] == 1


def test_duplicate_rows_carry_the_pool_columns_unchanged(rows: list[dict]) -> None:
    # As the pool file holds them (language_score is a float32 there).
    stored = pa.Table.from_pylist(rows, schema=POOL_SCHEMA).to_pylist()
    by_id = {r["doc_id"]: r for r in stored}

    def check(duplicates: list[dict]) -> None:
        for dup in duplicates:
            original = by_id[dup["doc_id"]]
            extra = {k: v for k, v in dup.items() if k not in original}
            if {k: dup[k] for k in original} != original or set(extra) != {
                "cluster_id",
                "kept_id",
                "duplicate_kind",
            }:
                raise BeamAssertException(f"{dup['doc_id']}: {sorted(dup)}")

    def check_pages(pages: list[dict]) -> None:
        for page in pages:
            if page != by_id[page["doc_id"]]:
                raise BeamAssertException(f"{page['doc_id']} changed")

    run(rows, DedupOptions(max_rounds=ROUNDS), {"duplicates": check, "pages": check_pages})


def test_without_exact_dedup_near_dedup_removes_the_exact_copies(rows: list[dict]) -> None:
    # Near dedup normalises case, punctuation and whitespace: the exact copies are found too,
    # now as near duplicates; the longest text is kept, ties to the smallest doc_id.
    run(
        rows,
        DedupOptions(exact=False, max_rounds=ROUNDS),
        {
            "pages": projected(ids, ["a1", "b1", "c2", "d1", "e1"]),
            "duplicates": projected(
                dup_of,
                [
                    ("a2", "a1", "a1", "near"),
                    ("a3", "a1", "a1", "near"),
                    ("c1", "c1", "c2", "near"),
                ],
            ),
            "cluster_sizes": equal_to([("near", 3, 1), ("near", 2, 1)]),
        },
    )


def test_without_near_dedup_the_near_copy_stays(rows: list[dict]) -> None:
    counters = run(
        rows,
        DedupOptions(near=False, max_rounds=ROUNDS),
        {
            "pages": projected(ids, ["a1", "a3", "b1", "c2", "d1", "e1"]),
            "duplicates": projected(
                dup_of, [("a2", "a1", "a1", "exact"), ("c1", "c1", "c2", "exact")]
            ),
            # No band keys are computed: the index has the hashes only.
            "index": projected(
                lambda index: sorted((r["doc_id"], r["band_keys"]) for r in index),
                [(d, []) for d in ("a1", "a3", "b1", "c2", "d1", "e1")],
            ),
            "pairs": equal_to([]),
            "rounds": equal_to([]),
            "cluster_sizes": equal_to([("exact", 2, 2)]),
        },
    )
    assert "near_dedup.in" not in counters


def test_incremental_mode_never_removes_prior_pages(rows: list[dict], texts: list[str]) -> None:
    """Against a prior pool's band index: a page whose URL (doc_id) is in it is removed; a page
    whose text, or a near copy of it, is in it is removed as a duplicate of the prior page (a
    prior page is kept even when it is shorter)."""
    b = texts[1]
    keys, _ = text_band_keys([b], MINHASH)
    prior = [
        # The same URL as d1, whatever its text.
        {"doc_id": "d1", "text_hash": text_hash("old text"), "n_chars": 8, "band_keys": []},
        # b1's text, one character shorter in the old pool (so "longest" alone would pick b1).
        {
            "doc_id": "0-old",
            "text_hash": text_hash(b),
            "n_chars": len(b) - 1,
            "band_keys": keys[0].tolist(),
        },
    ]
    b2 = make_pool_row("b2", edit_words(b, 3, seed=2), offset=len(rows))

    def check_pairs(pairs: list[dict]) -> None:
        # Measured pairs are those whose kept page is in this run: b2's is a prior page.
        got = sorted((p["kept_id"], p["duplicate_id"]) for p in pairs)
        if got != [("a1", "a3")]:
            raise BeamAssertException(str(got))

    counters = run(
        [*rows, b2],
        DedupOptions(max_rounds=ROUNDS, report_sample_rate=1),
        {
            "pages": projected(ids, ["a1", "c2", "e1"]),
            "duplicates": projected(
                dup_of,
                [
                    ("a2", "a1", "a1", "exact"),
                    ("a3", "a1", "a1", "near"),
                    ("b1", "0-old", "0-old", "exact"),
                    ("b2", "0-old", "0-old", "near"),
                    ("c1", "c1", "c2", "exact"),
                    ("d1", "d1", "d1", "url"),
                ],
            ),
            # Only the new kept pages enter the index.
            "index": projected(
                lambda index: sorted(r["doc_id"] for r in index), ["a1", "c2", "e1"]
            ),
            "pairs": check_pairs,
        },
        prior=prior,
    )
    assert counters["prior_urls.in"] == 9
    assert counters["prior_urls.dropped.url_in_prior_pool"] == 1
    assert counters["exact_dedup.dropped.exact_duplicate"] == 3
    assert counters["near_dedup.dropped.near_duplicate"] == 2
