"""`mathcorpus pool`: Common Crawl WARC files -> a URL-deduplicated, math-preserving text pool.

Local (in-process runner):

    mathcorpus pool --input 'crawl/*.warc.gz' --output runs/pool

Local, two worker processes:

    mathcorpus pool --input 'crawl/*.warc.gz' --output runs/pool \
        --direct_running_mode=multi_processing --direct_num_workers=2

A Common Crawl listing, fetched over HTTPS (retries, resume, cached per file):

    mathcorpus pool --paths-listing warc.paths.gz --max-files 10 --output runs/pool

Dataflow (see deploy/):

    mathcorpus pool --input 'gs://bucket/crawl/*.warc.gz' --output gs://bucket/pool \
        --runner=DataflowRunner --project=PROJECT --region=REGION \
        --temp_location=gs://bucket/tmp --requirements_file=deploy/dataflow/requirements.txt

Everything after the app options is passed to Beam as PipelineOptions; with no --runner the
in-process FnApiRunner is used (plain DirectRunner would try to download Prism).
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
from pipeline.core.dead_letters import DEAD_LETTER, DEAD_LETTER_GLOB, WriteDeadLetters
from pipeline.core.files import match_files
from pipeline.core.run_output import OutputConflict, RunOutput
from pipeline.core.stage_cli import format_funnel, with_default_runner
from pipeline.dedup.config import add_dedup_arguments, dedup_options_from_args
from pipeline.dedup.outputs import DEDUP_OWNED_GLOBS, finish_report, write_dedup_outputs
from pipeline.dedup.transforms import DEDUP_STAGES, Deduplicate
from pipeline.pool.config import COMMON_CRAWL_BASE_URL, DEFAULT_MAX_RECORD_BYTES, PoolConfig
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_FORMAT_VERSION, POOL_SCHEMA
from pipeline.pool.transforms import POOL_STAGES, BuildPool

LOG = logging.getLogger("mathcorpus.pool")


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathcorpus pool",
        description="WARC files -> URL-deduplicated, math-preserving text pool (Parquet).",
        epilog="Any other --option is passed to Apache Beam (e.g. --runner, "
        "--direct_running_mode=multi_processing --direct_num_workers=2).",
    )
    parser.add_argument(
        "--input",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="WARC/ARC files or globs (local, gs://, s3://)",
    )
    parser.add_argument(
        "--paths-listing", metavar="FILE", help="Common Crawl warc.paths.gz listing (path or URL)"
    )
    parser.add_argument(
        "--base-url",
        default=COMMON_CRAWL_BASE_URL,
        help="prefix for the listing's relative paths (default: %(default)s)",
    )
    parser.add_argument("--max-files", type=int, help="use only the first N input files")
    parser.add_argument(
        "--fetch-cache", help="folder for fetched WARC files (default: OUTPUT/_fetch_cache)"
    )
    parser.add_argument("--fetch-attempts", type=int, default=6)
    parser.add_argument(
        "--fetch-timeout",
        type=float,
        default=60.0,
        dest="fetch_timeout_s",
        help="seconds without progress before an HTTP attempt is abandoned",
    )
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES)
    parser.add_argument(
        "--extractor", default="resiliparse", choices=["resiliparse", "trafilatura"]
    )
    parser.add_argument("--min-text-chars", type=int, default=100)
    parser.add_argument(
        "--languages",
        nargs="*",
        default=[],
        metavar="CODE",
        help="keep only these languages (e.g. en zh); default: keep all",
    )
    parser.add_argument("--min-language-score", type=float, default=0.0)
    parser.add_argument("--no-url-dedup", action="store_true")
    parser.add_argument("--num-shards", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    add_dedup_arguments(parser, in_pool=True)
    return parser


def config_from_args(args: argparse.Namespace) -> PoolConfig:
    return PoolConfig(
        output=args.output,
        inputs=tuple(args.input),
        paths_listing=args.paths_listing,
        base_url=args.base_url,
        max_files=args.max_files,
        fetch_cache=args.fetch_cache,
        fetch_attempts=args.fetch_attempts,
        fetch_timeout_s=args.fetch_timeout_s,
        max_record_bytes=args.max_record_bytes,
        extractor=args.extractor,
        min_text_chars=args.min_text_chars,
        languages=tuple(args.languages),
        min_language_score=args.min_language_score,
        url_dedup=not args.no_url_dedup,
        dedup=not args.no_dedup,
        dedup_options=dedup_options_from_args(args),
        num_shards=args.num_shards,
        overwrite=args.overwrite,
    )


def resolve_input_files(config: PoolConfig) -> list[str]:
    """Expand globs (any Beam file system) and the listing into a sorted list of file specs."""
    files: list[str] = []
    unmatched: list[str] = []
    for pattern in config.inputs:
        matched = match_files(pattern)
        if not matched:
            unmatched.append(pattern)
        files.extend(matched)
    if unmatched:
        raise ConfigError("pool inputs", [f"--input {p!r} matches no file" for p in unmatched])
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
    options = PipelineOptions(with_default_runner(beam_args))
    # The driver lists inputs and commits outputs itself: give its file systems the same
    # options (credentials, endpoints) the workers get.
    FileSystems.set_options(options)
    output = pool_run_output(config)
    if output.finished_with_same_config(config.overwrite):
        LOG.info("%s is already finished with this config; nothing to do", config.output)
        return output_stats(output)
    files = resolve_input_files(config)
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, files, config, output.staging)
    result = p.run()
    result.wait_until_finish()
    elapsed = time.monotonic() - started
    counters = counters_from_beam_result(result)
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


def output_stats(output: RunOutput) -> dict[str, Any]:
    from pipeline.core.run_output import STATS_FILE, read_json

    return read_json(output.path(STATS_FILE))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_arg_parser().parse_known_args(argv)
    try:
        config = config_from_args(args)
        stats = run_pool(config, beam_args)
    except (ConfigError, OutputConflict) as exc:
        print(f"mathcorpus pool: {exc}", file=sys.stderr)
        return 2
    print(format_funnel(stats))
    print(f"pool written to {config.output} ({stats.get('pages_written', 0)} pages)")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Beam-example style entry point."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
