"""`mathcorpus decontaminate`: remove every page that contains benchmark text.

The rule (DeepSeekMath section 2.1): a page is removed when it contains any 10-gram of a
benchmark text (question or answer); benchmark texts of 3 to 9 grams remove a page that contains
them exactly; shorter texts are ignored. Normalisation and grams: normalize.py; index and
matcher: ngram_index.py; benchmark formats: benchmarks.py (all in pipeline/decontaminate/).

Local (in-process runner), the mined corpus against the real benchmark files:

    mathcorpus decontaminate --input runs/mined/corpus \
        --benchmarks ../shared/data/benchmarks/gsm8k ../shared/data/benchmarks/math_hendrycks \
            ../shared/data/benchmarks/cmath agieval/sat-math.jsonl \
        --output runs/decontaminated

Dataflow (see deploy/):

    mathcorpus decontaminate --input gs://bucket/corpus --benchmarks gs://bucket/benchmarks/* \
        --output gs://bucket/decontaminated --runner=DataflowRunner --project=PROJECT \
        --region=REGION --temp_location=gs://bucket/tmp \
        --requirements_file=deploy/dataflow/requirements.txt

The driver loads the benchmarks, builds the hashed index and writes it into the output's staging
folder; workers read it from there as a side input (19 MiB for the full benchmark list), so the
job graph stays small. Output (FORMAT.md, "Decontaminated corpus"): kept pages as
`pool-*.parquet` (the input's columns), removed pages under `removed/` with the benchmark, item
and matched span, `contamination.json` naming what leaked, `benchmark_index.npz`, `stats.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.core.config_errors import ConfigError, raise_if_problems
from pipeline.core.counters import StageCounter, counters_from_beam_result, stats_document
from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DEAD_LETTER_GLOB,
    DeadLetter,
    WriteDeadLetters,
    dead_letter_output,
)
from pipeline.core.files import match_files
from pipeline.core.run_output import (
    STATS_FILE,
    OutputConflict,
    RunOutput,
    read_json,
    write_json_atomic,
)
from pipeline.core.stage_cli import with_default_runner
from pipeline.decontaminate.benchmarks import (
    DEFAULT_ID_FIELD,
    DEFAULT_TEXT_FIELDS,
    BenchmarkSpec,
    load_items,
    resolve_specs,
)
from pipeline.decontaminate.ngram_index import BenchmarkIndex, PageMatch
from pipeline.pool.schema import POOL_FILE_PREFIX

LOG = logging.getLogger("mathcorpus.decontaminate")

DECONTAM_FORMAT_VERSION = 1
STAGE = "decontaminate"
DECONTAM_STAGES = (STAGE,)
KEPT = "kept"
REMOVED = "removed"
REMOVED_DIR = "removed"
REPORT_FILE = "contamination.json"
INDEX_FILE = "benchmark_index.npz"
# Per-item leak counts written by the pipeline, turned into contamination.json by the driver.
REPORT_PARTS = "_report"
# Example URLs kept per leaked item in the report.
EXAMPLE_URLS = 3
# Columns a pool file must have for decontamination (the rest are carried as they are).
REQUIRED_COLUMNS = ("doc_id", "url", "text")

MATCHED_ITEM_TYPE = pa.struct(
    [
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("windows", pa.int32(), nullable=False),
    ]
)
REMOVED_FIELDS = (
    pa.field("benchmark", pa.string(), nullable=False),
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("matched_span", pa.string(), nullable=False),
    pa.field("match_rule", pa.string(), nullable=False),
    pa.field("matched_items", pa.list_(MATCHED_ITEM_TYPE), nullable=False),
)


@dataclass(frozen=True)
class DecontaminateConfig:
    """Everything that decides what `mathcorpus decontaminate` writes (Beam options excluded)."""

    output: str
    """Output folder (local, gs://, s3://): kept pages, removed/, contamination.json, stats."""
    inputs: tuple[str, ...] = ()
    """Pool-format folders (their `pool-*.parquet`) or Parquet file globs: the pages to check."""
    benchmarks: tuple[str, ...] = ()
    """Benchmark files or folders, `[FORMAT=]PATH` (see pipeline/decontaminate/benchmarks.py)."""
    ngram: int = 10
    """n: a page sharing any n-gram with a benchmark text is removed (10 in the paper)."""
    min_short_grams: int = 3
    """Benchmark texts of min_short_grams to n-1 grams remove pages containing them exactly;
    shorter ones are ignored (3 in the paper)."""
    jsonl_text_fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS
    """Fields read as benchmark texts from files of the generic `jsonl` format."""
    jsonl_id_field: str = DEFAULT_ID_FIELD
    """Item id field of `jsonl` files (the line number where a record lacks it)."""
    num_shards: int = 0
    """Parquet files for the kept pages; 0 lets the runner decide."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if not self.inputs:
            problems.append("inputs: give --input DIR [DIR ...] (pool-format folders)")
        if not self.benchmarks:
            problems.append("benchmarks: give --benchmarks PATH [PATH ...]")
        if not 2 <= self.ngram <= 64:
            problems.append(f"ngram: must be in [2, 64], got {self.ngram}")
        if not 1 <= self.min_short_grams <= self.ngram:
            problems.append(
                f"min_short_grams: must be in [1, ngram={self.ngram}], got {self.min_short_grams}"
            )
        if not self.jsonl_text_fields:
            problems.append("jsonl_text_fields: name at least one field")
        if self.num_shards < 0:
            problems.append(f"num_shards: must be >= 0, got {self.num_shards}")
        out = self.output.rstrip("/")
        if any(i.rstrip("/") == out for i in self.inputs):
            problems.append(f"output: {self.output!r} is also an input; choose another folder")
        raise_if_problems("decontaminate config", problems)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("inputs", "benchmarks", "jsonl_text_fields"):
            data[key] = list(data[key])
        return data

    def output_fingerprint_fields(self, benchmark_digests: dict[str, str]) -> dict[str, Any]:
        """The fields that change the rows written, plus the benchmark files' sha256 (an
        edited benchmark file makes a rerun redo the work)."""
        data = self.to_json()
        for key in ("output", "overwrite"):
            data.pop(key)
        data["benchmark_sha256"] = dict(sorted(benchmark_digests.items()))
        return data


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


def build_pipeline(
    p: beam.Pipeline,
    files: list[str],
    schema: pa.Schema,
    index_path: str,
    config: DecontaminateConfig,
    staging: str,
) -> None:
    index = p | "IndexPath" >> beam.Create([index_path]) | "LoadIndex" >> beam.Map(load_index_file)
    rows = p | "ListFiles" >> beam.Create(files) | "ReadPool" >> beam.io.ReadAllFromParquet()
    out = rows | "Decontaminate" >> Decontaminate(index)
    _ = out[KEPT] | "WriteKept" >> beam.io.WriteToParquet(
        file_path_prefix=FileSystems.join(staging, POOL_FILE_PREFIX),
        schema=schema,
        codec="zstd",
        file_name_suffix=".parquet",
        num_shards=config.num_shards,
    )
    _ = out[REMOVED] | "WriteRemoved" >> beam.io.WriteToParquet(
        file_path_prefix=FileSystems.join(staging, REMOVED_DIR, REMOVED_DIR),
        schema=removed_schema(schema),
        codec="zstd",
        file_name_suffix=".parquet",
    )
    _ = (
        out[REMOVED]
        | "Report" >> ContaminationReport()
        | "WriteReport"
        >> beam.io.WriteToText(
            FileSystems.join(staging, REPORT_PARTS, "leaks"), file_name_suffix=".jsonl"
        )
    )
    _ = out[DEAD_LETTER] | "WriteDeadLetters" >> WriteDeadLetters(staging)


# --- the report -----------------------------------------------------------------------------


def contamination_report(
    lines: Iterable[str], index: BenchmarkIndex, input_pages: int, removed_pages: int
) -> dict[str, Any]:
    """contamination.json: per benchmark, pages removed and every leaked item."""
    per_benchmark: dict[str, dict[str, Any]] = {
        name: {
            "items": index.stats.per_benchmark_items.get(name, 0),
            "pages_removed": 0,
            "items_leaked": 0,
            "leaked_items": [],
        }
        for name in index.benchmarks
    }
    for line in lines:
        record = json.loads(line)
        entry = per_benchmark.setdefault(
            record["benchmark"],
            {"items": 0, "pages_removed": 0, "items_leaked": 0, "leaked_items": []},
        )
        if record["kind"] == "benchmark":
            entry["pages_removed"] = record["pages"]
        else:
            entry["leaked_items"].append(
                {
                    "item_id": record["item_id"],
                    "pages": record["pages"],
                    "max_windows": record["max_windows"],
                    "example_urls": record["example_urls"],
                }
            )
    for entry in per_benchmark.values():
        # Items copied at length first: an item sharing one n-gram with a page (max_windows 1)
        # often shares a phrase with the item that was really copied.
        entry["leaked_items"].sort(key=lambda i: (-i["max_windows"], -i["pages"], i["item_id"]))
        entry["items_leaked"] = len(entry["leaked_items"])
    return {
        "format_version": DECONTAM_FORMAT_VERSION,
        "rule": {
            "ngram": index.n,
            "min_short_grams": index.min_short,
            "normalization_version": index.meta()["normalization_version"],
        },
        "input_pages": input_pages,
        "removed_pages": removed_pages,
        "benchmarks": per_benchmark,
    }


def _read_report_lines(staging: str) -> list[str]:
    lines: list[str] = []
    for path in match_files(FileSystems.join(staging, REPORT_PARTS, "*")):
        with FileSystems.open(path) as fh:
            lines.extend(x for x in fh.read().decode("utf-8").splitlines() if x.strip())
    return lines


# --- driver ---------------------------------------------------------------------------------


def decontaminate_run_output(config: DecontaminateConfig, digests: dict[str, str]) -> RunOutput:
    return RunOutput(
        config.output,
        config.output_fingerprint_fields(digests),
        owned_globs=(
            f"{POOL_FILE_PREFIX}-*.parquet",
            f"{REMOVED_DIR}/*",
            DEAD_LETTER_GLOB,
            REPORT_FILE,
            INDEX_FILE,
        ),
    )


def run_decontaminate(config: DecontaminateConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run the decontamination; returns the stats document (also written as stats.json)."""
    options = PipelineOptions(with_default_runner(beam_args))
    FileSystems.set_options(options)
    specs = resolve_specs(config.benchmarks)
    digests = {s.path: file_sha256(s.path) for s in specs}
    output = decontaminate_run_output(config, digests)
    if output.finished_with_same_config(config.overwrite):
        LOG.info("%s is already finished with this config; nothing to do", config.output)
        return read_json(output.path(STATS_FILE))
    files = resolve_input_files(config.inputs)
    schema = input_schema(files)
    started = time.monotonic()
    index = build_index(specs, config)
    LOG.info("benchmark index: %s", json.dumps(index.meta()["stats"]))
    output.begin()
    index_path = FileSystems.join(output.staging, INDEX_FILE)
    with FileSystems.create(index_path) as fh:
        index.save(fh)
    p = beam.Pipeline(options=options)
    build_pipeline(p, files, schema, index_path, config, output.staging)
    result = p.run()
    result.wait_until_finish()
    counters = counters_from_beam_result(result)
    stats = stats_document(
        counters,
        DECONTAM_STAGES,
        extra={
            "stage": STAGE,
            "format_version": DECONTAM_FORMAT_VERSION,
            "input_files": len(files),
            "input_pages": counters.get(f"{STAGE}.in", 0),
            "kept_pages": counters.get(f"{STAGE}.kept", 0),
            "removed_pages": counters.get(f"{STAGE}.dropped.contaminated", 0),
            "dead_lettered_pages": sum(
                v for k, v in counters.items() if k.startswith(f"{STAGE}.dead_letter.")
            ),
            "benchmarks": {s.name: {"path": s.path, "format": s.format} for s in specs},
            "index": index.meta()["stats"],
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
    report = contamination_report(
        _read_report_lines(output.staging), index, stats["input_pages"], stats["removed_pages"]
    )
    FileSystems.delete([FileSystems.join(output.staging, REPORT_PARTS)])
    write_json_atomic(FileSystems.join(output.staging, REPORT_FILE), report)
    output.commit(config.to_json(), stats)
    return stats


def read_report(output_dir: str) -> dict[str, Any]:
    """contamination.json of a finished output."""
    return read_json(FileSystems.join(output_dir.rstrip("/"), REPORT_FILE))


# --- CLI ------------------------------------------------------------------------------------


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathcorpus decontaminate",
        description="Remove pages containing benchmark text (10-gram rule; short texts exact).",
        epilog="Any other --option is passed to Apache Beam (e.g. --runner, "
        "--direct_running_mode=multi_processing --direct_num_workers=2).",
    )
    parser.add_argument(
        "--input", nargs="+", required=True, metavar="DIR", help="pool-format folder(s)"
    )
    parser.add_argument(
        "--benchmarks",
        nargs="+",
        required=True,
        metavar="PATH",
        help="benchmark files or folders, optionally FORMAT=PATH (formats: gsm8k, "
        "math_hendrycks, cmath, mathqa, aqua_rat, mmlu_stem, jsonl); default: detected",
    )
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--ngram", type=int, default=10, help="n of the n-gram rule (10)")
    parser.add_argument(
        "--min-short-grams",
        type=int,
        default=3,
        help="benchmark texts of this many to n-1 grams are matched exactly (3)",
    )
    parser.add_argument(
        "--jsonl-text-fields",
        nargs="+",
        default=list(DEFAULT_TEXT_FIELDS),
        metavar="FIELD",
        help="text fields of generic jsonl benchmark files (default: %(default)s)",
    )
    parser.add_argument("--jsonl-id-field", default=DEFAULT_ID_FIELD)
    parser.add_argument("--num-shards", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> DecontaminateConfig:
    return DecontaminateConfig(
        output=args.output,
        inputs=tuple(args.input),
        benchmarks=tuple(args.benchmarks),
        ngram=args.ngram,
        min_short_grams=args.min_short_grams,
        jsonl_text_fields=tuple(args.jsonl_text_fields),
        jsonl_id_field=args.jsonl_id_field,
        num_shards=args.num_shards,
        overwrite=args.overwrite,
    )


def format_summary(stats: dict[str, Any], report: dict[str, Any]) -> str:
    lines = [
        f"pages in {stats['input_pages']}, kept {stats['kept_pages']}, "
        f"removed {stats['removed_pages']}, dead-lettered {stats['dead_lettered_pages']}"
    ]
    for name, entry in report["benchmarks"].items():
        if entry["pages_removed"]:
            ids = ", ".join(i["item_id"] for i in entry["leaked_items"][:5])
            more = " ..." if entry["items_leaked"] > 5 else ""
            lines.append(
                f"  {name}: {entry['pages_removed']} page(s), {entry['items_leaked']} of "
                f"{entry['items']} item(s) leaked: {ids}{more}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_arg_parser().parse_known_args(argv)
    try:
        config = config_from_args(args)
        stats = run_decontaminate(config, beam_args)
    except (ConfigError, OutputConflict) as exc:
        print(f"mathcorpus decontaminate: {exc}", file=sys.stderr)
        return 2
    print(format_summary(stats, read_report(config.output)))
    print(f"decontaminated corpus written to {config.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
