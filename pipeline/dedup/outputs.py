"""Writing a Deduplicate result and its report; checking prior band indexes (incremental).

Shared by `mathcorpus dedup` (pipeline/dedup/pipeline.py) and `mathcorpus pool`, which runs the
same transform after extraction.
"""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.core.files import delete_tree, match_files
from pipeline.dedup.config import DedupOptions
from pipeline.dedup.report import build_report
from pipeline.dedup.schema import (
    BAND_INDEX_DIR,
    BAND_INDEX_PREFIX,
    DUPLICATES_DIR,
    MINHASH_METADATA_KEY,
    REPORT_FILE,
    minhash_json,
)
from pipeline.dedup.transforms import prior_index_pattern
from pipeline.pool.schema import POOL_FILE_PREFIX

REPORT_PARTS_DIR = "_report_parts"
DEDUP_OWNED_GLOBS = (
    f"{POOL_FILE_PREFIX}-*.parquet",
    f"{DUPLICATES_DIR}/*",
    f"{BAND_INDEX_DIR}/*",
    REPORT_FILE,
)


def prior_index_problems(pool_dir: str, options: DedupOptions) -> list[str]:
    """What is wrong with a prior pool for incremental dedup ([] when its band index exists and
    was made with the same MinHash settings)."""
    files = match_files(prior_index_pattern(pool_dir))
    if not files:
        return [
            f"--against {pool_dir}: no {BAND_INDEX_DIR}/{BAND_INDEX_PREFIX}-*.parquet there; "
            "give a pool folder written by `mathcorpus pool` or `mathcorpus dedup`"
        ]
    with FileSystems.open(files[0]) as fh:
        metadata = pq.read_schema(fh).metadata or {}
    made_with = metadata.get(MINHASH_METADATA_KEY, b"").decode()
    wanted = minhash_json(options.minhash)
    if made_with != wanted:
        return [
            f"--against {pool_dir}: its band index was made with MinHash settings {made_with} "
            f"but this run uses {wanted}; use the same --bands/--rows/--shingle/--shingle-size/"
            "--minhash-seed/--minhash-hash"
        ]
    return []


# The report's small inputs, written as one file set of ["name", record] JSON lines: one write
# transform for the three (each WriteToText is a dozen transforms and several stages, a fixed
# cost on the local runner).
REPORT_PART_NAMES: tuple[str, ...] = ("pairs", "cluster_sizes", "rounds")


def _report_line(name: str, record: Any) -> str:
    return json.dumps([name, record], sort_keys=True, default=str)


def write_report_parts(result: dict[str, beam.PCollection], staging: str) -> None:
    """Write the report's small inputs (pairs, cluster sizes, rounds) as JSON lines into the
    staging folder; `finish_report` turns them into dedup_report.json."""
    lines = [
        result[name] | f"{name}Json" >> beam.Map(lambda x, name=name: _report_line(name, x))
        for name in REPORT_PART_NAMES
    ]
    _ = (
        lines
        | "FlattenReportParts" >> beam.Flatten()
        | "WriteReportParts"
        >> beam.io.WriteToText(
            FileSystems.join(staging, REPORT_PARTS_DIR, "report"), file_name_suffix=".jsonl"
        )
    )


def _read_parts(staging: str) -> dict[str, list[Any]]:
    records: dict[str, list[Any]] = {name: [] for name in REPORT_PART_NAMES}
    for path in match_files(FileSystems.join(staging, REPORT_PARTS_DIR, "report*.jsonl")):
        with FileSystems.open(path) as fh:
            for line in fh.read().decode().splitlines():
                if line:
                    name, record = json.loads(line)
                    records[name].append(record)
    return records


def finish_report(staging: str, options: DedupOptions, stats: dict[str, Any]) -> dict[str, Any]:
    """Build dedup_report.json in the staging folder from the report parts; remove the parts."""
    parts = _read_parts(staging)
    report = build_report(
        size_counts=[tuple(r) for r in parts["cluster_sizes"]],
        pairs=parts["pairs"],
        rounds=[tuple(r) for r in parts["rounds"]],
        config=options.minhash,
        sample_rate=options.report_sample_rate,
        stage_stats=stats["stages"],
    )
    delete_tree(FileSystems.join(staging, REPORT_PARTS_DIR))
    with FileSystems.create(FileSystems.join(staging, REPORT_FILE)) as fh:
        fh.write(json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8"))
    return report
