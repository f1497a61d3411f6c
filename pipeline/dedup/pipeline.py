"""`mathcorpus dedup`: exact + MinHash near-deduplication of a pool folder.

    mathcorpus dedup --input runs/batch2/pool [--against runs/batch1/pool_dedup] \\
        --output runs/batch2/pool_dedup

The pool runs the same transform after extraction; this command is for pools from elsewhere,
other settings and incremental batches (docs/stages/dedup.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import ConfigError
from pipeline.core.counters import stats_document
from pipeline.core.files import match_files
from pipeline.core.run_output import RunOutput
from pipeline.core.stage_cli import format_funnel, stage_main, stage_parser
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.outputs import (
    DEDUP_OWNED_GLOBS,
    finish_report,
    prior_index_problems,
    write_report_parts,
)
from pipeline.dedup.transforms import (
    DEDUP_STAGES,
    PARTS,
    decide_and_write,
    prior_index_pattern,
    remove_staged_parts,
    split_shuffle_counters,
    stage_pool_files,
)
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_FORMAT_VERSION

LOG = logging.getLogger("mathcorpus.dedup")


def dedup_run_output(config: DedupConfig) -> RunOutput:
    return RunOutput(config.output, config.output_fingerprint_fields(), DEDUP_OWNED_GLOBS)


def run_dedup(config: DedupConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run `mathcorpus dedup`; returns the stats document (also written as stats.json)."""
    options = pipeline_options(beam_args)
    output = dedup_run_output(config)
    finished = output.finished_stats(config.overwrite)
    if finished is not None:
        return finished
    pool_pattern = FileSystems.join(config.input, f"{POOL_FILE_PREFIX}-*.parquet")
    problems: list[str] = []
    if not match_files(pool_pattern):
        problems.append(f"--input {config.input}: no {POOL_FILE_PREFIX}-*.parquet files there")
    for prior_dir in config.against:
        problems.extend(prior_index_problems(prior_dir, config.options))
    if problems:
        raise ConfigError("dedup inputs", problems)
    prior_patterns = [prior_index_pattern(d) for d in config.against]
    files = match_files(pool_pattern)
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    prior = None
    if prior_patterns:
        prior = [
            p | f"ReadPriorIndex{i}" >> beam.io.ReadFromParquet(pattern)
            for i, pattern in enumerate(prior_patterns)
        ] | "FlattenPriorIndex" >> beam.Flatten()
    stages = dedup_stages(config)
    staged = stage_pool_files(p, files, output.staging, config.options)
    result = decide_and_write(
        staged["keys"],
        staged[PARTS],
        output.staging,
        len(files),
        stages,
        config.options,
        url_dedup=False,
        prior=prior,
    )
    write_report_parts(result, output.staging)
    counters, shuffle = split_shuffle_counters(run_and_count(p), f"{stages[0]}.in")
    remove_staged_parts(output.staging)
    last = stages[-1]
    stats = stats_document(
        counters,
        stages,
        extra={
            "stage": "dedup",
            "format_version": POOL_FORMAT_VERSION,
            "input_files": len(files),
            "pages_written": counters.get(f"{last}.kept", 0),
            "elapsed_s": round(time.monotonic() - started, 3),
            "shuffle_bytes_per_page": shuffle,
        },
    )
    finish_report(output.staging, config.options, stats)
    output.commit(config.to_json(), stats)
    return stats


def dedup_stages(config: DedupConfig) -> tuple[str, ...]:
    """The stages `mathcorpus dedup` counts, in order."""
    o = config.options
    wanted = {"prior_urls": bool(config.against), "exact_dedup": o.exact, "near_dedup": o.near}
    return tuple(s for s in DEDUP_STAGES if wanted[s])


def build_arg_parser() -> argparse.ArgumentParser:
    return stage_parser(
        "mathcorpus dedup", DedupConfig, "Exact and MinHash LSH near-deduplication of a pool."
    )


def summary(config: DedupConfig, stats: dict[str, Any]) -> str:
    return (
        f"{format_funnel(stats)}\n"
        f"deduplicated pool written to {config.output} ({stats['pages_written']} pages)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("mathcorpus dedup", build_arg_parser(), DedupConfig, run_dedup, summary, argv)


if __name__ == "__main__":
    sys.exit(main())
