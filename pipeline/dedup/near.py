"""Near-duplicate removal with MinHash LSH, as a Beam transform over (doc_id, text).

Documents sharing a band bucket are linked, connected components make clusters, each cluster
keeps one document (`kept_in_cluster`); incremental against a saved band index. `NearClusters`
works on band keys alone (what the pools shuffle); `NearDedup` computes them from texts.
Dataflow and counters: docs/stages/dedup.md.
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
from pipeline.dedup.report import in_report_sample

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
#
# Bucket members are plain values (Beam pickles a NamedTuple with its module path, which made
# each band record ~3x larger in the shuffle): a new document is its doc_id (str), a prior one
# `(doc_id,)`. Node info is (doc_id, (text length, tag)): tag None for a prior document,
# otherwise whatever the caller needs back with a removed document (its ref in a staged part).
# A bucket or a cluster is read twice as an iterable, never gathered into a list or set: a
# boilerplate text can put a million pages in one bucket.


def _member_id(value: Any) -> str:
    return value if isinstance(value, str) else value[0]


class BandKeys(beam.DoFn):
    """Batch of (doc_id, text) -> ((band, band hash), doc_id) per band; node info to `info`,
    (doc_id, keys) to `band_keys`."""

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
            row_keys = keys[row].tolist()
            for band, key in enumerate(row_keys):
                yield (band, key), doc_id
            yield pvalue.TaggedOutput("info", (doc_id, (len(text), doc_id)))
            yield pvalue.TaggedOutput("band_keys", (doc_id, row_keys))


class BucketEdges(beam.DoFn):
    """A bucket -> star edges from its smallest doc_id, when it links a new document."""

    def setup(self) -> None:
        self._counter = StageCounter(STAGE)

    def process(self, element: tuple[Any, Iterable[Any]]):
        _, values = element
        smallest: str | None = None
        size = 0
        any_new = False
        for value in values:
            doc_id = _member_id(value)
            size += 1
            any_new = any_new or isinstance(value, str)
            if smallest is None or doc_id < smallest:
                smallest = doc_id
        if size < 2 or not any_new:
            # Nothing to link, or only old documents (settled in an earlier run)
            return
        self._counter.note("buckets_shared")
        self._counter.note("edges", size - 1)
        for value in values:
            doc_id = _member_id(value)
            if doc_id != smallest:
                yield smallest, doc_id


def _prior_bands(entry: tuple[str, int, Sequence[int]]):
    doc_id, _, keys = entry
    member = (doc_id,)
    for band, key in enumerate(keys):
        yield (band, int(key)), member


def _prior_info(entry: tuple[str, int, Sequence[int]]):
    doc_id, length, _ = entry
    return doc_id, (int(length), None)


class _ClusterOfNode(beam.DoFn):
    """(doc_id, [("c", cluster) | ("i", (length, tag))]) -> (cluster, (doc_id, length, tag))."""

    def process(self, element: tuple[str, Iterable[tuple[str, Any]]]):
        doc_id, values = element
        clusters = {v for tag, v in values if tag == "c"}  # one label per node
        if not clusters:
            return
        for tag, value in values:
            if tag == "i":
                for cluster in clusters:
                    yield cluster, (doc_id, value[0], value[1])


def _rank(member: Sequence[Any]) -> tuple[bool, int, str]:
    # (doc_id, length, tag): a prior document (tag None) first, then the longest text, then the
    # smallest doc_id (`kept_in_cluster`).
    return (member[2] is not None, -member[1], member[0])


class ChooseKept(beam.DoFn):
    """A cluster's members (doc_id, length, tag) -> (doc_id, tag, cluster_id, kept_id) per
    removed new document; Cluster to `clusters`; with a sample rate, the kept new document of a
    sampled cluster as (doc_id, tag, cluster_id) to `kept_sampled` (the report's pairs)."""

    def __init__(self, sample_rate: int = 0) -> None:
        self._sample_rate = sample_rate

    def process(self, element: tuple[str, Iterable[tuple[str, int, Any]]]):
        cluster_id, members = element
        best: tuple[bool, int, str] | None = None
        kept: tuple[str, int, Any] | None = None
        size = 0
        for member in members:
            size += 1
            rank = _rank(member)
            if best is None or rank < best:
                best, kept = rank, member
        assert kept is not None
        for member in members:
            if member[2] is not None and _rank(member) != best:
                yield member[0], member[2], cluster_id, kept[0]
        yield pvalue.TaggedOutput("clusters", Cluster(cluster_id, kept[0], size))
        if (
            self._sample_rate
            and kept[2] is not None
            and in_report_sample(kept[0], self._sample_rate)
        ):
            yield pvalue.TaggedOutput("kept_sampled", (kept[0], kept[2], cluster_id))


class NearClusters(beam.PTransform):
    """Band records ((band, key), member) and node info (doc_id, (length, tag)) ->
    {"removed": (doc_id, tag, cluster_id, kept_id), "clusters", "rounds", "kept_sampled"}.

    Members and tags as in the comment above; node info is needed only for documents that may
    land in a cluster (those with band records)."""

    def __init__(
        self,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        on_unconverged: OnUnconverged = "raise",
        sample_rate: int = 0,
        max_gathered_edges: int | None = None,
    ) -> None:
        super().__init__()
        self._max_rounds = max_rounds
        self._on_unconverged = on_unconverged
        self._sample_rate = sample_rate
        self._max_gathered_edges = max_gathered_edges

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]):
        bands, info = inputs
        edges = bands | "Buckets" >> beam.GroupByKey() | "BucketEdges" >> beam.ParDo(BucketEdges())
        components = edges | "Components" >> ConnectedComponents(
            self._max_rounds, self._on_unconverged, self._max_gathered_edges
        )
        chosen = (
            (
                components["labels"]
                | "TagLabels"
                >> beam.MapTuple(lambda d, c: (d, ("c", c))).with_output_types(tuple[Any, Any]),
                info
                | "TagInfo"
                >> beam.MapTuple(lambda d, v: (d, ("i", v))).with_output_types(tuple[Any, Any]),
            )
            | "FlattenNodes" >> beam.Flatten()
            | "ByNode" >> beam.GroupByKey()
            | "ClusterOfNode" >> beam.ParDo(_ClusterOfNode())
            | "ByCluster" >> beam.GroupByKey()
            | "ChooseKept"
            >> beam.ParDo(ChooseKept(self._sample_rate)).with_outputs(
                "clusters", "kept_sampled", main="removed"
            )
        )
        return {
            "removed": chosen.removed,
            "clusters": chosen.clusters,
            "rounds": components["rounds"],
            "kept_sampled": chosen.kept_sampled,
        }


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
    already deduplicated pool (its saved band index, made with the same MinHashConfig).

    The pools use `NearClusters` on band keys computed while staging each input file
    (pipeline/dedup/transforms.py); this transform computes them from texts."""

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
            | "BandKeys"
            >> beam.ParDo(BandKeys(self._config)).with_outputs("info", "band_keys", main="bands")
        )
        bands, info = banded.bands, banded.info
        if self._prior is not None:
            bands = (
                bands,
                self._prior
                | "PriorBandKeys" >> beam.FlatMap(_prior_bands).with_output_types(tuple[Any, Any]),
            ) | "WithPriorBands" >> beam.Flatten()
            info = (
                info,
                self._prior
                | "PriorInfo" >> beam.Map(_prior_info).with_output_types(tuple[Any, Any]),
            ) | "WithPriorInfo" >> beam.Flatten()
        near = (bands, info) | "NearClusters" >> NearClusters(
            self._max_rounds, self._on_unconverged
        )
        duplicates = near["removed"] | "AsDuplicates" >> beam.Map(
            lambda r: Duplicate(r[0], r[2], r[3])
        )
        kept = (
            {
                "doc": docs | "DocIds" >> beam.Map(lambda kv: (kv[0], None)),
                "removed": duplicates | "RemovedIds" >> beam.Map(lambda d: (d.doc_id, None)),
            }
            | "JoinRemoved" >> beam.CoGroupByKey()
            | "Kept" >> beam.ParDo(KeepUnremoved())
        )
        return {
            "kept": kept,
            "duplicates": duplicates,
            "clusters": near["clusters"],
            "rounds": near["rounds"],
            "band_keys": banded.band_keys,
        }
