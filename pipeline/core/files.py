"""File listing on any Beam file system (local, gs://, s3://): one place for `FileSystems.match`."""

from __future__ import annotations

import os
from collections.abc import Sequence

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import ConfigError


def match_with_sizes(pattern: str) -> list[tuple[str, int]]:
    """Sorted (path, size in bytes) of the files matching `pattern`; [] when none match (some
    file systems raise instead of returning nothing). Local folders are left out: Beam's local
    match returns a folder named without a glob as if it were a file."""
    try:
        result = FileSystems.match([pattern])[0]
    except BeamIOError:
        return []
    return sorted(
        (m.path, int(m.size_in_bytes))
        for m in result.metadata_list
        if "://" in m.path or not os.path.isdir(m.path)
    )


def match_files(pattern: str) -> list[str]:
    """Sorted paths of the files matching `pattern`; [] when none match."""
    return [path for path, _ in match_with_sizes(pattern)]


def match_inputs(patterns: Sequence[str], what: str) -> list[str]:
    """Sorted, de-duplicated files of every `--input` pattern; one ConfigError names each
    pattern that matches nothing (`what`: whose inputs, for the message)."""
    files: list[str] = []
    unmatched: list[str] = []
    for pattern in patterns:
        matched = match_files(pattern)
        if not matched:
            unmatched.append(pattern)
        files.extend(matched)
    if unmatched:
        raise ConfigError(what, [f"--input {p!r} matches no file" for p in unmatched])
    return sorted(dict.fromkeys(files))


def delete_tree(folder: str) -> None:
    """Delete a folder and everything under it, on any file system. On an object store a
    "folder" is only a prefix (no object, so `FileSystems.exists` says False): its files are
    matched and deleted."""
    if "://" not in folder:
        if os.path.exists(folder):
            FileSystems.delete([folder])
        return
    files = match_files(FileSystems.join(folder, "**"))
    if files:
        FileSystems.delete(files)
