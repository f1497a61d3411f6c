"""What every stage's driver shares around its Beam pipeline: options, running, counting."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.core.counters import StageCounter, counters_from_beam_result


def with_default_runner(beam_args: Sequence[str]) -> list[str]:
    """Beam args with `--runner=FnApiRunner` added when none is given (plain DirectRunner would
    first try to download Prism, which these machines cannot reach)."""
    args = list(beam_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args.append("--runner=FnApiRunner")
    return args


# Imported by every worker at start-up on any runner (pipeline/core/s3_empty_files.py: empty
# files on s3://); Dataflow finds it by itself, Flink and Spark workers need the option.
S3_EMPTY_FILES_PLUGIN = "pipeline.core.s3_empty_files"


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """The run's Beam options. The driver lists inputs and commits outputs itself, so its file
    systems get the same options (credentials, endpoints) as the workers."""
    args = with_default_runner(beam_args)
    if f"--beam_plugins={S3_EMPTY_FILES_PLUGIN}" not in args:
        args.append(f"--beam_plugins={S3_EMPTY_FILES_PLUGIN}")
    options = PipelineOptions(args)
    FileSystems.set_options(options)
    return options


def run_and_count(pipeline: beam.Pipeline) -> dict[str, int]:
    """Run the pipeline to the end; the stage counters it reported."""
    result = pipeline.run()
    result.wait_until_finish()
    return counters_from_beam_result(result)


class CountPassThrough(beam.DoFn):
    """Counts a stage that is switched off (every record kept), so the funnel stays complete."""

    def __init__(self, stage: str) -> None:
        self._stage = stage

    def setup(self) -> None:
        self._counts = StageCounter(self._stage)

    def process(self, element: Any) -> Iterator[Any]:
        self._counts.entered()
        self._counts.kept()
        yield element
