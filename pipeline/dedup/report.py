"""The dedup cluster report (`dedup_report.json`): pure logic, no Beam.

The pipeline hands over small things only: (kind, cluster size, clusters of that size) counts,
the connected-components rounds, and a deterministic sample of near-duplicate pairs (those whose
kept page's doc_id hash falls in the sample) with their true Jaccard similarity. This module
turns them into the report: counts, a size histogram per kind, a similarity histogram of the
sample, and the sampled pairs closest to the LSH threshold (the ones a person should look at to
judge whether the threshold is right).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.dedup.minhash import MinHashConfig, candidate_probability
from pipeline.dedup.shingles import shingles

REPORT_SCHEMA_VERSION = 1
# Similarity histogram bins (Jaccard, width 0.05): fine enough to see the S-curve's knee.
SIMILARITY_BIN_WIDTH = 0.05
EXAMPLE_PAIRS = 12
SNIPPET_CHARS = 240


def in_report_sample(kept_id: str, rate: int) -> bool:
    """Deterministic 1-in-`rate` choice of clusters by their kept page's id."""
    if rate <= 1:
        return True
    digest = hashlib.blake2b(kept_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % rate == 0


def shingle_jaccard(a: str, b: str, config: MinHashConfig) -> float:
    """True Jaccard similarity of two texts' shingle sets (the quantity MinHash estimates)."""
    sa = set(shingles(a, config.shingle, config.n))
    sb = set(shingles(b, config.shingle, config.n))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def pair_record(
    kept: Mapping[str, Any], duplicate: Mapping[str, Any], config: MinHashConfig
) -> dict[str, Any]:
    """A sampled (kept, duplicate) pair: ids, URLs, similarity, text snippets."""
    return {
        "cluster_id": duplicate["cluster_id"],
        "kept_id": kept["doc_id"],
        "duplicate_id": duplicate["doc_id"],
        "kept_url": kept["url"],
        "duplicate_url": duplicate["url"],
        "jaccard": round(shingle_jaccard(kept["text"], duplicate["text"], config), 4),
        "kept_snippet": kept["text"][:SNIPPET_CHARS],
        "duplicate_snippet": duplicate["text"][:SNIPPET_CHARS],
    }


def _histogram(values: Iterable[float]) -> list[dict[str, Any]]:
    bins = round(1 / SIMILARITY_BIN_WIDTH)
    counts = [0] * bins
    for v in values:
        counts[min(int(v / SIMILARITY_BIN_WIDTH), bins - 1)] += 1
    return [
        {
            "from": round(i * SIMILARITY_BIN_WIDTH, 2),
            "to": round((i + 1) * SIMILARITY_BIN_WIDTH, 2),
            "pairs": c,
        }
        for i, c in enumerate(counts)
        if c
    ]


def _active_rounds(rounds: Iterable[tuple[int, int]]) -> list[dict[str, int]]:
    """The rounds that had work, and the first one with none (where the components settled);
    the Beam graph always holds max_rounds rounds, the later ones pass nothing."""
    out: list[dict[str, int]] = []
    for r, edges in sorted(rounds):
        out.append({"round": r, "edges": edges})
        if edges == 0:
            break
    return out


def build_report(
    size_counts: Iterable[tuple[str, int, int]],
    pairs: Iterable[Mapping[str, Any]],
    rounds: Iterable[tuple[int, int]],
    config: MinHashConfig,
    sample_rate: int,
    stage_stats: Mapping[str, Any],
) -> dict[str, Any]:
    """The report document (FORMAT.md, "dedup_report.json")."""
    histogram: dict[str, dict[int, int]] = {"exact": {}, "near": {}}
    for kind, size, count in size_counts:
        per_kind = histogram.setdefault(kind, {})
        per_kind[size] = per_kind.get(size, 0) + count
    pairs = sorted(pairs, key=lambda p: (p["jaccard"], p["cluster_id"], p["duplicate_id"]))
    threshold = config.threshold
    near_threshold = sorted(pairs, key=lambda p: (abs(p["jaccard"] - threshold), p["duplicate_id"]))
    clusters = {kind: sum(h.values()) for kind, h in histogram.items()}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "minhash": config.to_dict(),
        "threshold": round(threshold, 4),
        "s_curve": {
            str(s): round(candidate_probability(s, config.bands, config.rows), 4)
            for s in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
        },
        "counts": {
            "exact": stage_stats.get("exact_dedup", {}),
            "near": stage_stats.get("near_dedup", {}),
            "clusters": clusters,
            "pages_in_clusters": {
                kind: sum(size * n for size, n in h.items()) for kind, h in histogram.items()
            },
        },
        "cluster_sizes": {
            kind: [{"size": size, "clusters": n} for size, n in sorted(h.items())]
            for kind, h in histogram.items()
        },
        "components_rounds": _active_rounds(rounds),
        "pair_sample": {
            "rate": sample_rate,
            "pairs": len(pairs),
            "similarity_histogram": _histogram(p["jaccard"] for p in pairs),
            "closest_to_threshold": near_threshold[:EXAMPLE_PAIRS],
            "least_similar": pairs[:EXAMPLE_PAIRS],
        },
    }
