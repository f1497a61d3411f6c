"""Files of the mining work folder on any Beam file system (local, gs://, s3://).

The loop's driver reads and writes only through `FileSystems`, so `--workdir` may be an object
store; the only local files are temporary ones (fastText trains from, and saves to, a local
path). Every write goes to a temporary name first and is renamed into place, so a reader (or a
rerun after a kill) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any, BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.core.files import match_files

# Copy buffer: 8 MiB keeps a 2 GB model.bin upload at a few hundred writes.
COPY_CHUNK_BYTES = 8 << 20
TMP_SUFFIX = ".tmp"


def open_raw(path: str) -> BinaryIO:
    """Open for reading, bytes as stored (FileSystems would gunzip a `.gz` name by default)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _create_raw(path: str) -> BinaryIO:
    return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _replace(tmp: str, path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def read_text(path: str) -> str:
    with open_raw(path) as fh:
        return fh.read().decode("utf-8")


def write_text_atomic(path: str, text: str) -> None:
    """Write UTF-8 text under `path.tmp`, then rename it over `path`."""
    tmp = path + TMP_SUFFIX
    with _create_raw(tmp) as fh:
        fh.write(text.encode("utf-8"))
    _replace(tmp, path)


def upload_file(local_path: str, path: str) -> None:
    """Copy a local file to `path` (any file system), through `path.tmp` and a rename."""
    tmp = path + TMP_SUFFIX
    with open(local_path, "rb") as src, _create_raw(tmp) as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
    _replace(tmp, path)


def download_file(path: str, local_path: str) -> None:
    """Copy `path` (any file system) to a local file."""
    with open_raw(path) as src, open(local_path, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)


def concatenate(paths: list[str], local_path: str) -> int:
    """Concatenate files (any file system), in the given order, into one local file; bytes."""
    total = 0
    with open(local_path, "wb") as dst:
        for path in paths:
            with open_raw(path) as src:
                while block := src.read(COPY_CHUNK_BYTES):
                    dst.write(block)
                    total += len(block)
    return total


def read_lines(paths: list[str]) -> Iterator[str]:
    """The lines (without their newline) of text files, file after file."""
    for path in paths:
        with open_raw(path) as fh:
            for raw in fh:
                yield raw.decode("utf-8").rstrip("\n")


def read_json_lines(pattern: str) -> Iterator[Any]:
    """One JSON value per non-empty line of every file matching `pattern` (sorted by path)."""
    for line in read_lines(match_files(pattern)):
        if line.strip():
            yield json.loads(line)


def delete_tree(path: str) -> None:
    """Remove a folder and everything under it (on object stores: every object under the
    prefix; a local folder itself goes too)."""
    files = match_files(FileSystems.join(path, "**"))
    if files:
        FileSystems.delete(files)
    if FileSystems.exists(path):
        FileSystems.delete([path])
