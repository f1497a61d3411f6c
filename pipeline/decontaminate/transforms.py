"""Beam transforms of decontamination: match pages against the benchmark index, report leaks.

The index is built once on the driver and read by the workers as a side input; a page that
matches goes to `removed` with the benchmark items and the matched span.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DeadLetter,
    dead_letter_output,
)
from pipeline.core.files import match_files
from pipeline.decontaminate.benchmarks import (
    BenchmarkSpec,
    load_items,
)
from pipeline.decontaminate.config import (
    DECONTAM_FORMAT_VERSION,
    EXAMPLE_URLS,
    KEPT,
    REMOVED,
    REMOVED_FIELDS,
    REQUIRED_COLUMNS,
    STAGE,
    DecontaminateConfig,
)
from pipeline.decontaminate.ngram_index import BenchmarkIndex, PageMatch
from pipeline.pool.schema import POOL_FILE_PREFIX

# --- pure helpers ---------------------------------------------------------------------------


def resolve_input_files(inputs: Iterable[str]) -> list[str]:
    """Each input: a folder (its `pool-*.parquet`) or a glob of Parquet files."""
    files: list[str] = []
    problems: list[str] = []
    for spec in inputs:
        found = match_files(FileSystems.join(spec.rstrip("/"), f"{POOL_FILE_PREFIX}-*.parquet"))
        found = found or [f for f in match_files(spec) if f.endswith(".parquet")]
        if not found:
            problems.append(f"--input {spec!r}: no pool-*.parquet in that folder, no Parquet file")
        files.extend(found)
    raise_if_problems("decontaminate inputs", problems)
    return sorted(dict.fromkeys(files))


def read_schema(path: str) -> pa.Schema:
    with FileSystems.open(path) as fh:
        return pq.read_schema(pa.BufferReader(fh.read()))


def input_schema(files: Sequence[str]) -> pa.Schema:
    """The schema all input files share (the kept pages are written with it)."""
    first = read_schema(files[0])
    problems = [f"{files[0]}: no column {c!r}" for c in REQUIRED_COLUMNS if c not in first.names]
    for path in files[1:]:
        schema = read_schema(path)
        if not schema.equals(first, check_metadata=False):
            problems.append(f"{path}: its columns differ from {files[0]}'s")
    raise_if_problems("decontaminate inputs", problems)
    return first


def removed_schema(schema: pa.Schema) -> pa.Schema:
    """Input columns plus what matched (FORMAT.md, "Decontaminated corpus")."""
    metadata = {
        b"mathcorpus.format": b"decontam_removed",
        b"mathcorpus.format_version": str(DECONTAM_FORMAT_VERSION).encode(),
    }
    return pa.schema([*schema, *REMOVED_FIELDS], metadata=metadata)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with FileSystems.open(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_index(specs: Sequence[BenchmarkSpec], config: DecontaminateConfig) -> BenchmarkIndex:
    items = []
    for spec in specs:
        items.extend(load_items(spec, config.jsonl_text_fields, config.jsonl_id_field))
    return BenchmarkIndex.build(items, n=config.ngram, min_short=config.min_short_grams)


def removed_row(row: dict[str, Any], match: PageMatch) -> dict[str, Any]:
    primary = match.primary
    return {
        **row,
        "benchmark": primary.benchmark,
        "item_id": primary.item_id,
        "matched_span": primary.span,
        "match_rule": primary.rule,
        "matched_items": [
            {"benchmark": m.benchmark, "item_id": m.item_id, "rule": m.rule, "windows": m.windows}
            for m in match.items
        ],
    }


def load_index_file(path: str) -> BenchmarkIndex:
    with FileSystems.open(path) as fh:
        return BenchmarkIndex.load(fh)


# --- Beam -----------------------------------------------------------------------------------


class MatchBenchmarks(beam.DoFn):
    """Pool row + index -> kept row (main), removed row (REMOVED) or dead letter."""

    def setup(self) -> None:
        self.counter = StageCounter(STAGE)

    def _dead(self, row: dict[str, Any], reason: str, error: str) -> pvalue.TaggedOutput:
        self.counter.dead_lettered(reason)
        record = DeadLetter(
            stage=STAGE,
            reason=reason,
            error=error,
            source=str(row.get("warc_file") or ""),
            offset=int(row["warc_offset"]) if row.get("warc_offset") is not None else -1,
            url=str(row.get("url") or ""),
            doc_id=str(row.get("doc_id") or ""),
        )
        return dead_letter_output(record)

    def process(self, row: dict[str, Any], index: BenchmarkIndex) -> Iterator[Any]:
        self.counter.entered()
        text = row.get("text")
        if not isinstance(text, str):
            yield self._dead(row, "no_text", f"text is {type(text).__name__}, not a string")
            return
        try:
            match = index.match(text)
        except Exception as exc:  # one page that breaks the matcher must not stop the run
            yield self._dead(row, "match_error", f"{type(exc).__name__}: {exc}")
            return
        if match is None:
            self.counter.kept()
            yield row
            return
        self.counter.dropped("contaminated")
        self.counter.note(f"rule_{match.primary.rule}")
        yield pvalue.TaggedOutput(REMOVED, removed_row(row, match))


class Decontaminate(beam.PTransform):
    """Pool rows -> {"kept", "removed", "dead_letter"}; `index` is a one-element PCollection
    holding the BenchmarkIndex (used as a singleton side input)."""

    def __init__(self, index: beam.PCollection) -> None:
        super().__init__()
        self.index = index

    def expand(self, rows: beam.PCollection) -> dict[str, beam.PCollection]:
        results = rows | "MatchBenchmarks" >> beam.ParDo(
            MatchBenchmarks(), index=beam.pvalue.AsSingleton(self.index)
        ).with_outputs(REMOVED, DEAD_LETTER, main=KEPT)
        return {KEPT: results[KEPT], REMOVED: results[REMOVED], DEAD_LETTER: results[DEAD_LETTER]}


class LeakCombineFn(beam.CombineFn):
    """Per benchmark item: pages, most windows on one page, a few example URLs (smallest)."""

    def create_accumulator(self) -> tuple[int, int, list[str]]:
        return (0, 0, [])

    def add_input(
        self, acc: tuple[int, int, list[str]], value: tuple[str, int]
    ) -> tuple[int, int, list[str]]:
        url, windows = value
        return (acc[0] + 1, max(acc[1], windows), sorted({*acc[2], url})[:EXAMPLE_URLS])

    def merge_accumulators(
        self, accs: Iterable[tuple[int, int, list[str]]]
    ) -> tuple[int, int, list[str]]:
        pages, windows, urls = 0, 0, set()
        for a in accs:
            pages += a[0]
            windows = max(windows, a[1])
            urls.update(a[2])
        return (pages, windows, sorted(urls)[:EXAMPLE_URLS])

    def extract_output(self, acc: tuple[int, int, list[str]]) -> dict[str, Any]:
        return {"pages": acc[0], "max_windows": acc[1], "example_urls": acc[2]}


def _item_leaks(row: dict[str, Any]) -> Iterator[tuple[tuple[str, str], tuple[str, int]]]:
    for m in row["matched_items"]:
        yield (m["benchmark"], m["item_id"]), (row["url"], m["windows"])


def _benchmarks_of(row: dict[str, Any]) -> list[str]:
    return sorted({m["benchmark"] for m in row["matched_items"]})


def _item_line(element: tuple[tuple[str, str], dict[str, Any]]) -> str:
    (benchmark, item_id), leak = element
    return json.dumps({"kind": "item", "benchmark": benchmark, "item_id": item_id, **leak})


def _benchmark_line(element: tuple[str, int]) -> str:
    return json.dumps({"kind": "benchmark", "benchmark": element[0], "pages": element[1]})


class ContaminationReport(beam.PTransform):
    """Removed rows -> JSON lines: one per leaked item, one per benchmark (pages removed)."""

    def expand(self, removed: beam.PCollection) -> beam.PCollection:
        items = (
            removed
            | "ItemLeaks" >> beam.FlatMap(_item_leaks)
            | "PerItem" >> beam.CombinePerKey(LeakCombineFn())
            | "ItemJson" >> beam.Map(_item_line)
        )
        benchmarks = (
            removed
            | "BenchmarksOfPage" >> beam.FlatMap(_benchmarks_of)
            | "PagesPerBenchmark" >> beam.combiners.Count.PerElement()
            | "BenchmarkJson" >> beam.Map(_benchmark_line)
        )
        return (items, benchmarks) | "ReportLines" >> beam.Flatten()
