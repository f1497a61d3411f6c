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
from apache_beam.io.filesystems import FileSystems

from pipeline.core.counters import stats_document
from pipeline.core.dead_letters import DEAD_LETTER, DEAD_LETTER_GLOB, WriteDeadLetters
from pipeline.core.files import match_inputs
from pipeline.core.run_output import RunOutput
from pipeline.core.stage_cli import format_funnel, stage_main, stage_parser
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.dedup.outputs import DEDUP_OWNED_GLOBS, finish_report, write_dedup_outputs
from pipeline.dedup.transforms import DEDUP_STAGES, Deduplicate
from pipeline.pool.config import PoolConfig
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_FORMAT_VERSION, POOL_SCHEMA
from pipeline.pool.transforms import POOL_STAGES, BuildPool

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
    built = p | "ListFiles" >> beam.Create(files) | "BuildPool" >> BuildPool(config)
    if config.dedup:
        deduplicated = built["pages"] | "Deduplicate" >> Deduplicate(config.dedup_options)
        write_dedup_outputs(deduplicated, staging, config.dedup_options, config.num_shards)
    else:
        _ = built["pages"] | "WritePool" >> beam.io.WriteToParquet(
            file_path_prefix=FileSystems.join(staging, POOL_FILE_PREFIX),
            schema=POOL_SCHEMA,
            codec="zstd",
            file_name_suffix=".parquet",
            num_shards=config.num_shards,
        )
    _ = built[DEAD_LETTER] | "WriteDeadLetters" >> WriteDeadLetters(staging)


def pool_stages(config: PoolConfig) -> tuple[str, ...]:
    """The stages a pool run counts, in order (the last one's `kept` is the pages written)."""
    if not config.dedup:
        return POOL_STAGES
    o = config.dedup_options
    dedup = [
        s
        for s in DEDUP_STAGES[1:]
        if (s == "exact_dedup" and o.exact) or (s == "near_dedup" and o.near)
    ]
    return (*POOL_STAGES, *dedup)


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
    counters = run_and_count(p)
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
