"""The pool format: one Parquet row per page (documented in FORMAT.md, "Pool")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

POOL_FORMAT_VERSION = 1
# Parquet files of a pool are named `<POOL_FILE_PREFIX>-SSSSS-of-NNNNN.parquet` directly in
# the pool folder.
POOL_FILE_PREFIX = "pool"

POOL_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("warc_file", pa.string(), nullable=False),
        pa.field("warc_offset", pa.int64(), nullable=False),
        pa.field("fetch_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("language_score", pa.float32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("n_chars", pa.int32(), nullable=False),
        pa.field("has_math", pa.bool_(), nullable=False),
        pa.field("math_formats", pa.list_(pa.string()), nullable=False),
        pa.field("n_math", pa.int32(), nullable=False),
        pa.field("encoding", pa.string(), nullable=False),
        pa.field("extractor", pa.string(), nullable=False),
        pa.field("extractor_version", pa.string(), nullable=False),
    ],
    metadata={b"mathcorpus.format": b"pool", b"mathcorpus.format_version": b"1"},
)


def pool_row(
    *,
    doc_id: str,
    url: str,
    domain: str,
    warc_file: str,
    warc_offset: int,
    fetch_time: datetime,
    language: str,
    language_score: float,
    text: str,
    math_formats: tuple[str, ...],
    n_math: int,
    encoding: str,
    extractor: str,
    extractor_version: str,
) -> dict[str, Any]:
    """One pool row as a dict in POOL_SCHEMA's column order."""
    return {
        "doc_id": doc_id,
        "url": url,
        "domain": domain,
        "warc_file": warc_file,
        "warc_offset": warc_offset,
        "fetch_time": fetch_time,
        "language": language,
        "language_score": language_score,
        "text": text,
        "n_chars": len(text),
        # `$...$` already in the text counts as math too, though no markup was converted.
        "has_math": bool(math_formats) or n_math > 0,
        "math_formats": list(math_formats),
        "n_math": n_math,
        "encoding": encoding,
        "extractor": extractor,
        "extractor_version": extractor_version,
    }
