"""A Beam file system with its own scheme, `mctest://`, stored in a local folder.

Beam 2.77 registers no in-memory file system, and S3 is tested elsewhere (moto). This one makes
a work folder a non-local path for code under test while the bytes stay on local disk: any
`open`, `os.path` or `glob` call on a `mctest://` path fails or looks in the wrong place, so
only code that goes through `FileSystems` passes. Like an object store it lists files, never
folders. It lives in this process only (FnApiRunner runs DoFns in-process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from apache_beam.io.filesystem import (
    CompressionTypes,
    FileMetadata,
    FileSystem,
    MatchResult,
)
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "mctest"
PREFIX = f"{SCHEME}://"
# The local folder behind `mctest://`; set by the test fixture (`use_root`).
_ROOT: list[str] = []


def use_root(root: str) -> None:
    _ROOT[:] = [root.rstrip("/")]


def to_local(path: str) -> str:
    if not path.startswith(PREFIX):
        raise ValueError(f"not a {PREFIX} path: {path}")
    if not _ROOT:
        raise RuntimeError("scheme_filesystem.use_root was not called")
    return _ROOT[0] + "/" + path[len(PREFIX) :]


def to_url(local: str) -> str:
    return PREFIX + local[len(_ROOT[0]) + 1 :]


class SchemeFileSystem(FileSystem):
    """`mctest://a/b` is `<root>/a/b` on local disk (Beam finds it by its scheme)."""

    def __init__(self, pipeline_options: Any = None) -> None:
        super().__init__(pipeline_options)
        self._local = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path: str) -> None:
        os.makedirs(to_local(path), exist_ok=True)  # object stores: a no-op that never fails

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str) -> Iterator[FileMetadata]:
        for meta in self._local._list(to_local(dir_or_prefix)):
            yield FileMetadata(to_url(meta.path), meta.size_in_bytes, meta.last_updated_in_seconds)

    def match(self, patterns: list[str], limits: list[int] | None = None) -> list[MatchResult]:
        results = self._local.match([to_local(p) for p in patterns], limits)
        return [
            MatchResult(
                pattern,
                [
                    FileMetadata(to_url(m.path), m.size_in_bytes, m.last_updated_in_seconds)
                    for m in result.metadata_list
                    if not os.path.isdir(m.path)
                ],
            )
            for pattern, result in zip(patterns, results, strict=True)
        ]

    def create(
        self,
        path: str,
        mime_type: str = "application/octet-stream",
        compression_type: str = CompressionTypes.AUTO,
    ) -> BinaryIO:
        os.makedirs(os.path.dirname(to_local(path)), exist_ok=True)
        return self._local.create(to_local(path), mime_type, compression_type)

    def open(
        self,
        path: str,
        mime_type: str = "application/octet-stream",
        compression_type: str = CompressionTypes.AUTO,
    ) -> BinaryIO:
        return self._local.open(to_local(path), mime_type, compression_type)

    def copy(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        for dst in destination_file_names:
            os.makedirs(os.path.dirname(to_local(dst)), exist_ok=True)
        self._local.copy(
            [to_local(p) for p in source_file_names], [to_local(p) for p in destination_file_names]
        )

    def rename(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        for dst in destination_file_names:
            os.makedirs(os.path.dirname(to_local(dst)), exist_ok=True)
        self._local.rename(
            [to_local(p) for p in source_file_names], [to_local(p) for p in destination_file_names]
        )

    def exists(self, path: str) -> bool:
        return self._local.exists(to_local(path))

    def size(self, path: str) -> int:
        return self._local.size(to_local(path))

    def last_updated(self, path: str) -> float:
        return self._local.last_updated(to_local(path))

    def checksum(self, path: str) -> str:
        return self._local.checksum(to_local(path))

    def metadata(self, path: str) -> FileMetadata:
        meta = self._local.metadata(to_local(path))
        return FileMetadata(path, meta.size_in_bytes, meta.last_updated_in_seconds)

    def delete(self, paths: list[str]) -> None:
        self._local.delete([to_local(p) for p in paths])
