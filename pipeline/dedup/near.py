"""Near-duplicate removal with MinHash LSH, as a Beam transform over (doc_id, text).

Documents sharing a band bucket are linked, connected components make clusters, each cluster
keeps one document (`kept_in_cluster`); incremental against a saved band index. Outputs `kept`,
`duplicates`, `clusters`, `rounds`, `band_keys`. Dataflow and counters: docs/stages/dedup.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import pvalue

from pipeline.core.counters import StageCounter
from pipeline.dedup.connected_components import (
    DEFAULT_MAX_ROUNDS,
    ConnectedComponents,
    OnUnconverged,
    union_find_components,
)
from pipeline.dedup.minhash import MinHashConfig, text_band_keys

STAGE = "near_dedup"
# Documents per signature batch: enough to share the per-batch NumPy/Numba calls, small enough
# to keep a batch's code point arrays in cache (throughput falls above ~64 on real pages).
DEFAULT_BATCH_SIZE = 32


class Duplicate(NamedTuple):
    """A removed document, its cluster (smallest doc_id in it) and the document kept for it."""

    doc_id: str
    cluster_id: str
    kept_id: str


class Member(NamedTuple):
    """A document as the buckets see it: id, text length (characters), from a prior pool."""

    doc_id: str
    length: int
    prior: bool = False


class Cluster(NamedTuple):
    """A cluster of near-duplicates: its id (smallest doc_id), the kept document, its size."""

    cluster_id: str
    kept_id: str
    size: int


# --- pure logic ---------------------------------------------------------------------------


def _keep_rank(member: Sequence[Any]) -> tuple[bool, int, str]:
    prior = len(member) > 2 and bool(member[2])
    return (not prior, -member[1], member[0])


def bucket_edges(doc_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Edges of a bucket: its smallest doc_id to each other one (none for a single document)."""
    members = sorted(set(doc_ids))
    return [(members[0], other) for other in members[1:]]


def kept_in_cluster(members: Iterable[Sequence[Any]]) -> str:
    """The doc_id kept from a cluster of (doc_id, text length[, prior]): a prior document
    first (incremental mode never touches the old pool), then the longest text, ties to the
    smallest doc_id. Longest, because copies of a page differ mostly in how much of it an
    extraction kept."""
    return min(members, key=_keep_rank)[0]


def near_dedup_in_memory(
    docs: Sequence[tuple[str, str]], config: MinHashConfig
) -> tuple[set[str], set[Duplicate]]:
    """The transform's (kept, duplicates) computed in memory (the tests' reference)."""
    ids = [doc_id for doc_id, _ in docs]
    keys, has_shingles = text_band_keys([text for _, text in docs], config)
    buckets: dict[tuple[int, int], list[str]] = {}
    for row, doc_id in enumerate(ids):
        if has_shingles[row]:
            for band, key in enumerate(keys[row].tolist()):
                buckets.setdefault((band, key), []).append(doc_id)
    edges = [edge for members in buckets.values() for edge in bucket_edges(members)]
    labels = union_find_components(edges)
    lengths = {doc_id: len(text) for doc_id, text in docs}
    clusters: dict[str, list[tuple[str, int]]] = {}
    for doc_id, cluster in labels.items():
        clusters.setdefault(cluster, []).append((doc_id, lengths[doc_id]))
    duplicates = set()
    for cluster, members in clusters.items():
        kept = kept_in_cluster(members)
        duplicates.update(Duplicate(d, cluster, kept) for d, _ in members if d != kept)
    removed = {d.doc_id for d in duplicates}
    return {doc_id for doc_id in ids if doc_id not in removed}, duplicates


# --- Beam ---------------------------------------------------------------------------------


class BandKeys(beam.DoFn):
    """Batch of (doc_id, text) -> ((band, band hash), Member) per band; (doc_id, keys) to
    `band_keys`."""

    def __init__(self, config: MinHashConfig) -> None:
        self._config = config

    def setup(self) -> None:
        from pipeline.dedup.shingles import char_tables

        self._counter = StageCounter(STAGE)
        char_tables()  # build the Unicode tables (~1.5 s) once per worker, not in a bundle
        text_band_keys(["warm up the compiled kernels"], self._config)

    def process(self, batch: list[tuple[str, str]]):
        self._counter.entered(len(batch))
        texts = [text or "" for _, text in batch]
        keys, has_shingles = text_band_keys(texts, self._config)
        for row, (doc_id, text) in enumerate(zip((d for d, _ in batch), texts, strict=True)):
            if not has_shingles[row]:
                self._counter.note("no_shingles")
                continue
            # A plain tuple, not a Member: Beam pickles a namedtuple with its module path, which
            # made each band record ~3x larger in the shuffle (87 bytes, measured).
            value = (doc_id, len(text), False)
            row_keys = keys[row].tolist()
            for band, key in enumerate(row_keys):
                yield (band, key), value
            yield pvalue.TaggedOutput("band_keys", (doc_id, row_keys))


