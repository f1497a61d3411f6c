"""On-disk formats written by deduplication (documented in FORMAT.md, "Deduplication").

A deduplicated pool folder holds, next to its `pool-*.parquet` (the kept pages):

    duplicates/duplicates-SSSSS-of-NNNNN.parquet   every removed page: pool columns + cluster
    band_index/band_index-SSSSS-of-NNNNN.parquet   per kept page: text hash and LSH band keys
    dedup_report.json                              cluster sizes, pairs near the threshold
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from pipeline.dedup.minhash import MinHashConfig
from pipeline.pool.schema import POOL_SCHEMA

DEDUP_FORMAT_VERSION = 1
DUPLICATES_DIR = "duplicates"
DUPLICATES_PREFIX = "duplicates"
BAND_INDEX_DIR = "band_index"
BAND_INDEX_PREFIX = "band_index"
REPORT_FILE = "dedup_report.json"
# Parquet metadata key holding the MinHash config that made a band index: an index is usable
# for incremental dedup only with the same config (other permutations give other keys).
MINHASH_METADATA_KEY = b"mathcorpus.minhash"

DUPLICATE_KINDS = ("exact", "near")

DUPLICATES_SCHEMA = pa.schema(
    [
        *POOL_SCHEMA,
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("kept_id", pa.string(), nullable=False),
        pa.field("duplicate_kind", pa.string(), nullable=False),
    ],
    metadata={
        b"mathcorpus.format": b"duplicates",
        b"mathcorpus.format_version": str(DEDUP_FORMAT_VERSION).encode(),
    },
)


def minhash_json(config: MinHashConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))


def band_index_schema(config: MinHashConfig) -> pa.Schema:
    return pa.schema(
        [
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("text_hash", pa.string(), nullable=False),
            pa.field("n_chars", pa.int64(), nullable=False),
            # Empty for a page without shingles (fewer words than the shingle size).
            pa.field("band_keys", pa.list_(pa.int64()), nullable=False),
        ],
        metadata={
            b"mathcorpus.format": b"band_index",
            b"mathcorpus.format_version": str(DEDUP_FORMAT_VERSION).encode(),
            MINHASH_METADATA_KEY: minhash_json(config).encode(),
        },
    )


def duplicate_row(row: dict[str, Any], cluster_id: str, kept_id: str, kind: str) -> dict[str, Any]:
    """A pool row plus where it went: its cluster, the page kept for it, exact or near."""
    return {**row, "cluster_id": cluster_id, "kept_id": kept_id, "duplicate_kind": kind}


def index_row(doc_id: str, text_hash: str, n_chars: int, band_keys: list[int]) -> dict[str, Any]:
    return {"doc_id": doc_id, "text_hash": text_hash, "n_chars": n_chars, "band_keys": band_keys}
