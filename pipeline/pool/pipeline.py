"""`mathcorpus pool`: Common Crawl WARC files -> a URL-deduplicated, math-preserving text pool.

    mathcorpus pool --input 'crawl/*.warc.gz' --output runs/pool [--runner=DataflowRunner ...]

More examples (HTTPS listings, worker processes, Dataflow): docs/stages/pool.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from pipeline.core.counters import stats_document
from pipeline.core.dead_letters import DEAD_LETTER, DEAD_LETTER_GLOB, WriteDeadLetters
from pipeline.core.files import match_inputs
from pipeline.core.run_output import RunOutput
from pipeline.core.stage_cli import format_funnel, stage_main, stage_parser
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.dedup.outputs import DEDUP_OWNED_GLOBS, finish_report, write_report_parts
from pipeline.dedup.transforms import (
    URL_STAGE,
    decide_and_write,
    remove_staged_parts,
    split_shuffle_counters,
)
from pipeline.pool.config import PoolConfig
from pipeline.pool.schema import POOL_FORMAT_VERSION
from pipeline.pool.transforms import PARTS, POOL_STAGES, BuildPool

LOG = logging.getLogger("mathcorpus.pool")


def build_arg_parser() -> argparse.ArgumentParser:
    return stage_parser(
        "mathcorpus pool",
        PoolConfig,
        "WARC files -> URL-deduplicated, math-preserving text pool (Parquet).",
    )


def resolve_input_files(config: PoolConfig) -> list[str]:
    """Expand globs (any Beam file system) and the listing into a sorted list of file specs."""
    files = match_inputs(config.inputs, "pool inputs")
    if config.paths_listing:
        from pipeline.pool.remote_fetch import read_paths_listing, resolve_listing

        files.extend(resolve_listing(read_paths_listing(config.paths_listing), config.base_url))
    files = sorted(dict.fromkeys(files))
    if config.max_files is not None:
        files = files[: config.max_files]
    return files


def pool_run_output(config: PoolConfig) -> RunOutput:
    return RunOutput(
        config.output,
        config.output_fingerprint_fields(),
        owned_globs=(*DEDUP_OWNED_GLOBS, DEAD_LETTER_GLOB),
    )


def build_pipeline(p: beam.Pipeline, files: list[str], config: PoolConfig, staging: str) -> None:
    """Per file, map only: stage its pages; decide on key records; split each staged part."""
    built = (
        p
        | "ListFiles" >> beam.Create(list(enumerate(files)))
        | "BuildPool" >> BuildPool(config, staging)
    )
    options = config.dedup_options if config.dedup else None
    result = decide_and_write(
        built["keys"],
        built[PARTS],
        staging,
        len(files),
        dedup_stages(config),
        options,
        config.url_dedup,
    )
    if config.dedup:
        write_report_parts(result, staging)
    _ = built[DEAD_LETTER] | "WriteDeadLetters" >> WriteDeadLetters(staging)


def dedup_stages(config: PoolConfig) -> tuple[str, ...]:
    """The dedup stages a pool run counts after extraction, in order."""
    stages = [URL_STAGE]
    if config.dedup:
        o = config.dedup_options
        stages += [s for s in ("exact_dedup", "near_dedup") if (o.exact, o.near)[s == "near_dedup"]]
    return tuple(stages)


def pool_stages(config: PoolConfig) -> tuple[str, ...]:
    """The stages a pool run counts, in order (the last one's `kept` is the pages written)."""
    return (*POOL_STAGES, *dedup_stages(config))


def run_pool(config: PoolConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run the pool pipeline; returns the stats document (also written as stats.json)."""
    options = pipeline_options(beam_args)
    output = pool_run_output(config)
    finished = output.finished_stats(config.overwrite)
    if finished is not None:
        return finished
    files = resolve_input_files(config)
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, files, config, output.staging)
    counters, shuffle = split_shuffle_counters(run_and_count(p), "language.kept")
    remove_staged_parts(output.staging)
    elapsed = time.monotonic() - started
    stages = pool_stages(config)
    stats = stats_document(
        counters,
        stages,
        extra={
            "stage": "pool",
            "format_version": POOL_FORMAT_VERSION,
            "input_files": len(files),
            "pages_written": counters.get(f"{stages[-1]}.kept", 0),
            "elapsed_s": round(elapsed, 3),
            "shuffle_bytes_per_page": shuffle,
        },
    )
    if config.dedup:
        finish_report(output.staging, config.dedup_options, stats)
    output.commit(config.to_json(), stats)
    return stats


def summary(config: PoolConfig, stats: dict[str, Any]) -> str:
    return (
        f"{format_funnel(stats)}\n"
        f"pool written to {config.output} ({stats.get('pages_written', 0)} pages)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("mathcorpus pool", build_arg_parser(), PoolConfig, run_pool, summary, argv)


def run(argv: Sequence[str] | None = None) -> int:
    """Beam-example style entry point."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
