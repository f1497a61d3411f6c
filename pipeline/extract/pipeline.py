"""`mathcorpus extract`: HTML files -> pool rows (text with math as LaTeX, language), no WARC.

For looking at what extraction keeps on pages of one's own, and for building a pool from a
folder of saved pages: the output is a pool folder (same schema as `mathcorpus pool`, not
deduplicated), which `mathcorpus dedup`, `mine` and `shards` read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.core.counters import StageCounter, stats_document
from pipeline.core.dead_letters import DEAD_LETTER, DEAD_LETTER_GLOB, DeadLetter, WriteDeadLetters
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.core.files import match_inputs
from pipeline.core.run_output import RunOutput
from pipeline.core.stage_cli import format_funnel, stage_main, stage_parser
from pipeline.core.stage_run import pipeline_options, run_and_count
from pipeline.extract.config import ExtractConfig
from pipeline.extract.transforms import EXTRACT_STAGES, ExtractPages
from pipeline.pool.records import HtmlResponse, NormalizedResponse
from pipeline.pool.schema import POOL_FILE_PREFIX, POOL_FORMAT_VERSION, POOL_SCHEMA

# Stages of `mathcorpus extract`, in order (the last one's `kept` is the pages written).
STAGES = ("files", *EXTRACT_STAGES)
# Pages of HTML files have no URL of their own: each gets one on this host, from its path.
FILE_URL_BASE = "https://local.invalid/"
# Larger files are dead-lettered (bytes): a saved page is rarely over 5 MiB, as in the pool.
MAX_FILE_BYTES = 5 * 1024 * 1024


def file_url(path: str) -> str:
    """The URL a page read from `path` is recorded under (stable for the same file)."""
    if "://" not in path:
        path = os.path.abspath(path)
    return FILE_URL_BASE + quote(path.replace("://", "/").lstrip("/"))


class ReadHtmlFiles(beam.DoFn):
    """File path -> NormalizedResponse (one page per file; .gz files are unpacked)."""

    def setup(self) -> None:
        self._counts = StageCounter("files")

    def process(self, path: str) -> Iterator[Any]:
        from pipeline.pool.url_normalize import doc_id, normalize_url, url_domain

        self._counts.entered()
        try:
            with FileSystems.open(path) as fh:
                payload = fh.read(MAX_FILE_BYTES + 1)
            modified = FileSystems.match([path])[0].metadata_list[0].last_updated_in_seconds
        except Exception as exc:  # a file error dead-letters the file, never the run
            self._counts.dead_lettered("open_failed")
            yield _dead(DeadLetter("files", "open_failed", repr(exc), source=path))
            return
        if len(payload) > MAX_FILE_BYTES:
            self._counts.dropped("too_large")
            return
        url = normalize_url(file_url(path))
        response = HtmlResponse(
            url=url,
            fetch_time=datetime.fromtimestamp(modified or 0, UTC),
            warc_file=path,
            warc_offset=0,
            content_type=None,
            payload=payload,
        )
        self._counts.kept()
        yield NormalizedResponse(response, url, doc_id(url), url_domain(url))


def build_pipeline(p: beam.Pipeline, files: list[str], config: ExtractConfig, staging: str) -> None:
    read = (
        p
        | "ListFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadHtmlFiles" >> beam.ParDo(ReadHtmlFiles()).with_outputs(DEAD_LETTER, main="ok")
    )
    extracted = read.ok | "ExtractPages" >> ExtractPages(config.settings)
    _ = extracted["pages"] | "WritePool" >> beam.io.WriteToParquet(
        file_path_prefix=FileSystems.join(staging, POOL_FILE_PREFIX),
        schema=POOL_SCHEMA,
        codec="zstd",
        file_name_suffix=".parquet",
    )
    dead = (read[DEAD_LETTER], extracted[DEAD_LETTER]) | "MergeDeadLetters" >> beam.Flatten()
    _ = dead | "WriteDeadLetters" >> WriteDeadLetters(staging)


def run_extract(config: ExtractConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run the extraction; returns the stats document (also written as stats.json)."""
    options = pipeline_options(beam_args)
    output = RunOutput(
        config.output,
        config.output_fingerprint_fields(),
        owned_globs=(f"{POOL_FILE_PREFIX}*", DEAD_LETTER_GLOB),
    )
    finished = output.finished_stats(config.overwrite)
    if finished is not None:
        return finished
    files = match_inputs(config.inputs, "extract inputs")
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, files, config, output.staging)
    counters = run_and_count(p)
    stats = stats_document(
        counters,
        STAGES,
        extra={
            "stage": "extract",
            "format_version": POOL_FORMAT_VERSION,
            "input_files": len(files),
            "pages_written": counters.get(f"{STAGES[-1]}.kept", 0),
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
    output.commit(config.to_json(), stats)
    return stats


def build_arg_parser() -> argparse.ArgumentParser:
    return stage_parser(
        "mathcorpus extract",
        ExtractConfig,
        "HTML files -> text with math as LaTeX, one pool row per file (Parquet, not deduplicated).",
    )


def summary(config: ExtractConfig, stats: dict[str, Any]) -> str:
    return (
        f"{format_funnel(stats)}\n"
        f"pages written to {config.output} ({stats.get('pages_written', 0)} pages)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main(
        "mathcorpus extract", build_arg_parser(), ExtractConfig, run_extract, summary, argv
    )


if __name__ == "__main__":
    sys.exit(main())
