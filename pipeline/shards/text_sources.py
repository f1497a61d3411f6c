"""Readers that turn input files into documents to tokenize (pure Python: no Beam).

Formats `pool`, `jsonl`, `parquet` and `tree` (a folder of source files); input a reader cannot
use becomes a `BadRecord` with a reason, which the caller dead-letters. Document ids: the id
field, the pool's `doc_id`, else blake2b-64 of the text (docs/stages/shards.md).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
import random
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.shards.code_filters import extension_of

FORMATS = ("pool", "jsonl", "parquet", "tree")
POOL_GLOB = "pool-*.parquet"
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
# Rows per Arrow batch when reading Parquet: bounded memory for datasets with long documents.
PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A document read from an input, before filtering and tokenization."""

    doc_id: str
    text: str
    url: str | None = None
    host: str | None = None
    path: str | None = None
    """Code: `<root folder name>/<path below the root>`, or the dataset's path field."""
    language: str | None = None
    """Natural language (pool) or programming language (code), when known."""
    input_file: str = ""
    """The file it came from."""
    row: int = -1
    """Row index in that file (JSONL: line index, both from 0); -1 for a whole file."""


@dataclass(frozen=True, slots=True)
class BadRecord:
    """Input that cannot become a document: dead-lettered with its reason."""

    reason: str
    """Short snake_case class: `undecodable`, `bad_json`, `not_an_object`,
    `missing_text_field`, `bad_text_type`, `missing_id_field`, `unreadable_file`."""
    error: str
    input_file: str
    row: int = -1
    """Row index in the file; -1 when the whole file is unusable."""


@dataclass(frozen=True)
class SourceFields:
    """Where a JSONL/Parquet dataset keeps each thing (field names; None: not there)."""

    text_field: str = "text"
    """The document text (code datasets: usually `content`)."""
    id_field: str | None = None
    """A stable document id; None: the content id (blake2b-64 of the text) is used."""
    url_field: str | None = "url"
    """A URL, kept as lineage when the record has it."""
    path_field: str | None = None
    """A file path (code datasets: usually `path`)."""
    language_field: str | None = None
    """A language name (code datasets: usually `language` or `lang`)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def content_id(text: str) -> str:
    """16 hex chars: blake2b-64 of the UTF-8 text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def format_for_file(name: str) -> str | None:
    """`jsonl` or `parquet` from a file name, None when the suffix says neither."""
    lower = name.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def maybe_gunzip(fh: BinaryIO, name: str) -> BinaryIO:
    """Wrap `fh` in a gzip reader when `name` ends with .gz."""
    if name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


def _host_of(url: str | None) -> str | None:
    if not url or "://" not in url:
        return None
    return url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].lower() or None


def _record_document(
    record: dict[str, Any], fields: SourceFields, input_file: str, row: int
) -> SourceDocument | BadRecord:
    """A document from one JSONL object or Parquet row."""
    if fields.text_field not in record or record[fields.text_field] is None:
        return BadRecord("missing_text_field", f"no {fields.text_field!r} field", input_file, row)
    text = record[fields.text_field]
    if not isinstance(text, str):
        return BadRecord(
            "bad_text_type",
            f"{fields.text_field!r} is {type(text).__name__}, not a string",
            input_file,
            row,
        )
    if fields.id_field:
        value = record.get(fields.id_field)
        if value is None or value == "":
            return BadRecord("missing_id_field", f"no {fields.id_field!r} field", input_file, row)
        doc_id = str(value)
    else:
        doc_id = content_id(text)
    url = _optional_str(record, fields.url_field)
    return SourceDocument(
        doc_id=doc_id,
        text=text,
        url=url,
        host=_host_of(url),
        path=_optional_str(record, fields.path_field),
        language=_optional_str(record, fields.language_field),
        input_file=input_file,
        row=row,
    )


def _optional_str(record: dict[str, Any], name: str | None) -> str | None:
    if not name:
        return None
    value = record.get(name)
    return None if value is None else str(value)


def iter_jsonl(
    fh: BinaryIO, input_file: str, fields: SourceFields
) -> Iterator[SourceDocument | BadRecord]:
    """Documents from JSON Lines (blank lines skipped; a bad line is a BadRecord, the next line
    goes on)."""
    stream = maybe_gunzip(fh, input_file)
    row = -1
    try:
        for raw in stream:
            row += 1
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadRecord("undecodable", str(exc), input_file, row)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield BadRecord("bad_json", str(exc), input_file, row)
                continue
            if not isinstance(record, dict):
                yield BadRecord("not_an_object", f"a JSON {type(record).__name__}", input_file, row)
                continue
            yield _record_document(record, fields, input_file, row)
    except (OSError, EOFError, zlib.error) as exc:
        # A truncated or garbled .gz: the records read so far are kept, the rest is reported.
        yield BadRecord("unreadable_file", f"{type(exc).__name__}: {exc}", input_file, row + 1)


def _parquet_rows(
    fh: BinaryIO, input_file: str, columns: list[str]
) -> Iterator[tuple[int, dict[str, Any]] | BadRecord]:
    try:
        parquet = pq.ParquetFile(fh)
    except (pa.ArrowInvalid, OSError) as exc:
        yield BadRecord("unreadable_file", f"{type(exc).__name__}: {exc}", input_file)
        return
    present = [c for c in columns if c in parquet.schema_arrow.names]
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=present):
            for record in batch.to_pylist():
                yield row, record
                row += 1
    except (pa.ArrowInvalid, OSError) as exc:
        yield BadRecord("unreadable_file", f"{type(exc).__name__}: {exc}", input_file, row)


def parquet_columns(fh: BinaryIO) -> list[str]:
    return list(pq.ParquetFile(fh).schema_arrow.names)


