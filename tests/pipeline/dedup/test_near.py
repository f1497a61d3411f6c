"""Near-duplicate removal (pipeline/dedup/near.py) on real page texts with planted copies."""

from __future__ import annotations

import gzip
import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline.core.counters import counters_from_beam_result, stats_document
from pipeline.dedup.minhash import MinHashConfig, candidate_probability
from pipeline.dedup.near import (
    Cluster,
    Duplicate,
    NearDedup,
    bucket_edges,
    kept_in_cluster,
    near_dedup_in_memory,
)
from pipeline.dedup.shingles import shingles
from tests.helpers import require_shared


@pytest.fixture(scope="module")
def originals() -> list[tuple[str, str]]:
    """30 distinct real pages of 400+ words, as (doc_id, main-content text)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    docs = []
    paths = [
        p
        for p in sorted(require_shared("html").rglob("*"))
        if p.suffix == ".html" or p.name.endswith(".html.gz")
    ]
    for path in paths[::4]:
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
        text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
        if len(text.split()) >= 400:
            docs.append((f"page{len(docs):02d}", text))
        if len(docs) == 30:
            break
    assert len(docs) == 30
    return docs


def change_words(text: str, fraction: float, rng: random.Random) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, int(len(words) * fraction))):
        words[i] = f"edit{rng.randrange(10**6)}"
    return " ".join(words)


def reformat(text: str) -> str:
    """The same words, formatted differently: case, punctuation, whitespace."""
    return "  ".join(w.upper() + "," for w in text.split())


@pytest.fixture(scope="module")
def corpus(originals) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Originals plus planted near-copies of ten of them; and copy id -> original id."""
    rng = random.Random(0)
    docs = list(originals)
    planted = {}
    for doc_id, text in originals[::3]:
        words = text.split()
        copies = {
            "edit1pct": change_words(text, 0.01, rng),
            "edit2pct": change_words(text, 0.02, rng),
            "truncated": " ".join(words[: int(len(words) * 0.95)]),
            "reformatted": reformat(text),
        }
        for name, copy in copies.items():
            docs.append((f"{doc_id}-{name}", copy))
            planted[f"{doc_id}-{name}"] = doc_id
    return docs, planted


def test_bucket_edges_are_a_star_from_the_smallest_id():
    assert bucket_edges(["c", "a", "b", "a"]) == [("a", "b"), ("a", "c")]
    assert bucket_edges(["only"]) == []


def test_kept_is_the_longest_then_the_smallest_id():
    assert kept_in_cluster([("b", 10), ("a", 7), ("c", 10)]) == "b"
    assert kept_in_cluster([("z", 1)]) == "z"


def test_distinct_pages_are_not_merged(originals):
    kept, duplicates = near_dedup_in_memory(originals, MinHashConfig())
    assert duplicates == set()
    assert kept == {doc_id for doc_id, _ in originals}


def misses_allowed(probabilities: list[float], tail: float = 1e-3) -> int:
    """The most misses a correct LSH makes with these candidate probabilities, except with
    chance `tail`: the Poisson-binomial upper quantile of the number of pairs never sharing a
    bucket."""
    dist = [1.0]  # dist[k] = P(k misses so far)
    for p in probabilities:
        nxt = [0.0] * (len(dist) + 1)
        for k, q in enumerate(dist):
            nxt[k] += q * p
            nxt[k + 1] += q * (1 - p)
        dist = nxt
    allowed, above = 0, 1.0 - dist[0]
    while above > tail:
        allowed += 1
        above -= dist[allowed]
    return allowed


def test_planted_copies_are_caught(corpus):
    """Every copy is caught where the band S-curve promises it (candidate probability at its
    true Jaccard >= 0.999); the others (2% edits, J ~0.83, P ~0.97 each) may be missed, but no
    more often than the S-curve allows; nothing outside the planted clusters is removed."""
    docs, planted = corpus
    config = MinHashConfig()
    kept, duplicates = near_dedup_in_memory(docs, config)
    texts = dict(docs)
    clusters: dict[str, set[str]] = {}
    for d in duplicates:
        clusters.setdefault(d.cluster_id, {d.kept_id}).add(d.doc_id)
    uncertain, missed = [], []
    for copy_id, original_id in planted.items():
        a, b = set(shingles(texts[original_id])), set(shingles(texts[copy_id]))
        p = candidate_probability(len(a & b) / len(a | b), config.bands, config.rows)
        cluster = next((c for c in clusters.values() if original_id in c), set())
        if p >= 0.999:
            assert copy_id in cluster, (copy_id, p)
        else:
            uncertain.append(p)
            if copy_id not in cluster:
                missed.append(copy_id)
    assert len(missed) <= misses_allowed(uncertain), (missed, uncertain)
    removed = {d.doc_id for d in duplicates}
    # one kept per cluster, nothing but planted copies and their originals in any cluster
    assert set().union(*clusters.values()) <= set(planted) | set(planted.values())
    assert len(removed) == sum(len(c) - 1 for c in clusters.values())
    for d in duplicates:
        assert len(texts[d.kept_id]) >= len(texts[d.doc_id])
        assert d.cluster_id == min(clusters[d.cluster_id])
    assert kept == {doc_id for doc_id, _ in docs} - removed


def test_in_memory_result_does_not_depend_on_order(corpus):
    docs, _ = corpus
    expected = near_dedup_in_memory(docs, MinHashConfig())
    shuffled = list(docs)
    random.Random(1).shuffle(shuffled)
    assert near_dedup_in_memory(shuffled, MinHashConfig()) == expected


@pytest.mark.parametrize(("seed", "batch_size"), [(2, 32), (3, 5)])
def test_beam_equals_in_memory_for_any_order_and_batching(corpus, seed, batch_size):
    docs, _ = corpus
    config = MinHashConfig()
    kept, duplicates = near_dedup_in_memory(docs, config)
    shuffled = list(docs)
    random.Random(seed).shuffle(shuffled)
    clusters: dict[tuple[str, str], int] = {}
    for d in duplicates:
        clusters[(d.cluster_id, d.kept_id)] = clusters.get((d.cluster_id, d.kept_id), 1) + 1

    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    out = pipeline | beam.Create(shuffled) | NearDedup(config, max_rounds=3, batch_size=batch_size)
    assert_that(out["kept"], equal_to(sorted(kept)), label="kept")
    assert_that(out["duplicates"], equal_to(sorted(duplicates)), label="duplicates")
    expected_clusters = [Cluster(c, k, n) for (c, k), n in clusters.items()]
    assert_that(out["clusters"], equal_to(expected_clusters), label="clusters")
    result = pipeline.run()
    result.wait_until_finish()

    counters = counters_from_beam_result(result)
    assert counters["near_dedup.in"] == len(docs)
    assert counters["near_dedup.kept"] == len(kept)
    assert counters["near_dedup.dropped.near_duplicate"] == len(duplicates)
    stats = stats_document(counters, ["near_dedup", "connected_components"])
    assert stats["all_balanced"], stats
    assert stats["stages"]["connected_components"]["notes"]["check0_settled_nodes"] > 0
    assert all(isinstance(d, Duplicate) for d in duplicates)
