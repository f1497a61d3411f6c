"""WriteDeadLetters (pipeline/core/dead_letters.py): DeadLetter records -> JSON lines on disk."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DEAD_LETTER_DIR,
    DeadLetter,
    WriteDeadLetters,
    dead_letter_json,
    dead_letter_output,
)
from tests.helpers import BEAM_TEST_ARGS

RECORDS = [
    DeadLetter(
        "read",
        "truncated_gzip",
        "the file ends inside the record's gzip member",
        source="crawl/sample-00004.warc.gz",
        offset=18_211,
        extra={"scope": "file"},
    ),
    DeadLetter(
        "url",
        "invalid_url",
        "scheme 'ftp' is not http or https: 'ftp://x.example/'",
        source="crawl/sample-00001.warc.gz",
        offset=0,
        url="ftp://x.example/",
    ),
    # Non-ASCII text is written as it is (ensure_ascii=False), not as \\u escapes.
    DeadLetter(
        "decontaminate",
        "no_text",
        "text is NoneType, not a string",
        source="pool-00000.parquet",
        offset=7,
        url="https://数学.example/页",
        doc_id="00ff00ff00ff00ff",
    ),
]


def read_lines(folder: Path) -> tuple[list[Path], list[str]]:
    files = sorted((folder / DEAD_LETTER_DIR).glob(f"{DEAD_LETTER}*.jsonl"))
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    return files, lines


def test_records_are_written_as_sorted_key_json_lines(tmp_path: Path) -> None:
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        _ = p | beam.Create(RECORDS) | WriteDeadLetters(str(tmp_path))

    files, lines = read_lines(tmp_path)
    assert files, "no dead_letter/dead_letter-*.jsonl written"
    assert all(f.name.startswith("dead_letter-") for f in files)
    assert sorted(lines) == sorted(dead_letter_json(r) for r in RECORDS)
    parsed = [json.loads(line) for line in lines]
    for record in parsed:
        assert list(record) == sorted(record), "keys must be sorted"
        assert set(record) == {f.name for f in dataclasses.fields(DeadLetter)}
    by_reason = {r["reason"]: r for r in parsed}
    assert by_reason == {r.reason: dataclasses.asdict(r) for r in RECORDS}
    assert by_reason["truncated_gzip"]["stage"] == "read"
    assert by_reason["truncated_gzip"]["extra"] == {"scope": "file"}
    assert by_reason["invalid_url"]["stage"] == "url"
    assert by_reason["no_text"]["doc_id"] == "00ff00ff00ff00ff"
    assert "https://数学.example/页" in next(line for line in lines if "no_text" in line)


def test_empty_input_writes_no_record(tmp_path: Path) -> None:
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        empty = p | beam.Create([]).with_output_types(DeadLetter)
        _ = empty | WriteDeadLetters(str(tmp_path))

    # No file at all, not an empty one: Beam's S3 upload of an empty object fails (issue 14).
    files, lines = read_lines(tmp_path)
    assert files == [] and lines == []
    folder = tmp_path / DEAD_LETTER_DIR
    assert not folder.exists() or list(folder.iterdir()) == []


def test_dead_letters_of_a_dofn_output_reach_the_files(tmp_path: Path) -> None:
    """How stages use it: a DoFn's tagged dead-letter output, written next to its main output."""

    def check(value: int) -> Iterator[object]:
        if value < 0:
            yield dead_letter_output(DeadLetter("demo", "negative", f"{value} < 0", offset=value))
        else:
            yield value

    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = (
            p
            | beam.Create([3, -1, 5, -7])
            | beam.FlatMap(check).with_outputs(DEAD_LETTER, main="ok")
        )
        assert_that(out.ok, equal_to([3, 5]))
        _ = out[DEAD_LETTER] | WriteDeadLetters(str(tmp_path))

    _, lines = read_lines(tmp_path)
    assert sorted((r["stage"], r["reason"], r["offset"]) for r in map(json.loads, lines)) == [
        ("demo", "negative", -7),
        ("demo", "negative", -1),
    ]
