"""Exact + MinHash near-duplicate removal over pool rows, as one Beam transform.

Prior URLs (incremental), exact groups by text hash, then `NearDedup`; counted stages
`prior_urls`, `exact_dedup`, `near_dedup`. The result depends only on the set of input rows.
Dataflow: docs/stages/dedup.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from pipeline.core.counters import StageCounter
from pipeline.dedup.config import DedupOptions
from pipeline.dedup.exact import ExactMember, decide_exact_group, text_hash
from pipeline.dedup.near import NearDedup
from pipeline.dedup.report import in_report_sample, pair_record
from pipeline.dedup.schema import duplicate_row, index_row

DUPLICATES = "duplicates"
INDEX = "index"
PAIR_SIDES = "pair_sides"
CLUSTER_SIZES = "cluster_sizes"
DEDUP_STAGES = ("prior_urls", "exact_dedup", "near_dedup")


class DropPriorUrls(beam.DoFn):
    """(doc_id, {"new": rows, "prior": ids}) -> rows whose URL is not in a prior pool."""

    def setup(self) -> None:
        self._counts = StageCounter("prior_urls")

    def process(self, element: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        doc_id, joined = element
        rows = list(joined["new"])
        if not rows:
            return
        self._counts.entered(len(rows))
        if any(True for _ in joined["prior"]):
            self._counts.dropped("url_in_prior_pool", len(rows))
            for row in rows:
                yield pvalue.TaggedOutput(DUPLICATES, duplicate_row(row, doc_id, doc_id, "url"))
            return
        self._counts.kept(len(rows))
        yield from rows


class HashText(beam.DoFn):
    """Pool row -> (text hash, row)."""

    def process(self, row: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield text_hash(row["text"]), row


class ChooseExact(beam.DoFn):
    """(text hash, {"new": rows, "prior": ExactMembers}) -> the kept row as (doc_id,
    (row, hash)); removed rows to `duplicates`; (kind, size) to `cluster_sizes`."""

    def setup(self) -> None:
        self._counts = StageCounter("exact_dedup")

    def process(self, element: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        digest, joined = element
        rows = {row["doc_id"]: row for row in joined["new"]}
        if not rows:
            # A prior hash no new page shares
            return
        self._counts.entered(len(rows))
        members = [ExactMember(d, len(r["text"]), False) for d, r in rows.items()]
        members.extend(ExactMember(*m) for m in joined["prior"])
        decision = decide_exact_group(members)
        if decision.removed:
            self._counts.dropped("exact_duplicate", len(decision.removed))
            yield pvalue.TaggedOutput(CLUSTER_SIZES, ("exact", len(members)))
        for doc_id in decision.removed:
            row = rows[doc_id]
            yield pvalue.TaggedOutput(
                DUPLICATES, duplicate_row(row, decision.cluster_id, decision.kept_id, "exact")
            )
        if decision.kept_id in rows:
            self._counts.kept()
            yield decision.kept_id, (rows[decision.kept_id], digest)


class ApplyNearDecision(beam.DoFn):
    """(doc_id, {"row": [(row, hash)], "dup": [Duplicate], "keys": [band keys]}) -> kept row;
    duplicate rows, band index rows and report pair sides to tagged outputs."""

    def __init__(self, sample_rate: int) -> None:
        self._sample_rate = sample_rate

    def process(self, element: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        doc_id, joined = element
        for row, digest in joined["row"]:
            duplicate = next(iter(joined["dup"]), None)
            if duplicate is not None:
                dup = duplicate_row(row, duplicate.cluster_id, duplicate.kept_id, "near")
                yield pvalue.TaggedOutput(DUPLICATES, dup)
                if in_report_sample(duplicate.kept_id, self._sample_rate):
                    yield pvalue.TaggedOutput(PAIR_SIDES, (duplicate.kept_id, ("dup", dup)))
                continue
            keys = next(iter(joined["keys"]), [])
            yield pvalue.TaggedOutput(INDEX, index_row(doc_id, digest, len(row["text"]), keys))
            if in_report_sample(doc_id, self._sample_rate):
                yield pvalue.TaggedOutput(PAIR_SIDES, (doc_id, ("kept", row)))
            yield row


def _no_near(element: tuple[str, tuple[dict[str, Any], str]]) -> Iterator[Any]:
    doc_id, (row, digest) = element
    yield pvalue.TaggedOutput(INDEX, index_row(doc_id, digest, len(row["text"]), []))
    yield row


def _pairs_of_cluster(element: tuple[str, Iterable[tuple[str, dict[str, Any]]]], minhash):
    _, sides = element
    kept = [row for side, row in sides if side == "kept"]
    if not kept:  # the kept page belongs to a prior pool (incremental mode)
        return
    for side, row in sides:
        if side == "dup":
            yield pair_record(kept[0], row, minhash)


class Deduplicate(beam.PTransform):
    """Pool rows -> {"pages", "duplicates", "index", "pairs", "cluster_sizes", "rounds"}.

    `prior`: band index rows (dicts of the band_index format) of already deduplicated pools
    for incremental mode, or None.
    """

    def __init__(self, options: DedupOptions, prior: beam.PCollection | None = None) -> None:
        super().__init__()
        self._options = options
        self._prior = prior

    def expand(self, rows: beam.PCollection) -> dict[str, beam.PCollection]:
        o = self._options
        duplicates: list[beam.PCollection] = []
        sizes: list[beam.PCollection] = []
        if self._prior is not None:
            checked = {
                "new": rows | "KeyByDocId" >> beam.Map(lambda r: (r["doc_id"], r)),
                "prior": self._prior | "PriorIds" >> beam.Map(lambda r: (r["doc_id"], None)),
            } | "JoinPriorIds" >> beam.CoGroupByKey()
            fresh = checked | "DropPriorUrls" >> beam.ParDo(DropPriorUrls()).with_outputs(
                DUPLICATES, main="ok"
            )
            duplicates.append(fresh[DUPLICATES])
            rows = fresh.ok
        hashed = rows | "HashText" >> beam.ParDo(HashText())
        if o.exact:
            groups: dict[str, beam.PCollection] = {"new": hashed}
            groups["prior"] = (
                self._prior
                | "PriorHashes"
                >> beam.Map(lambda r: (r["text_hash"], (r["doc_id"], r["n_chars"], True)))
                if self._prior is not None
                else hashed | "NoPriorHashes" >> beam.FlatMap(lambda _: [])
            )
            exact = (
                groups
                | "GroupByTextHash" >> beam.CoGroupByKey()
                | "ChooseExact"
                >> beam.ParDo(ChooseExact()).with_outputs(DUPLICATES, CLUSTER_SIZES, main="kept")
            )
            duplicates.append(exact[DUPLICATES])
            sizes.append(exact[CLUSTER_SIZES])
            unique = exact.kept
        else:
            unique = hashed | "KeyKept" >> beam.Map(lambda kv: (kv[1]["doc_id"], (kv[1], kv[0])))

        if o.near:
            prior_keys = None
            if self._prior is not None:
                prior_keys = self._prior | "PriorBandKeys" >> beam.Map(
                    lambda r: (r["doc_id"], r["n_chars"], r["band_keys"])
                )
            near = (
                unique
                | "DocText" >> beam.Map(lambda kv: (kv[0], kv[1][0]["text"]))
                | "NearDedup" >> NearDedup(o.minhash, o.max_rounds, prior=prior_keys)
            )
            decided = (
                {
                    "row": unique,
                    "dup": near["duplicates"] | "DupById" >> beam.Map(lambda d: (d.doc_id, d)),
                    "keys": near["band_keys"],
                }
                | "JoinDecisions" >> beam.CoGroupByKey()
                | "ApplyNearDecision"
                >> beam.ParDo(ApplyNearDecision(o.report_sample_rate)).with_outputs(
                    DUPLICATES, INDEX, PAIR_SIDES, main="pages"
                )
            )
            duplicates.append(decided[DUPLICATES])
            sizes.append(near["clusters"] | "NearSizes" >> beam.Map(lambda c: ("near", c.size)))
            pairs = (
                decided[PAIR_SIDES]
                | "GroupPairSides" >> beam.GroupByKey()
                | "MeasurePairs" >> beam.FlatMap(_pairs_of_cluster, o.minhash)
            )
            rounds = near["rounds"]
        else:
            decided = unique | "NoNearDedup" >> beam.FlatMap(_no_near).with_outputs(
                INDEX, main="pages"
            )
            pairs = rows | "NoPairs" >> beam.FlatMap(lambda _: [])
            rounds = rows | "NoRounds" >> beam.FlatMap(lambda _: [])

        if not sizes:  # neither exact nor near dedup: an empty size list, not a missing one
            sizes.append(rows | "NoSizes" >> beam.FlatMap(lambda _: []))
        size_counts = (
            sizes
            | "FlattenSizes" >> beam.Flatten()
            | "CountSizes" >> beam.combiners.Count.PerElement()
            | "SizeRecord" >> beam.Map(lambda kv: (kv[0][0], kv[0][1], kv[1]))
        )
        return {
            "pages": decided.pages,
            "duplicates": duplicates | "FlattenDuplicates" >> beam.Flatten(),
            "index": decided[INDEX],
            "pairs": pairs,
            "cluster_sizes": size_counts,
            "rounds": rounds,
        }


def prior_index_pattern(pool_dir: str) -> str:
    from pipeline.dedup.schema import BAND_INDEX_DIR, BAND_INDEX_PREFIX

    return FileSystems.join(pool_dir, BAND_INDEX_DIR, f"{BAND_INDEX_PREFIX}-*.parquet")
