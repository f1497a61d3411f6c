"""Listing a shards run's inputs on the driver: pools, datasets and code trees -> files."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.files import match_with_sizes
from pipeline.shards.config import (
    ShardsConfig,
)
from pipeline.shards.text_sources import (
    format_for_file,
)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file as listed by the driver."""

    path: str
    fmt: str
    """`pool`, `jsonl`, `parquet` or `tree` (one source file)."""
    relative: str
    """Tree: path below the tree root, prefixed with the root folder's name; else the file
    name."""
    size: int
    """Bytes, from the listing."""


# --- listing inputs (driver) ---


def _folder_files(folder: str) -> list[tuple[str, int]]:
    return match_with_sizes(FileSystems.join(folder.rstrip("/"), "**"))


@dataclass
class InputListing:
    """What one --input resolved to."""

    files: list[InputFile] = field(default_factory=list)
    excluded: int = 0
    """Tree files left out by the exclude patterns."""
    problem: str | None = None


def _tree_listing(
    pattern: str, folder: list[tuple[str, int]], config: ShardsConfig
) -> InputListing:
    root = pattern.rstrip("/")
    # Lineage paths start with the root folder's name (`json/decoder.py` for --input .../json),
    # so files of several trees stay distinguishable; excludes match below the root.
    root_name = root.rsplit("/", 1)[-1]
    listing = InputListing()
    for path, size in folder:
        inside = path[len(root) :].lstrip("/")
        if any(fnmatch.fnmatch(inside, glob) for glob in config.exclude):
            listing.excluded += 1
        else:
            listing.files.append(InputFile(path, "tree", f"{root_name}/{inside}", size))
    if not listing.files:
        listing.problem = f"--input {pattern!r}: no files in the tree"
    elif not config.is_code:
        listing.files = []
        listing.problem = (
            f"--input {pattern!r} is a folder of files (a code tree) but --domain is "
            f"{config.domain!r}; use --domain code, or give a pool folder or .jsonl/.parquet "
            "files (or --input-format)"
        )
    return listing


def _dataset_listing(pattern: str, candidates: list[tuple[str, int]], fmt: str) -> InputListing:
    """Dataset files; fmt `auto` reads each file's format from its suffix."""
    listing = InputListing()
    unknown: list[str] = []
    for path, size in candidates:
        file_fmt = fmt if fmt != "auto" else format_for_file(path)
        if file_fmt is None:
            unknown.append(path)
        else:
            listing.files.append(InputFile(path, file_fmt, path.rsplit("/", 1)[-1], size))
    if unknown:
        listing.problem = (
            f"--input {pattern!r}: cannot tell the format of {unknown[:3]} (.jsonl[.gz], "
            ".json[.gz], .parquet, a pool folder or a code tree); pass --input-format"
        )
    elif not listing.files:
        listing.problem = f"--input {pattern!r} matches no {fmt} input"
    return listing


def _resolve_input(pattern: str, config: ShardsConfig) -> InputListing:
    """The files of one --input.

    auto: a folder holding pool-*.parquet is a pool; files the pattern matches are read by
    their suffix; a folder whose files are all .jsonl/.parquet is a dataset; any other folder
    is a code tree.
    """
    fmt = config.input_format
    if fmt in ("auto", "pool"):
        pool = match_with_sizes(FileSystems.join(pattern.rstrip("/"), "pool-*.parquet"))
        if pool:
            return _dataset_listing(pattern, pool, "pool")
    matched = match_with_sizes(pattern)
    if matched:
        return _dataset_listing(pattern, matched, "auto" if fmt == "tree" else fmt)
    folder = _folder_files(pattern)
    all_datasets = bool(folder) and all(format_for_file(path) for path, _ in folder)
    if fmt == "tree" or (fmt == "auto" and folder and not all_datasets):
        return _tree_listing(pattern, folder, config)
    if fmt in ("pool", "jsonl", "parquet"):
        wanted = "parquet" if fmt == "pool" else fmt
        folder = [(path, size) for path, size in folder if format_for_file(path) == wanted]
    return _dataset_listing(pattern, folder, fmt)


def list_inputs(config: ShardsConfig) -> tuple[list[InputFile], int]:
    """Every input file (sorted, each once) and the number of tree files excluded."""
    files: list[InputFile] = []
    excluded = 0
    problems: list[str] = []
    for pattern in config.inputs:
        listing = _resolve_input(pattern, config)
        files.extend(listing.files)
        excluded += listing.excluded
        if listing.problem:
            problems.append(listing.problem)
    raise_if_problems("shards inputs", problems)
    unique = {f.path: f for f in files}
    return [unique[p] for p in sorted(unique)], excluded