def iter_parquet(
    fh: BinaryIO, input_file: str, fields: SourceFields
) -> Iterator[SourceDocument | BadRecord]:
    """Documents from a Parquet dataset file. A file without the text column is one BadRecord
    (`missing_text_field`, row -1)."""
    try:
        names = parquet_columns(fh)
    except (pa.ArrowInvalid, OSError) as exc:
        yield BadRecord("unreadable_file", f"{type(exc).__name__}: {exc}", input_file)
        return
    if fields.text_field not in names:
        yield BadRecord(
            "missing_text_field",
            f"no column {fields.text_field!r} (columns: {names})",
            input_file,
        )
        return
    fh.seek(0)
    wanted = [
        name
        for name in (
            fields.text_field,
            fields.id_field,
            fields.url_field,
            fields.path_field,
            fields.language_field,
        )
        if name
    ]
    for item in _parquet_rows(fh, input_file, wanted):
        if isinstance(item, BadRecord):
            yield item
        else:
            row, record = item
            yield _record_document(record, fields, input_file, row)


def iter_pool(fh: BinaryIO, input_file: str) -> Iterator[SourceDocument | BadRecord]:
    """Documents from one pool file (FORMAT.md, "Pool")."""
    columns = ["doc_id", "text", "url", "domain", "language"]
    for item in _parquet_rows(fh, input_file, columns):
        if isinstance(item, BadRecord):
            yield item
            continue
        row, record = item
        text = record.get("text")
        doc_id = record.get("doc_id")
        if not isinstance(text, str):
            yield BadRecord("missing_text_field", "no `text` in the pool row", input_file, row)
            continue
        if not doc_id:
            yield BadRecord("missing_id_field", "no `doc_id` in the pool row", input_file, row)
            continue
        yield SourceDocument(
            doc_id=str(doc_id),
            text=text,
            url=record.get("url"),
            host=record.get("domain"),
            language=record.get("language"),
            input_file=input_file,
            row=row,
        )


def tree_document(
    data: bytes, input_file: str, relative_path: str, language: str
) -> SourceDocument | BadRecord:
    """One source file of a tree as a document (strict UTF-8; the content id is its doc_id)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord("undecodable", f"not UTF-8: {exc}", input_file)
    return SourceDocument(
        doc_id=content_id(text),
        text=text,
        path=relative_path,
        language=language or None,
        input_file=input_file,
    )


def iter_file_documents(
    fh: BinaryIO, input_file: str, fmt: str, fields: SourceFields
) -> Iterator[SourceDocument | BadRecord]:
    """Dispatch on the format of one dataset file (`pool`, `jsonl` or `parquet`)."""
    if fmt == "pool":
        return iter_pool(fh, input_file)
    if fmt == "jsonl":
        return iter_jsonl(fh, input_file, fields)
    if fmt == "parquet":
        return iter_parquet(fh, input_file, fields)
    raise ValueError(f"no file reader for format {fmt!r}")


# --- local reading (the tokenizer-training sample; the pipeline lists through Beam) ---


def local_inputs(path: str, fmt: str = "auto") -> list[tuple[str, str, str]]:
    """(file, path relative to the input, format) of a local input, sorted by path.

    The same rules as `mathcorpus shards`: a folder holding pool-*.parquet is a pool; a folder
    whose files are all .jsonl/.parquet is a dataset; any other folder is a code tree (each
    file `tree`); a file is read by its suffix.
    """
    if not os.path.isdir(path):
        file_fmt = format_for_file(path) if fmt in ("auto", "tree") else fmt
        if file_fmt is None:
            raise ValueError(f"{path}: cannot tell the format (.jsonl[.gz], .parquet or a folder)")
        return [(path, os.path.basename(path), file_fmt)]
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            found.append((full, os.path.relpath(full, path).replace(os.sep, "/")))
    pool = [(f, r) for f, r in found if "/" not in r and fnmatch.fnmatch(r, POOL_GLOB)]
    if fmt in ("auto", "pool") and pool:
        return [(f, r, "pool") for f, r in pool]
    if fmt == "auto" and found and all(format_for_file(r) for _, r in found):
        return [(f, r, str(format_for_file(r))) for f, r in found]
    if fmt in ("jsonl", "parquet"):
        return [(f, r, fmt) for f, r in found if format_for_file(r) == fmt]
    root_name = os.path.basename(os.path.normpath(path))
    return [(f, f"{root_name}/{r}", "tree") for f, r in found]


def _local_items(
    full: str, relative: str, fmt: str, fields: SourceFields, extensions: dict[str, str]
) -> Iterator[SourceDocument | BadRecord]:
    if fmt == "tree":
        language = extensions.get(extension_of(relative))
        if language is None:
            return
        with open(full, "rb") as fh:
            yield tree_document(fh.read(), full, relative, language)
        return
    with open(full, "rb") as fh:
        yield from iter_file_documents(fh, full, fmt, fields)


def sample_local_documents(
    path: str,
    *,
    fields: SourceFields,
    fmt: str = "auto",
    max_chars: int,
    seed: int,
    extensions: dict[str, str] | None = None,
) -> Iterator[SourceDocument]:
    """Documents from a local input until `max_chars` characters: files in a seeded random
    order (so a sample is not just the alphabetically first files), documents in file order.
    Bad records and empty texts are skipped; in a tree only files whose extension is in
    `extensions` (extension -> language) are read."""
    files = local_inputs(path, fmt)
    random.Random(seed).shuffle(files)
    taken = 0
    for full, relative, file_fmt in files:
        items = _local_items(full, relative, file_fmt, fields, extensions or {})
        for item in items:
            if isinstance(item, SourceDocument) and item.text.strip():
                yield item
                taken += len(item.text)
                if taken >= max_chars:
                    items.close()
                    return
