"""Dead letters: the one record type every stage writes for what it could not process.

A record error dead-letters the record and the run goes on; a file error dead-letters the file
(with where it stopped) and the next file goes on. Written as JSON lines under
`dead_letter/dead_letter-SSSSS-of-NNNNN.jsonl` of the run folder (FORMAT.md, "Dead letters").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

# Every stage imports this module, in its driver and in the workers that run its DoFns: the
# place that makes empty files writable on s3:// everywhere (see the module).
from pipeline.core import s3_empty_files  # noqa: F401

DEAD_LETTER = "dead_letter"
"""Tag of a DoFn's dead-letter output, and the file prefix of the written records."""
DEAD_LETTER_DIR = "dead_letter"
"""Folder of the dead letters inside a run folder."""
DEAD_LETTER_GLOB = f"{DEAD_LETTER_DIR}/*"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record (or a file) a stage could not process: kept for inspection, never lost."""

    stage: str
    """The stage that gave up (a `stats.json` stage name)."""
    reason: str
    """Short snake_case class of the error (e.g. `truncated_gzip`, `undecodable`)."""
    error: str
    """The error message."""
    source: str = ""
    """The input file the record came from (a WARC file, a Parquet or JSONL file, a source
    file); empty when not known."""
    offset: int = -1
    """Where in `source`: the byte offset of a WARC record (in the compressed stream for .gz),
    or the row index of a Parquet or JSONL row (from 0); -1 for a whole file or not known."""
    url: str = ""
    """The page's URL, when the record is a page."""
    doc_id: str = ""
    """The document's id, when it had one."""
    extra: dict[str, str] = field(default_factory=dict)
    """Anything else useful to debug the record (e.g. the fault's scope, a path)."""


def dead_letter_json(record: DeadLetter) -> str:
    """The record as one line of JSON (keys sorted)."""
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False, sort_keys=True)


def dead_letter_output(record: DeadLetter) -> pvalue.TaggedOutput:
    """The record on a DoFn's dead-letter output (`with_outputs(DEAD_LETTER, main=...)`)."""
    return pvalue.TaggedOutput(DEAD_LETTER, record)


class WriteDeadLetters(beam.PTransform):
    """DeadLetter records -> `<folder>/dead_letter/dead_letter-*.jsonl`; no file at all when
    there are none (readers glob the folder)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def expand(self, records: beam.PCollection) -> beam.pvalue.PDone:
        return (
            records
            | "DeadLetterJson" >> beam.Map(dead_letter_json)
            | "WriteDeadLetterJson"
            >> beam.io.WriteToText(
                FileSystems.join(self.folder, DEAD_LETTER_DIR, DEAD_LETTER),
                file_name_suffix=".jsonl",
                # Beam would otherwise write one empty file, and an empty object cannot be
                # written to S3 through Beam's s3io (a multipart upload with no parts:
                # MalformedXML). Most runs have no dead letters, so this is the common case.
                skip_if_empty=True,
            )
        )
