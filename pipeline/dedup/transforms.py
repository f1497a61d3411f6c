"""URL, exact and MinHash near-duplicate decisions on key records, then one pass per part.

    key records -> [newest capture per URL] -> [prior URLs] -> [exact, by text hash]
                -> [near: bands -> connected components -> clusters] -> decisions by part
    staged part + its decisions -> pool, duplicates/, band_index/ files of that part

Only key records (pipeline/dedup/parts.py) and decisions cross a shuffle; pages stay in their
staged part. Groups (a URL, a text hash, a bucket, a cluster) are streamed, never gathered. The
result depends only on the set of input rows. Dataflow: docs/stages/dedup.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from pipeline.core.counters import StageCounter
from pipeline.core.files import delete_tree
from pipeline.dedup.config import DedupOptions
from pipeline.dedup.minhash import MinHashConfig
from pipeline.dedup.near import NearClusters
from pipeline.dedup.parts import (
    PARTS_DIR,
    ParquetPartWriter,
    band_keys_of,
    iter_part,
    output_name,
    part_path,
    split_ref,
    stage_rows,
)
from pipeline.dedup.report import in_report_sample, pair_record
from pipeline.dedup.schema import (
    BAND_INDEX_DIR,
    BAND_INDEX_PREFIX,
    DUPLICATES_DIR,
    DUPLICATES_PREFIX,
    DUPLICATES_SCHEMA,
    band_index_schema,
    duplicate_row,
    index_row,
)
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_SCHEMA

DEDUP_STAGES = ("prior_urls", "exact_dedup", "near_dedup")
URL_STAGE = "url_dedup"
DECISIONS = "decisions"
PARTS = "parts"
PAIR_SIDES = "pair_sides"
SHUFFLE_STAGE = "shuffle"
# Keyed records of several shapes meet in one Flatten or GroupByKey: declared as plain pairs so
# that Beam does not build a tuple coder from one input's inferred shape.
KV = tuple[Any, Any]

# What a decision does to a row: the stage that removed it and the reason counted there.
REMOVED_BY = {
    "url": (URL_STAGE, "duplicate_url"),
    "prior_url": ("prior_urls", "url_in_prior_pool"),
    "exact": ("exact_dedup", "exact_duplicate"),
    "near": ("near_dedup", "near_duplicate"),
}
# A kept row that is the kept page of a sampled near-duplicate cluster (the report's pairs).
KEPT_SAMPLED = "kept"
# Written to duplicates/ with this kind (the within-run URL losers are only counted).
DUPLICATE_KIND = {"prior_url": "url", "exact": "exact", "near": "near"}


def _decision(ref: int, kind: str, cluster_id: str = "", kept_id: str = "") -> tuple[int, Any]:
    part, row = split_ref(ref)
    return part, (row, kind, cluster_id, kept_id)


class MeasureShuffle(beam.DoFn):
    """Passes records through, counting their encoded bytes (Beam's pickling coder, as a
    shuffle would write them) under `shuffle.note.<name>_bytes` / `_records`."""

    def __init__(self, name: str) -> None:
        self._name = name

    def setup(self) -> None:
        self._coder = beam.coders.FastPrimitivesCoder()
        self._counter = StageCounter(SHUFFLE_STAGE)

    def process(self, element: Any) -> Iterator[Any]:
        self._counter.note(f"{self._name}_bytes", len(self._coder.encode(element)))
        self._counter.note(f"{self._name}_records")
        yield element


def split_shuffle_counters(
    counters: dict[str, int], pages_counter: str
) -> tuple[dict[str, int], dict[str, float]]:
    """(the stage counters without the shuffle measurements, encoded bytes per page that
    crossed each measured shuffle and their total); pages: the `pages_counter` value."""
    prefix = f"{SHUFFLE_STAGE}.note."
    pages = counters.get(pages_counter, 0)
    per_page: dict[str, float] = {}
    for name, value in counters.items():
        if name.startswith(prefix) and name.endswith("_bytes"):
            per_page[name[len(prefix) : -len("_bytes")]] = round(value / pages, 1) if pages else 0.0
    per_page["total"] = round(sum(per_page.values()), 1)
    rest = {k: v for k, v in counters.items() if not k.startswith(f"{SHUFFLE_STAGE}.")}
    return rest, per_page


def _shuffled(pcoll: beam.PCollection, name: str) -> beam.PCollection:
    """GroupByKey with the bytes that cross it counted."""
    return (
        pcoll
        | f"Measure{name}" >> beam.ParDo(MeasureShuffle(name))
        | f"Group{name}" >> beam.GroupByKey()
    )


# --- decisions (each DoFn reads its group twice as an iterable, never as a list) ----------


class NewestCapture(beam.DoFn):
    """(doc_id, captures (ref, fetch µs, offset, hash, length, bands)) -> the newest capture as
    a survivor (doc_id, ref, hash, length, bands); the older ones as `url` decisions."""

    def process(self, element: tuple[str, Iterable[tuple]]) -> Iterator[Any]:
        doc_id, captures = element
        best: tuple[int, int, int] | None = None
        for ref, fetch_us, offset, *_ in captures:
            # Newest first; ties broken by file (its part number: parts are numbered in file
            # order) and offset, so the choice does not depend on the order of arrival.
            order = (fetch_us, split_ref(ref)[0], offset)
            if best is None or order > best:
                best = order
        for ref, fetch_us, offset, digest, length, bands in captures:
            if (fetch_us, split_ref(ref)[0], offset) == best:
                yield doc_id, ref, digest, length, bands
                best = None  # one winner even if two captures tie exactly
            else:
                yield pvalue.TaggedOutput(DECISIONS, _decision(ref, "url"))


class DropPriorUrls(beam.DoFn):
    """(doc_id, [None for a prior page | survivor tail]) -> survivors whose URL is not in a
    prior pool; the others as `prior_url` decisions."""

    def process(self, element: tuple[str, Iterable[Any]]) -> Iterator[Any]:
        doc_id, values = element
        in_prior = any(value is None for value in values)
        for value in values:
            if value is None:
                continue
            if in_prior:
                yield pvalue.TaggedOutput(
                    DECISIONS, _decision(value[0], "prior_url", doc_id, doc_id)
                )
            else:
                yield (doc_id, *value)


def _exact_rank(member: Sequence[Any]) -> tuple[bool, int, str]:
    # (doc_id, length[, ref, bands]): a prior page (2 fields) first, then the longest raw text,
    # then the smallest doc_id (`decide_exact_group`).
    return (len(member) != 2, -member[1], member[0])


class ChooseExact(beam.DoFn):
    """(text hash, members: new (doc_id, length, ref, bands) | prior (doc_id, length)) -> the
    kept new page as a survivor (doc_id, ref, length, bands); the others as `exact` decisions;
    ("exact", group size) to `cluster_sizes` when something was removed."""

    def process(self, element: tuple[bytes, Iterable[Sequence[Any]]]) -> Iterator[Any]:
        _, members = element
        best: tuple[bool, int, str] | None = None
        best_ref: int | None = None
        cluster_id: str | None = None
        size = new = 0
        for member in members:
            size += 1
            new += len(member) != 2
            rank = _exact_rank(member)
            if best is None or rank < best:
                best, best_ref = rank, member[2] if len(member) != 2 else None
            if cluster_id is None or member[0] < cluster_id:
                cluster_id = member[0]
        if not new:  # a prior hash no new page shares
            return
        assert best is not None and cluster_id is not None
        kept_id = best[2]
        removed = 0
        for member in members:
            if len(member) == 2:
                continue
            doc_id, length, ref, bands = member
            if ref == best_ref:
                yield doc_id, ref, length, bands
            else:
                removed += 1
                yield pvalue.TaggedOutput(DECISIONS, _decision(ref, "exact", cluster_id, kept_id))
        if removed:
            yield pvalue.TaggedOutput("cluster_sizes", ("exact", size))


def _prior_band_records(row: dict[str, Any]) -> list[tuple[tuple[int, int], tuple[str]]]:
    member = (row["doc_id"],)  # a prior page (see pipeline/dedup/near.py)
    return [((band, int(key)), member) for band, key in enumerate(row["band_keys"])]


def _band_records(survivor: tuple[str, int, int, bytes]) -> Iterator[tuple[tuple[int, int], str]]:
    doc_id, _, _, bands = survivor
    for band, key in enumerate(band_keys_of(bands)):
        yield (band, key), doc_id


class DecideDuplicates(beam.PTransform):
    """Key records -> {"decisions": (part, (row, kind, cluster_id, kept_id)), "cluster_sizes":
    (kind, size), "rounds": (round, active edges)}.

    `options` None: the URL decision only (a pool without dedup). `prior`: band index rows of
    already deduplicated pools (incremental mode), or None.
    """

    def __init__(
        self,
        options: DedupOptions | None,
        url_dedup: bool,
        prior: beam.PCollection | None = None,
    ) -> None:
        super().__init__()
        self._options = options
        self._url_dedup = url_dedup
        self._prior = prior

    def expand(self, keys: beam.PCollection) -> dict[str, beam.PCollection]:
        o = self._options
        decisions: list[beam.PCollection] = []
        sizes: list[beam.PCollection] = []
        # Survivors: (doc_id, ref, text hash, length, bands).
        if self._url_dedup:
            url = _shuffled(
                keys | "KeyByUrl" >> beam.Map(lambda k: (k[0], k[1:])).with_output_types(KV), "Url"
            ) | "NewestCapture" >> beam.ParDo(NewestCapture()).with_outputs(DECISIONS, main="ok")
            decisions.append(url[DECISIONS])
            survivors = url.ok
        else:
            survivors = keys | "NoUrlDedup" >> beam.Map(
                lambda k: (k[0], k[1], k[4], k[5], k[6])
            ).with_output_types(Any)
        if self._prior is not None:
            fresh = _shuffled(
                (
                    survivors
                    | "ByDocId" >> beam.Map(lambda s: (s[0], s[1:])).with_output_types(KV),
                    self._prior
                    | "PriorIds" >> beam.Map(lambda r: (r["doc_id"], None)).with_output_types(KV),
                )
                | "WithPriorIds" >> beam.Flatten(),
                "PriorUrls",
            ) | "DropPriorUrls" >> beam.ParDo(DropPriorUrls()).with_outputs(DECISIONS, main="ok")
            decisions.append(fresh[DECISIONS])
            survivors = fresh.ok
        # From here: (doc_id, ref, length, bands).
        if o is not None and o.exact:
            groups = [
                survivors
                | "ByTextHash"
                >> beam.Map(lambda s: (s[2], (s[0], s[3], s[1], s[4]))).with_output_types(KV)
            ]
            if self._prior is not None:
                groups.append(
                    self._prior
                    | "PriorHashes"
                    >> beam.Map(
                        lambda r: (bytes.fromhex(r["text_hash"]), (r["doc_id"], int(r["n_chars"])))
                    ).with_output_types(KV)
                )
            exact = _shuffled(groups | "WithPriorHashes" >> beam.Flatten(), "TextHash") | (
                "ChooseExact"
                >> beam.ParDo(ChooseExact()).with_outputs(DECISIONS, "cluster_sizes", main="ok")
            )
            decisions.append(exact[DECISIONS])
            sizes.append(exact.cluster_sizes)
            unique = exact.ok
        else:
            unique = survivors | "NoExact" >> beam.Map(
                lambda s: (s[0], s[1], s[3], s[4])
            ).with_output_types(Any)

        rounds = None
        if o is not None and o.near:
            bands = unique | "BandRecords" >> beam.FlatMap(_band_records).with_output_types(KV)
            info = unique | "NodeInfo" >> beam.Map(
                lambda s: (s[0], (s[2], s[1]))
            ).with_output_types(KV)
            if self._prior is not None:
                bands = (
                    bands,
                    self._prior
                    | "PriorBands" >> beam.FlatMap(_prior_band_records).with_output_types(KV),
                ) | "WithPriorBands" >> beam.Flatten()
                info = (
                    info,
                    self._prior
                    | "PriorInfo"
                    >> beam.Map(
                        lambda r: (r["doc_id"], (int(r["n_chars"]), None))
                    ).with_output_types(KV),
                ) | "WithPriorInfo" >> beam.Flatten()
            bands = bands | "MeasureBands" >> beam.ParDo(MeasureShuffle("Bands"))
            info = info | "MeasureNodes" >> beam.ParDo(MeasureShuffle("Nodes"))
            near = (bands, info) | "NearClusters" >> NearClusters(
                o.max_rounds,
                on_unconverged="gather" if o.max_gathered_edges else "raise",
                sample_rate=o.report_sample_rate,
                max_gathered_edges=o.max_gathered_edges or None,
            )
            decisions.append(
                near["removed"]
                | "NearDecisions"
                >> beam.Map(lambda r: _decision(r[1], "near", r[2], r[3])).with_output_types(KV)
            )
            decisions.append(
                near["kept_sampled"]
                | "SampledKept"
                >> beam.Map(lambda r: _decision(r[1], KEPT_SAMPLED, r[2], r[0])).with_output_types(
                    KV
                )
            )
            sizes.append(near["clusters"] | "NearSizes" >> beam.Map(lambda c: ("near", c.size)))
            rounds = near["rounds"]
        if rounds is None:
            rounds = keys | "NoRounds" >> beam.FlatMap(lambda _: [])
        if not decisions:
            decisions.append(keys | "NoDecisions" >> beam.FlatMap(lambda _: []))
        if not sizes:
            sizes.append(keys | "NoSizes" >> beam.FlatMap(lambda _: []))
        size_counts = (
            sizes
            | "FlattenSizes" >> beam.Flatten()
            | "CountSizes" >> beam.combiners.Count.PerElement()
            | "SizeRecord" >> beam.Map(lambda kv: (kv[0][0], kv[0][1], kv[1]))
        )
        return {
            "decisions": decisions | "FlattenDecisions" >> beam.Flatten(),
            "cluster_sizes": size_counts,
            "rounds": rounds,
        }


# --- one pass per part ----------------------------------------------------------------------


class SplitPart(beam.DoFn):
    """(part, [its row count | decisions]) -> the part's pool, duplicates and band index files
    (written atomically under their final names in `staging`); pair sides of sampled clusters
    to `pair_sides`. Counts every row at each dedup stage it reached."""

    def __init__(
        self,
        staging: str,
        n_parts: int,
        stages: Sequence[str],
        minhash: MinHashConfig | None,
        sample_rate: int,
    ) -> None:
        self._staging = staging
        self._n_parts = n_parts
        self._stages = tuple(stages)
        self._minhash = minhash
        self._sample_rate = sample_rate

    def setup(self) -> None:
        self._counters = {stage: StageCounter(stage) for stage in self._stages}

    def _writer(self, folder: str, prefix: str, part: int, schema: Any) -> ParquetPartWriter:
        name = output_name(prefix, part, self._n_parts)
        path = (
            FileSystems.join(self._staging, folder, name)
            if folder
            else (FileSystems.join(self._staging, name))
        )
        return ParquetPartWriter(path, schema)

    def process(self, element: tuple[int, Iterable[Any]]) -> Iterator[Any]:
        part, values = element
        decided: dict[int, tuple[str, str, str]] = {}
        for value in values:
            if value is not None:  # the part's own marker is None
                decided[value[0]] = value[1:]
        writers = [self._writer("", POOL_FILE_PREFIX, part, POOL_SCHEMA)]
        if self._minhash is not None:
            writers.append(self._writer(DUPLICATES_DIR, DUPLICATES_PREFIX, part, DUPLICATES_SCHEMA))
            index_schema = band_index_schema(self._minhash)
            writers.append(self._writer(BAND_INDEX_DIR, BAND_INDEX_PREFIX, part, index_schema))
        # Per stage: [in, kept, dropped]; counted once per part.
        counts = {stage: [0, 0, 0] for stage in self._stages}
        try:
            yield from self._split(part, decided, writers, counts)
            for writer in writers:
                writer.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        for stage, (entered, kept, dropped) in counts.items():
            counter = self._counters[stage]
            counter.entered(entered)
            counter.kept(kept)
            if dropped:
                counter.dropped(_reason(stage), dropped)

    def _split(self, part, decided, writers, counts) -> Iterator[Any]:
        pool: list[dict[str, Any]] = []
        dups: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        for row_no, staged in enumerate(iter_part(part_path(self._staging, part))):
            digest = staged.pop("text_hash")
            bands = staged.pop("band_keys")
            kind, cluster_id, kept_id = decided.get(row_no, (None, "", ""))
            removed_at = REMOVED_BY[kind][0] if kind in REMOVED_BY else None
            for stage in self._stages:
                c = counts[stage]
                c[0] += 1
                if stage == removed_at:
                    c[2] += 1
                    break
                c[1] += 1
            if kind in DUPLICATE_KIND:
                dup = duplicate_row(staged, cluster_id, kept_id, DUPLICATE_KIND[kind])
                dups.append(dup)
                if kind == "near" and in_report_sample(kept_id, self._sample_rate):
                    yield pvalue.TaggedOutput(PAIR_SIDES, (kept_id, ("dup", _side(dup))))
            elif kind != "url":
                pool.append(staged)
                index.append(
                    index_row(staged["doc_id"], digest, staged["n_chars"], band_keys_of(bands))
                )
                if kind == KEPT_SAMPLED:
                    yield pvalue.TaggedOutput(PAIR_SIDES, (kept_id, ("kept", _side(staged))))
            if len(pool) + len(dups) >= 256:
                _write_batches(writers, pool, dups, index)
                pool, dups, index = [], [], []
        _write_batches(writers, pool, dups, index)


def _write_batches(writers, pool, dups, index) -> None:
    writers[0].write(pool)
    if len(writers) > 1:
        writers[1].write(dups)
        writers[2].write(index)


def _reason(stage: str) -> str:
    return next(reason for s, reason in REMOVED_BY.values() if s == stage)


def _side(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("doc_id", "url", "text") if k in row} | (
        {"cluster_id": row["cluster_id"]} if "cluster_id" in row else {}
    )


def _pairs_of_cluster(element: tuple[str, Iterable[tuple[str, dict[str, Any]]]], minhash):
    _, sides = element
    kept = next((row for side, row in sides if side == "kept"), None)
    if kept is None:  # the kept page belongs to a prior pool (incremental mode)
        return
    for side, row in sides:
        if side == "dup":
            yield pair_record(kept, row, minhash)


class WriteParts(beam.PTransform):
    """(parts: (part, rows), decisions) -> every part split into its output files; returns
    the report's pairs (sampled near-duplicate pairs with their true Jaccard)."""

    def __init__(
        self,
        staging: str,
        n_parts: int,
        stages: Sequence[str],
        options: DedupOptions | None,
    ) -> None:
        super().__init__()
        self._staging = staging
        self._n_parts = n_parts
        self._stages = stages
        self._options = options

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        parts, decisions = inputs
        o = self._options
        minhash = o.minhash if o is not None else None
        rate = o.report_sample_rate if o is not None else 1
        split = (
            (
                parts | "PartMarkers" >> beam.Map(lambda p: (p[0], None)).with_output_types(KV),
                decisions,
            )
            | "WithMarkers" >> beam.Flatten()
            | "MeasureDecisions" >> beam.ParDo(MeasureShuffle("Decisions"))
            | "ByPart" >> beam.GroupByKey()
            | "SplitPart"
            >> beam.ParDo(
                SplitPart(self._staging, self._n_parts, self._stages, minhash, rate)
            ).with_outputs(PAIR_SIDES, main="done")
        )
        if minhash is None:
            return split[PAIR_SIDES] | "NoPairs" >> beam.FlatMap(lambda _: [])
        return (
            split[PAIR_SIDES]
            | "GroupPairSides" >> beam.GroupByKey()
            | "MeasurePairs" >> beam.FlatMap(_pairs_of_cluster, minhash)
        )


