"""Staged parts and key records: how pages stay out of every shuffle (docs/stages/dedup.md).

Each input file becomes one staged Parquet part (its pool rows plus text hash and band keys),
written by the worker that read the file; only a small key record per page crosses a shuffle.
After the decisions, each part is streamed once more and split into pool, duplicates and band
index files. A page is addressed by `ref = part << 32 | row` (its part and row number).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.core.arrow_memory import use_system_allocator
from pipeline.dedup.exact import text_hash
from pipeline.dedup.minhash import MinHashConfig, text_band_keys
from pipeline.pool.schema import POOL_SCHEMA

PARTS_DIR = "_parts"
PART_PREFIX = "part"
# Rows per staged row group and per MinHash batch: enough to share the per-batch NumPy/Numba
# calls (throughput falls above ~64 on real pages), a few MB of text in memory at a time.
STAGE_BATCH_ROWS = 64
# Rows read back at a time when a part is split into its outputs.
READ_BATCH_ROWS = 256
ROW_BITS = 32

# Every process that stages or splits parts imports this module (workers too, to unpickle the
# DoFns): that is where Arrow's allocator is chosen (pipeline/core/arrow_memory.py says why).
use_system_allocator()

STAGED_SCHEMA = pa.schema(
    [
        *POOL_SCHEMA,
        # blake2b-128 of the normalised text, hex (pipeline/dedup/exact.py).
        pa.field("text_hash", pa.string(), nullable=False),
        # The page's LSH band keys as little-endian int64 bytes; empty without shingles.
        pa.field("band_keys", pa.binary(), nullable=False),
    ]
)

# A key record (a plain tuple: Beam pickles a NamedTuple with its module path, ~2x the bytes):
# (doc_id, ref, fetch time in µs since the epoch, WARC offset, text hash (16 bytes), text
# length in characters, band keys (bytes)).
KeyRecord = tuple[str, int, int, int, bytes, int, bytes]


def make_ref(part: int, row: int) -> int:
    return part << ROW_BITS | row


def split_ref(ref: int) -> tuple[int, int]:
    return ref >> ROW_BITS, ref & ((1 << ROW_BITS) - 1)


def part_path(staging: str, part: int) -> str:
    return FileSystems.join(staging, PARTS_DIR, f"{PART_PREFIX}-{part:05d}.parquet")


def output_name(prefix: str, part: int, n_parts: int) -> str:
    """`<prefix>-SSSSS-of-NNNNN.parquet`: one output file per input file, named like Beam's."""
    return f"{prefix}-{part:05d}-of-{n_parts:05d}.parquet"


def band_keys_of(blob: bytes) -> list[int]:
    return np.frombuffer(blob, dtype="<i8").tolist()


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


class ParquetPartWriter:
    """Streams row groups into `path` on any Beam file system: written under a temporary name
    and renamed on `close`, so a retried bundle rewrites the same file and a killed one leaves
    no half file under the final name."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.path = path
        self.rows = 0
        self._schema = schema
        self._tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
        self._fh = FileSystems.create(self._tmp)
        self._writer = pq.ParquetWriter(self._fh, schema, compression="zstd")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self._writer.write_table(pa.Table.from_pylist(list(rows), schema=self._schema))
            self.rows += len(rows)

    def close(self) -> None:
        self._writer.close()
        self._fh.close()
        if FileSystems.exists(self.path):
            FileSystems.delete([self.path])
        FileSystems.rename([self._tmp], [self.path])

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
            self._fh.close()
        with contextlib.suppress(Exception):
            FileSystems.delete([self._tmp])


class PartStager:
    """Pool rows of one input file -> its staged part and its key records.

    `add` buffers a row; every `STAGE_BATCH_ROWS` rows the batch gets its text hashes and band
    keys (one MinHash batch) and is written as a row group. `finish` commits the part and
    returns the key records (a few hundred bytes a page, kept until the part is committed).
    """

    def __init__(self, path: str, part: int, minhash: MinHashConfig | None) -> None:
        self._part = part
        self._minhash = minhash
        self._writer = ParquetPartWriter(path, STAGED_SCHEMA)
        self._buffer: list[dict[str, Any]] = []
        self._keys: list[KeyRecord] = []
        self.no_shingles = 0

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= STAGE_BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        texts = [row["text"] for row in rows]
        if self._minhash is not None:
            keys, has_shingles = text_band_keys(texts, self._minhash)
        first = self._writer.rows
        staged = []
        for i, row in enumerate(rows):
            digest = text_hash(row["text"])
            bands = b""
            if self._minhash is not None:
                if has_shingles[i]:
                    bands = keys[i].astype("<i8").tobytes()
                else:
                    self.no_shingles += 1
            staged.append({**row, "text_hash": digest, "band_keys": bands})
            self._keys.append(
                (
                    row["doc_id"],
                    make_ref(self._part, first + i),
                    _micros(row["fetch_time"]),
                    int(row["warc_offset"]),
                    bytes.fromhex(digest),
                    len(row["text"]),
                    bands,
                )
            )
        self._writer.write(staged)

    def finish(self) -> list[KeyRecord]:
        self._flush()
        self._writer.close()
        keys, self._keys = self._keys, []
        return keys

    def abort(self) -> None:
        self._writer.abort()

    @property
    def rows(self) -> int:
        return self._writer.rows + len(self._buffer)


def stage_rows(
    path: str,
    part: int,
    rows: Iterator[Any],
    minhash: MinHashConfig | None,
    on_other: Callable[[Any], None] | None = None,
) -> tuple[list[KeyRecord], int]:
    """Stage the dict rows of `rows` (other items go to `on_other`); (key records, pages
    without shingles). The part is removed again if anything fails."""
    stager = PartStager(path, part, minhash)
    try:
        for item in rows:
            if isinstance(item, dict):
                stager.add(item)
            elif on_other is not None:
                on_other(item)
        keys = stager.finish()
    except BaseException:
        stager.abort()
        raise
    return keys, stager.no_shingles


def iter_part(path: str, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file on any Beam file system, a row group's batch at a time."""
    with FileSystems.open(path) as fh:
        parquet = pq.ParquetFile(fh)
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
            yield from batch.to_pylist()
