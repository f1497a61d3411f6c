"""Seed sources -> the files that hold them, listed through Beam's FileSystems.

A seed source (`--positives`, `--negatives`) is a pool folder (pool-*.parquet), a folder of
.jsonl[.gz]/.parquet files, or one such file, on any Beam file system (local, gs://, s3://).
The driver only lists the files (`SeedFile`: path, format, fields); a Beam step reads them
(`ReadSeedDocs`), so a seed of a million pages is never read by the driver. `SeedReader` reads
them on the driver for `mathcorpus classifier train`, which has no Beam pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from pipeline.core.files import match_files
from pipeline.mine.classifier import SeedDoc
from pipeline.mine.workdir_files import open_raw
from pipeline.shards.text_sources import (
    POOL_GLOB,
    BadRecord,
    SourceDocument,
    SourceFields,
    format_for_file,
    iter_file_documents,
)

# The folders the loop writes itself (negatives/, iter_k/expansion/) hold `<name>-*.jsonl`
# files with `doc_id` and `text` fields, whatever the user's seed fields are.
RUN_FOLDER_FIELDS = SourceFields(text_field="text", id_field="doc_id")


@dataclass(frozen=True)
class SeedFile:
    """One file of a seed source, as a Beam step reads it."""

    path: str
    """The file (any Beam file system)."""
    fmt: str
    """`pool`, `jsonl` or `parquet` (pipeline/shards/text_sources.py readers)."""
    fields: SourceFields
    """Which fields hold the text and the id (pool files: always `text` and `doc_id`)."""


def _is_folder(source: str) -> bool:
    # A local folder is matched as itself by Beam's local file system; an object-store "folder"
    # is a prefix with objects under it.
    return bool(match_files(FileSystems.join(source, "*"))) or not match_files(source)


def seed_files(source: str, fields: SourceFields) -> list[SeedFile]:
    """The files of one seed source, sorted by path; [] when it does not exist.

    Raises ValueError for a file or folder whose files are not .jsonl[.gz]/.parquet."""
    if not _is_folder(source):
        fmt = format_for_file(source)
        if fmt is None:
            raise ValueError(
                f"{source}: cannot tell the format (.jsonl[.gz], .parquet or a folder)"
            )
        return [SeedFile(source, fmt, fields)]
    pool = match_files(FileSystems.join(source, POOL_GLOB))
    if pool:
        return [SeedFile(path, "pool", RUN_FOLDER_FIELDS) for path in pool]
    files = match_files(FileSystems.join(source, "**"))
    unknown = [path for path in files if format_for_file(path) is None]
    if unknown:
        raise ValueError(
            f"{source}: a seed folder must hold pool-*.parquet or only .jsonl[.gz]/.parquet "
            f"files; {unknown[0]} is neither"
        )
    return [SeedFile(path, str(format_for_file(path)), fields) for path in files]


def run_folder_files(folder: str, prefix: str) -> list[SeedFile]:
    """The `<prefix>-*.jsonl` files of a folder the loop wrote (negatives/, expansion/)."""
    pattern = FileSystems.join(folder, f"{prefix}-*.jsonl")
    return [SeedFile(path, "jsonl", RUN_FOLDER_FIELDS) for path in match_files(pattern)]


def source_exists(source: str) -> bool:
    """A file, or a folder (prefix) with at least one file under it."""
    return bool(match_files(source)) or bool(match_files(FileSystems.join(source, "*")))


def read_seed_file(seed_file: SeedFile) -> Iterator[SourceDocument | BadRecord]:
    """Documents of one seed file (through FileSystems; .gz is unpacked by the reader)."""
    with open_raw(seed_file.path) as fh:
        yield from iter_file_documents(fh, seed_file.path, seed_file.fmt, seed_file.fields)


class SeedReader:
    """Seed documents on the driver; bad records are counted per reason (never silently lost),
    empty texts are skipped."""

    def __init__(self) -> None:
        self.bad: dict[str, int] = {}

    def docs(self, sources: Sequence[str], fields: SourceFields) -> Iterator[SeedDoc]:
        for source in sources:
            files = seed_files(source, fields)
            if not files:
                raise FileNotFoundError(f"seed source {source} does not exist")
            for seed_file in files:
                for item in read_seed_file(seed_file):
                    if isinstance(item, BadRecord):
                        self.bad[item.reason] = self.bad.get(item.reason, 0) + 1
                    elif item.text.strip():
                        yield SeedDoc(item.doc_id, item.text)
