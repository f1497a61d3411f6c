"""stats.json assembly: counters grouped per stage, the balance check, the funnel."""

from __future__ import annotations

import pytest

from pipeline.core.counters import stage_stats_from_counters, stats_document


def test_counters_group_by_stage_and_balance() -> None:
    counters = {
        "read.in": 10,
        "read.kept": 6,
        "read.dropped.not_html": 3,
        "read.dead_letter.truncated_gzip": 1,
        "decode.in": 6,
        "decode.kept": 6,
        "decode.note.bad_bytes_replaced": 17,
    }
    doc = stats_document(counters, ["read", "decode"], extra={"stage": "pool"})
    assert doc["all_balanced"]
    assert doc["stages"]["read"]["dropped"] == {"not_html": 3}
    assert doc["stages"]["read"]["dead_lettered"] == {"truncated_gzip": 1}
    assert doc["stages"]["decode"]["notes"] == {"bad_bytes_replaced": 17}
    assert [f["stage"] for f in doc["funnel"]] == ["read", "decode"]
    assert doc["stage"] == "pool"


def test_a_lost_record_is_reported_unbalanced() -> None:
    stages = stage_stats_from_counters({"read.in": 5, "read.kept": 3}, ["read"])
    assert not stages["read"].balanced
    assert not stats_document({"read.in": 5, "read.kept": 3}, ["read"])["all_balanced"]


def test_stages_without_counters_are_listed_with_zeros() -> None:
    doc = stats_document({}, ["files", "read"])
    assert doc["stages"]["files"]["in"] == 0 and doc["all_balanced"]


def test_unknown_counter_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown counter kind"):
        stage_stats_from_counters({"read.bogus": 1}, ["read"])