class BucketEdges(beam.DoFn):
    """A bucket -> star edges (main output) and its members' lengths (`lengths`)."""

    def setup(self) -> None:
        self._counter = StageCounter(STAGE)

    def process(self, element: tuple[Any, Iterable[Sequence[Any]]]):
        _, values = element
        members = {m[0]: Member(*m) for m in values}
        if len(members) < 2 or all(m.prior for m in members.values()):
            # Nothing to link, or only old documents (settled in an earlier run)
            return
        self._counter.note("buckets_shared")
        edges = bucket_edges(members)
        self._counter.note("edges", len(edges))
        yield from edges
        for doc_id, member in members.items():
            yield pvalue.TaggedOutput("lengths", (doc_id, (member.length, member.prior)))


def _cluster_member(element: tuple[str, dict[str, list[Any]]]):
    doc_id, joined = element
    length, prior = next(iter(joined["length"]))  # every clustered document was in a bucket
    for cluster in joined["cluster"]:
        yield cluster, (doc_id, length, prior)


def _prior_band_members(entry: tuple[str, int, Sequence[int]]):
    doc_id, length, keys = entry
    member = (doc_id, int(length), True)  # plain tuple: see BandKeys
    for band, key in enumerate(keys):
        yield (band, int(key)), member


class ChooseKept(beam.DoFn):
    """A cluster's members -> Duplicate per removed document, Cluster to `clusters`."""

    def process(self, element: tuple[str, Iterable[tuple[str, int, bool]]]):
        cluster_id, values = element
        members = [Member(*m) for m in values]
        kept = kept_in_cluster(members)
        for member in members:
            if member.doc_id != kept and not member.prior:
                yield Duplicate(member.doc_id, cluster_id, kept)
        yield pvalue.TaggedOutput("clusters", Cluster(cluster_id, kept, len(members)))


class KeepUnremoved(beam.DoFn):
    """(doc_id, {"doc": [...], "removed": [...]}) -> doc_id when it was not removed."""

    def setup(self) -> None:
        self._counter = StageCounter(STAGE)

    def process(self, element: tuple[str, dict[str, list[Any]]]):
        doc_id, joined = element
        copies = len(list(joined["doc"]))  # 1 for unique doc ids
        if any(True for _ in joined["removed"]):
            self._counter.dropped("near_duplicate", copies)
            return
        self._counter.kept(copies)
        for _ in range(copies):
            yield doc_id


class NearDedup(beam.PTransform):
    """(doc_id, text) -> {"kept", "duplicates", "clusters", "rounds", "band_keys"} (module
    docstring). `prior`: an optional PCollection of (doc_id, text length, [band keys]) of an
    already deduplicated pool (its saved band index, made with the same MinHashConfig)."""

    def __init__(
        self,
        config: MinHashConfig | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        on_unconverged: OnUnconverged = "raise",
        batch_size: int = DEFAULT_BATCH_SIZE,
        prior: beam.PCollection | None = None,
    ) -> None:
        super().__init__()
        self._prior = prior
        self._config = config if config is not None else MinHashConfig()
        self._max_rounds = max_rounds
        self._on_unconverged = on_unconverged
        self._batch_size = batch_size

    def expand(self, docs):
        banded = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self._batch_size)
            | "BandKeys" >> beam.ParDo(BandKeys(self._config)).with_outputs("band_keys", main="ok")
        )
        bucket_members = banded.ok
        if self._prior is not None:
            prior = self._prior | "PriorBandKeys" >> beam.FlatMap(_prior_band_members)
            bucket_members = (banded.ok, prior) | "WithPrior" >> beam.Flatten()
        bucketed = (
            bucket_members
            | "Buckets" >> beam.GroupByKey()
            | "BucketEdges" >> beam.ParDo(BucketEdges()).with_outputs("lengths", main="edges")
        )
        components = bucketed.edges | "Components" >> ConnectedComponents(
            self._max_rounds, self._on_unconverged
        )
        chosen = (
            {"cluster": components["labels"], "length": bucketed.lengths}
            | "JoinLengths" >> beam.CoGroupByKey()
            | "ClusterMembers" >> beam.FlatMap(_cluster_member)
            | "ByCluster" >> beam.GroupByKey()
            | "ChooseKept" >> beam.ParDo(ChooseKept()).with_outputs("clusters", main="duplicates")
        )
        kept = (
            {
                "doc": docs | "DocIds" >> beam.Map(lambda kv: (kv[0], None)),
                "removed": chosen.duplicates | "RemovedIds" >> beam.Map(lambda d: (d.doc_id, None)),
            }
            | "JoinRemoved" >> beam.CoGroupByKey()
            | "Kept" >> beam.ParDo(KeepUnremoved())
        )
        return {
            "kept": kept,
            "duplicates": chosen.duplicates,
            "clusters": chosen.clusters,
            "rounds": components["rounds"],
            "band_keys": banded.band_keys,
        }
