"""File access for the shard and manifest formats: local paths, gs:// and s3://, via pyarrow.fs.

The trainer reads shards and manifests on hosts without Beam, so this package cannot use Beam's
FileSystems; pyarrow (already needed for Parquet) reaches the same stores. Paths are plain
strings: a local path (relative or absolute) or a `scheme://bucket/key` URL.
"""

from __future__ import annotations

import os
import posixpath
from typing import BinaryIO

import pyarrow.fs as pafs


def is_url(path: str) -> bool:
    """True for `scheme://...` paths (gs://, s3://, file://)."""
    return "://" in path


def _resolve(path: str) -> tuple[pafs.FileSystem, str]:
    if is_url(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(path)


def open_input(path: str) -> BinaryIO:
    """A seekable binary reader (`with` closes it). FileNotFoundError when absent."""
    fs, inner = _resolve(path)
    return fs.open_input_file(inner)  # type: ignore[return-value]


def open_output(path: str) -> BinaryIO:
    """A binary writer that creates or replaces `path` (parent folders are created)."""
    fs, inner = _resolve(path)
    parent = posixpath.dirname(inner) if is_url(path) else os.path.dirname(inner)
    if parent:
        fs.create_dir(parent, recursive=True)
    return fs.open_output_stream(inner)  # type: ignore[return-value]


def file_size(path: str) -> int | None:
    """Size in bytes, or None when `path` is not a file."""
    fs, inner = _resolve(path)
    info = fs.get_file_info(inner)
    if info.type != pafs.FileType.File:
        return None
    return int(info.size)


def exists(path: str) -> bool:
    fs, inner = _resolve(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    fs, inner = _resolve(path)
    return fs.get_file_info(inner).type == pafs.FileType.Directory


def replace(src: str, dst: str) -> None:
    """Rename `src` over `dst` (atomic on local file systems; a copy on object stores)."""
    if not is_url(src) and not is_url(dst):
        os.replace(src, dst)
        return
    fs, inner_src = _resolve(src)
    _, inner_dst = _resolve(dst)
    fs.move(inner_src, inner_dst)


def join(base: str, *parts: str) -> str:
    if is_url(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def parent(path: str) -> str:
    """The folder that holds `path`."""
    if is_url(path):
        return posixpath.dirname(path.rstrip("/"))
    return os.path.dirname(os.path.abspath(path))


def normalize(path: str) -> str:
    """An absolute local path, or the URL with `.`/`..` segments resolved."""
    if is_url(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.abspath(path)


def relative_to(path: str, folder: str) -> str:
    """`path` relative to `folder` when both are on the same store, else `path` absolute."""
    path, folder = normalize(path), normalize(folder)
    if is_url(path) or is_url(folder):
        scheme_p, rest_p = path.split("://", 1) if is_url(path) else ("", path)
        scheme_f, rest_f = folder.split("://", 1) if is_url(folder) else ("", folder)
        bucket_p, bucket_f = rest_p.split("/", 1)[0], rest_f.split("/", 1)[0]
        if scheme_p != scheme_f or bucket_p != bucket_f:
            return path
        return posixpath.relpath("/" + rest_p, "/" + rest_f)
    return os.path.relpath(path, folder)


def resolve_relative(folder: str, path: str) -> str:
    """The absolute form of `path` as written in a manifest that lives in `folder`."""
    if is_url(path) or os.path.isabs(path):
        return normalize(path)
    return normalize(join(folder, path))
