"""Domain discovery and the annotation file (DeepSeekMath section 2.1), pure logic.

Per-domain collected fractions, the one- and two-directory URL prefixes of math-related domains,
the annotation CSV (`prefix,pages,collected,fraction,decision`) and the auto-accept rule. Rules
and defaults: docs/stages/mine.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

ANNOTATION_COLUMNS = ("prefix", "pages", "collected", "fraction", "decision")
DOMAIN_COLUMNS = ("domain", "pool_pages", "collected", "fraction", "math")
DECISIONS = ("accept", "reject")
# DeepSeekMath section 2.1: "domains that have over 10% of the web pages collected" are math.
DEFAULT_DOMAIN_THRESHOLD = 0.10
DEFAULT_AUTO_ACCEPT = 0.3
DEFAULT_MIN_PREFIX_PAGES = 3


class AnnotationError(ValueError):
    """The annotation file cannot be used; the message names every bad row."""


def path_prefixes(url: str, domain: str, depth: int = 2) -> list[str]:
    """`domain/seg1` and `domain/seg1/seg2` for the directory segments of the URL's path."""
    path = urlsplit(url).path
    segments = [s for s in path.split("/") if s]
    directories = segments[:-1] if not path.endswith("/") else segments
    return [
        domain + "/" + "/".join(directories[:n]) for n in range(1, min(depth, len(directories)) + 1)
    ]


@dataclass(frozen=True)
class DomainRow:
    domain: str
    pool_pages: int
    collected: int

    @property
    def fraction(self) -> float:
        return self.collected / self.pool_pages if self.pool_pages else 0.0

    def is_math(self, threshold: float) -> bool:
        """More than `threshold` of the domain's pool pages collected (strictly, as the paper)."""
        return self.fraction > threshold


@dataclass(frozen=True)
class PrefixRow:
    prefix: str
    pages: int
    collected: int
    decision: str = ""

    @property
    def fraction(self) -> float:
        return self.collected / self.pages if self.pages else 0.0

    @property
    def domain(self) -> str:
        return self.prefix.split("/", 1)[0]


def auto_decision(row: PrefixRow, accept_fraction: float) -> str:
    """The documented rule: accept when at least `accept_fraction` of the prefix was collected."""
    return "accept" if row.fraction >= accept_fraction else "reject"


def math_domains(rows: Iterable[DomainRow], threshold: float) -> list[str]:
    return sorted(r.domain for r in rows if r.is_math(threshold))


def domain_report_csv(rows: Iterable[DomainRow], threshold: float) -> str:
    """Domains sorted by collected fraction (highest first), then name."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DOMAIN_COLUMNS)
    for r in sorted(rows, key=lambda r: (-r.fraction, r.domain)):
        writer.writerow(
            [r.domain, r.pool_pages, r.collected, f"{r.fraction:.4f}", int(r.is_math(threshold))]
        )
    return out.getvalue()


def read_domain_report(text: str) -> list[DomainRow]:
    return [
        DomainRow(r["domain"], int(r["pool_pages"]), int(r["collected"]))
        for r in csv.DictReader(io.StringIO(text))
    ]


def annotation_csv(rows: Sequence[PrefixRow]) -> str:
    """The annotation file: prefixes sorted by domain, then prefix."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ANNOTATION_COLUMNS)
    for r in sorted(rows, key=lambda r: r.prefix):
        writer.writerow([r.prefix, r.pages, r.collected, f"{r.fraction:.4f}", r.decision])
    return out.getvalue()


def read_annotations(text: str, origin: str = "annotations") -> list[PrefixRow]:
    """Parse an annotation file; AnnotationError lists every row that cannot be used."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ANNOTATION_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise AnnotationError(f"{origin}: missing column(s) {missing}; need {ANNOTATION_COLUMNS}")
    rows: list[PrefixRow] = []
    problems: list[str] = []
    for line_no, record in enumerate(reader, start=2):
        decision = (record["decision"] or "").strip().lower()
        if decision not in (*DECISIONS, ""):
            problems.append(
                f"line {line_no}: decision {record['decision']!r} is not accept, reject or empty"
            )
            continue
        try:
            rows.append(
                PrefixRow(
                    record["prefix"].strip(),
                    int(record["pages"]),
                    int(record["collected"]),
                    decision,
                )
            )
        except (TypeError, ValueError) as exc:
            problems.append(f"line {line_no}: {exc}")
    if problems:
        raise AnnotationError(f"{origin}:\n" + "\n".join(f"  - {p}" for p in problems))
    return rows


def undecided(rows: Iterable[PrefixRow]) -> list[str]:
    return [r.prefix for r in rows if not r.decision]


def accepted_prefixes(rows: Iterable[PrefixRow]) -> list[str]:
    return sorted(r.prefix for r in rows if r.decision == "accept")


def under_prefixes(url: str, domain: str, accepted: frozenset[str]) -> bool:
    """True when one of the page's (one- or two-segment) prefixes was accepted."""
    return any(p in accepted for p in path_prefixes(url, domain))
