"""Exact deduplication on a hash of the normalised text (pure logic, no Beam).

blake2b-128 of the text after NFKC, case folding and whitespace collapsing; each group keeps one
page by near-dedup's rule (`near.kept_in_cluster`). Details: docs/stages/dedup.md.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from typing import NamedTuple


def normalize_for_exact(text: str) -> str:
    """NFKC, case folded, whitespace runs collapsed to one space, stripped.

    `str.split()` splits on exactly the characters `re`'s `\\s` matches in a str pattern
    (both are `str.isspace`; a test checks every code point), at a third of the regex's cost
    (0.07 vs 0.19 ms on a 7,500-character page).
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hash(text: str) -> str:
    """blake2b-128 (hex) of the UTF-8 normalised text."""
    data = normalize_for_exact(text).encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ExactMember(NamedTuple):
    """One page of an exact-duplicate group: id, raw text length (characters), from a prior
    pool."""

    doc_id: str
    length: int
    prior: bool = False


class ExactDecision(NamedTuple):
    """What happens to a group of pages with one text hash."""

    cluster_id: str
    """Smallest doc_id of the group (prior pages included)."""
    kept_id: str
    """The page kept for the group (may be a prior page, which is not in this run's output)."""
    removed: tuple[str, ...]
    """The new pages removed as exact duplicates of `kept_id`, sorted."""


def decide_exact_group(members: Iterable[Sequence[object]]) -> ExactDecision:
    """The kept page and the removed ones of a group sharing a text hash."""
    group = [ExactMember(*m) for m in members]
    if not group:
        raise ValueError("decide_exact_group() needs at least one member")
    kept = min(group, key=lambda m: (not m.prior, -m.length, m.doc_id))
    removed = sorted(m.doc_id for m in group if m.doc_id != kept.doc_id and not m.prior)
    return ExactDecision(min(m.doc_id for m in group), kept.doc_id, tuple(removed))
