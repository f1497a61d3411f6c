"""Domain discovery and the annotation file."""

from __future__ import annotations

import pytest

from pipeline.mine.domain_discovery import (
    AnnotationError,
    DomainRow,
    PrefixRow,
    accepted_prefixes,
    annotation_csv,
    auto_decision,
    domain_report_csv,
    math_domains,
    path_prefixes,
    read_annotations,
    read_domain_report,
    undecided,
    under_prefixes,
)


def test_prefixes_are_directory_segments() -> None:
    assert path_prefixes("https://talk.example/t/algebra/12/slug", "talk.example") == [
        "talk.example/t",
        "talk.example/t/algebra",
    ]
    assert path_prefixes("https://a.example/questions/17", "a.example") == ["a.example/questions"]
    assert path_prefixes("https://a.example/about", "a.example") == []
    assert path_prefixes("https://a.example/docs/", "a.example") == ["a.example/docs"]
    accepted = frozenset({"talk.example/t/algebra"})
    assert under_prefixes("https://talk.example/t/algebra/3/x", "talk.example", accepted)
    assert not under_prefixes("https://talk.example/t/cooking/3/x", "talk.example", accepted)


def test_math_domains_use_the_papers_strict_threshold() -> None:
    rows = [DomainRow("a", 100, 11), DomainRow("b", 100, 10), DomainRow("c", 0, 0)]
    assert math_domains(rows, 0.10) == ["a"]
    report = domain_report_csv(rows, 0.10)
    assert report.splitlines()[1] == "a,100,11,0.1100,1"
    assert read_domain_report(report) == [*rows[:2], rows[2]]


def test_annotation_round_trip_and_rule() -> None:
    rows = [PrefixRow("t.example/t/algebra", 40, 38), PrefixRow("t.example/t", 300, 60)]
    decided = [PrefixRow(r.prefix, r.pages, r.collected, auto_decision(r, 0.3)) for r in rows]
    assert [r.decision for r in decided] == ["accept", "reject"]
    text = annotation_csv(decided)
    assert text.splitlines()[0] == "prefix,pages,collected,fraction,decision"
    again = read_annotations(text)
    assert accepted_prefixes(again) == ["t.example/t/algebra"]
    assert undecided(read_annotations(annotation_csv(rows))) == [
        "t.example/t",
        "t.example/t/algebra",
    ]


def test_bad_annotation_rows_are_all_named() -> None:
    text = "prefix,pages,collected,fraction,decision\na/x,3,1,0.3,maybe\na/y,three,1,0.3,accept\n"
    with pytest.raises(AnnotationError) as info:
        read_annotations(text, origin="ann.csv")
    assert "line 2" in str(info.value) and "line 3" in str(info.value)
    with pytest.raises(AnnotationError, match="missing column"):
        read_annotations("prefix,pages\n")