class StagePoolFile(beam.DoFn):
    """(part number, pool Parquet file) -> its staged part (rows + text hash + band keys); key
    records (main output) and (part, rows) to `parts` (`mathcorpus dedup`'s map step)."""

    def __init__(self, staging: str, minhash: MinHashConfig | None) -> None:
        self._staging = staging
        self._minhash = minhash

    def setup(self) -> None:
        from pipeline.dedup.shingles import char_tables

        self._near = StageCounter("near_dedup")
        if self._minhash is not None:
            char_tables()

    def process(self, element: tuple[int, str]) -> Iterator[Any]:
        part, path = element
        keys, no_shingles = stage_rows(
            part_path(self._staging, part), part, iter_part(path, POOL_SCHEMA.names), self._minhash
        )
        if no_shingles:
            self._near.note("no_shingles", no_shingles)
        yield from keys
        yield pvalue.TaggedOutput(PARTS, (part, len(keys)))


def stage_pool_files(
    p: beam.Pipeline, files: Sequence[str], staging: str, options: DedupOptions
) -> dict[str, beam.PCollection]:
    """The pool files of a pool folder as staged parts: {"keys", "parts"}."""
    minhash = options.minhash if options.near else None
    staged = (
        p
        | "ListPoolFiles" >> beam.Create(list(enumerate(files)))
        | "SpreadPoolFiles" >> beam.Reshuffle()
        | "StagePoolFile"
        >> beam.ParDo(StagePoolFile(staging, minhash)).with_outputs(PARTS, main="keys")
    )
    return {"keys": staged.keys, PARTS: staged[PARTS]}


def decide_and_write(
    keys: beam.PCollection,
    parts: beam.PCollection,
    staging: str,
    n_parts: int,
    stages: Sequence[str],
    options: DedupOptions | None,
    url_dedup: bool,
    prior: beam.PCollection | None = None,
) -> dict[str, beam.PCollection]:
    """Decisions on the key records, then every staged part split into its output files;
    {"pairs", "cluster_sizes", "rounds"} for the dedup report."""
    decided = keys | "DecideDuplicates" >> DecideDuplicates(options, url_dedup, prior)
    pairs = (parts, decided["decisions"]) | "WriteParts" >> WriteParts(
        staging, n_parts, stages, options
    )
    return {"pairs": pairs, "cluster_sizes": decided["cluster_sizes"], "rounds": decided["rounds"]}


def remove_staged_parts(staging: str) -> None:
    """Delete the staged parts once every part is split (before the output is committed)."""
    delete_tree(FileSystems.join(staging, PARTS_DIR))


def prior_index_pattern(pool_dir: str) -> str:
    return FileSystems.join(pool_dir, BAND_INDEX_DIR, f"{BAND_INDEX_PREFIX}-*.parquet")
