"""`mathcorpus decontaminate`: remove every page that contains benchmark text.

    mathcorpus decontaminate --input runs/mined/corpus --benchmarks benchmarks/gsm8k \\
        benchmarks/math_hendrycks agieval/sat-math.jsonl --output runs/decontaminated

The rule (DeepSeekMath section 2.1), the index side input and the outputs (FORMAT.md,
"Decontaminated corpus"): docs/stages/decontaminate.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.core.counters import stats_document
from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DEAD_LETTER_GLOB,
    WriteDeadLetters,
)
from pipeline.core.files import match_files
from pipeline.core.run_output import (
    RunOutput,
    read_json,
    write_json_atomic,
)
from pipeline.core.stage_cli import stage_main, stage_parser
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.decontaminate.benchmarks import (
    resolve_specs,
)
from pipeline.decontaminate.config import (
    DECONTAM_FORMAT_VERSION,
    DECONTAM_STAGES,
    INDEX_FILE,
    KEPT,
    REMOVED,
    REMOVED_DIR,
    REPORT_FILE,
    REPORT_PARTS,
    STAGE,
    DecontaminateConfig,
)
from pipeline.decontaminate.ngram_index import BenchmarkIndex
from pipeline.decontaminate.transforms import (
    ContaminationReport,
    Decontaminate,
    build_index,
    file_sha256,
    input_schema,
    load_index_file,
    removed_schema,
    resolve_input_files,
)
from pipeline.pool.schema import POOL_FILE_PREFIX

LOG = logging.getLogger("mathcorpus.decontaminate")


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
            FileSystems.join(staging, REPORT_PARTS, "leaks"),
            file_name_suffix=".jsonl",
            # No empty file when nothing leaked: Beam's S3 upload of an empty object fails.
            skip_if_empty=True,
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
    """The report parts' lines; the part files are deleted once read (there are none when
    nothing leaked)."""
    lines: list[str] = []
    parts = match_files(FileSystems.join(staging, REPORT_PARTS, "*"))
    for path in parts:
        with FileSystems.open(path) as fh:
            lines.extend(x for x in fh.read().decode("utf-8").splitlines() if x.strip())
    if parts:
        FileSystems.delete(parts)
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
    options = pipeline_options(beam_args)
    specs = resolve_specs(config.benchmarks)
    digests = {s.path: file_sha256(s.path) for s in specs}
    output = decontaminate_run_output(config, digests)
    finished = output.finished_stats(config.overwrite)
    if finished is not None:
        return finished
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
    counters = run_and_count(p)
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
    write_json_atomic(FileSystems.join(output.staging, REPORT_FILE), report)
    output.commit(config.to_json(), stats)
    return stats


def read_report(output_dir: str) -> dict[str, Any]:
    """contamination.json of a finished output."""
    return read_json(FileSystems.join(output_dir.rstrip("/"), REPORT_FILE))


# --- CLI ------------------------------------------------------------------------------------


def build_arg_parser() -> argparse.ArgumentParser:
    return stage_parser(
        "mathcorpus decontaminate",
        DecontaminateConfig,
        "Remove pages containing benchmark text (10-gram rule; short texts exact).",
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


def summary(config: DecontaminateConfig, stats: dict[str, Any]) -> str:
    return (
        f"{format_summary(stats, read_report(config.output))}\n"
        f"decontaminated corpus written to {config.output}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main(
        "mathcorpus decontaminate",
        build_arg_parser(),
        DecontaminateConfig,
        run_decontaminate,
        summary,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
