"""`mathcorpus dedup`: exact + MinHash near-deduplication of a pool folder.

Local run (FnApiRunner is the default runner):

    mathcorpus dedup --input runs/demo/pool --output runs/demo/pool_dedup

Incremental: deduplicate a new batch against pools deduplicated before (their band_index/ is
read; they are not recomputed or rewritten):

    mathcorpus dedup --input runs/batch2/pool --against runs/batch1/pool_dedup \\
        --output runs/batch2/pool_dedup

On Dataflow (any Beam option after the app's own):

    mathcorpus dedup --input gs://bucket/pool --output gs://bucket/pool_dedup \\
        --runner=DataflowRunner --project=P --region=R --temp_location=gs://bucket/tmp

The pool pipeline runs the same transform after extraction (on by default), so a pool written
by `mathcorpus pool` is already deduplicated; this command is for pools from elsewhere, other
settings, and incremental batches.
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
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.core.config_errors import ConfigError
from pipeline.core.counters import counters_from_beam_result, stats_document
from pipeline.core.files import match_files
from pipeline.core.run_output import STATS_FILE, OutputConflict, RunOutput, read_json
from pipeline.core.stage_cli import format_funnel, with_default_runner
from pipeline.dedup.config import (
    DedupConfig,
    add_dedup_arguments,
    dedup_options_from_args,
)
from pipeline.dedup.outputs import (
    DEDUP_OWNED_GLOBS,
    finish_report,
    prior_index_problems,
    write_dedup_outputs,
)
from pipeline.dedup.transforms import DEDUP_STAGES, Deduplicate, prior_index_pattern
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_FORMAT_VERSION

LOG = logging.getLogger("mathcorpus.dedup")


def dedup_run_output(config: DedupConfig) -> RunOutput:
    return RunOutput(config.output, config.output_fingerprint_fields(), DEDUP_OWNED_GLOBS)


def run_dedup(config: DedupConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run `mathcorpus dedup`; returns the stats document (also written as stats.json)."""
    options = PipelineOptions(with_default_runner(beam_args))
    FileSystems.set_options(options)
    output = dedup_run_output(config)
    if output.finished_with_same_config(config.overwrite):
        LOG.info("%s is already finished with this config; nothing to do", config.output)
        return read_json(output.path(STATS_FILE))
    pool_pattern = FileSystems.join(config.input, f"{POOL_FILE_PREFIX}-*.parquet")
    problems: list[str] = []
    if not match_files(pool_pattern):
        problems.append(f"--input {config.input}: no {POOL_FILE_PREFIX}-*.parquet files there")
    for prior_dir in config.against:
        problems.extend(prior_index_problems(prior_dir, config.options))
    if problems:
        raise ConfigError("dedup inputs", problems)
    prior_patterns = [prior_index_pattern(d) for d in config.against]
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    rows = p | "ReadPool" >> beam.io.ReadFromParquet(pool_pattern)
    prior = None
    if prior_patterns:
        prior = [
            p | f"ReadPriorIndex{i}" >> beam.io.ReadFromParquet(pattern)
            for i, pattern in enumerate(prior_patterns)
        ] | "FlattenPriorIndex" >> beam.Flatten()
    result = rows | "Deduplicate" >> Deduplicate(config.options, prior)
    write_dedup_outputs(result, output.staging, config.options, config.num_shards)
    run = p.run()
    run.wait_until_finish()
    counters = counters_from_beam_result(run)
    stages = DEDUP_STAGES if config.against else DEDUP_STAGES[1:]
    if not config.options.near:
        stages = tuple(s for s in stages if s != "near_dedup")
    if not config.options.exact:
        stages = tuple(s for s in stages if s != "exact_dedup")
    last = stages[-1]
    stats = stats_document(
        counters,
        stages,
        extra={
            "stage": "dedup",
            "format_version": POOL_FORMAT_VERSION,
            "pages_written": counters.get(f"{last}.kept", 0),
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
    finish_report(output.staging, config.options, stats)
    output.commit(config.to_json(), stats)
    return stats


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathcorpus dedup",
        description="Exact and MinHash LSH near-deduplication of a pool folder. "
        "Unknown options are passed to Beam (e.g. --runner, --direct_num_workers).",
    )
    parser.add_argument("--input", required=True, metavar="DIR", help="pool folder to read")
    parser.add_argument("--output", required=True, metavar="DIR", help="pool folder to write")
    parser.add_argument(
        "--against",
        nargs="+",
        default=[],
        metavar="DIR",
        help="incremental: deduplicated pool folders (with band_index/) to compare against",
    )
    parser.add_argument("--num-shards", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    add_dedup_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> DedupConfig:
    return DedupConfig(
        input=args.input,
        output=args.output,
        against=tuple(args.against),
        options=dedup_options_from_args(args),
        num_shards=args.num_shards,
        overwrite=args.overwrite,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_arg_parser().parse_known_args(argv)
    try:
        config = config_from_args(args)
        stats = run_dedup(config, beam_args)
    except (ConfigError, OutputConflict) as exc:
        print(f"mathcorpus dedup: {exc}", file=sys.stderr)
        return 2
    print(format_funnel(stats))
    print(f"deduplicated pool written to {config.output} ({stats['pages_written']} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
