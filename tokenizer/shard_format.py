"""The shard format: tokenized documents in Parquet (documented in FORMAT.md, "Shards").

One row per document sorted by `doc_id`, token ids as uint16 or uint32, zstd, row groups of about
`row_group_tokens` tokens; the same documents give byte-identical files (docs/tokenizer.md). No
Beam and no torch: the pipeline writes shards with this module, the trainer reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tokenizer import storage

SHARD_FORMAT_VERSION = 1
# Shards are named `shard-SSSSS-of-NNNNN.parquet` directly in the run folder.
SHARD_FILE_PREFIX = "shard"
DOMAINS = ("math", "code", "text")
TOKEN_DTYPES = {"uint16": pa.uint16(), "uint32": pa.uint32()}
# About 1M tokens (2 MiB raw at uint16) per row group: small enough to stream, large enough for
# zstd to find repeats.
DEFAULT_ROW_GROUP_TOKENS = 1 << 20
# zstd level 6. Measured on real page text + stdlib code, vocab 32k, one row group (bytes per
# token): level 1 1.48, 3 1.39, 6 1.31, 9 1.29, 12 1.28. Level 6 still writes ~16M tokens/s per
# core, >10x faster than tokenizing, so the smaller files cost little time.
ZSTD_LEVEL = 6
# Dictionary encoding only pays off for the low-cardinality string columns; on token ids it
# would only add a dictionary page per row group.
DICTIONARY_COLUMNS = ["source", "domain", "host", "language"]
LINEAGE_COLUMNS = ("url", "host", "path", "language")

# Parquet key-value metadata keys (values are strings).
META_FORMAT = "mathcorpus.format"
META_FORMAT_VERSION = "mathcorpus.format_version"
META_FINGERPRINT = "mathcorpus.tokenizer_fingerprint"
META_VOCAB_SIZE = "mathcorpus.vocab_size"
META_TOKEN_DTYPE = "mathcorpus.token_dtype"
META_SOURCE = "mathcorpus.source"
META_DOMAIN = "mathcorpus.domain"


class ShardFormatError(ValueError):
    """A file is not a readable shard of this format."""


def shard_file_name(index: int, count: int) -> str:
    return f"{SHARD_FILE_PREFIX}-{index:05d}-of-{count:05d}.parquet"


def shard_schema(token_dtype: str, metadata: dict[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of a shard whose token ids are `token_dtype` (`uint16` or `uint32`)."""
    if token_dtype not in TOKEN_DTYPES:
        raise ValueError(f"token_dtype must be one of {sorted(TOKEN_DTYPES)}, got {token_dtype!r}")
    fields = [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field(
            "tokens",
            pa.list_(pa.field("item", TOKEN_DTYPES[token_dtype], nullable=False)),
            nullable=False,
        ),
        # Lineage: null where the source has no such thing (a code file has no URL).
        pa.field("url", pa.string()),
        pa.field("host", pa.string()),
        pa.field("path", pa.string()),
        pa.field("language", pa.string()),
    ]
    meta = {k.encode(): v.encode() for k, v in (metadata or {}).items()}
    return pa.schema(fields, metadata=meta or None)


@dataclass(frozen=True, slots=True)
class TokenizedDoc:
    """One document after tokenization: the unit a shard stores as a row."""

    doc_id: str
    """Stable id of the document (16 hex chars for web pages and hashed ids)."""
    tokens: np.ndarray
    """Token ids, 1-D, of the shard's dtype; no bos/eos."""
    url: str | None = None
    """Normalised URL (web sources)."""
    host: str | None = None
    """Host of the URL (the pool's `domain` column)."""
    path: str | None = None
    """File path (code: relative to the tree root, or the dataset's path field)."""
    language: str | None = None
    """Natural language (web: lid.176 code) or programming language (code)."""

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])


def sort_key(doc: TokenizedDoc) -> tuple[str, str, str, bytes]:
    """Row order within a shard: by doc_id; ties (rare: same id from a dataset's id field) by
    path, URL and tokens, so the order never depends on the order documents arrived in."""
    return (doc.doc_id, doc.path or "", doc.url or "", doc.tokens.tobytes())


@dataclass(frozen=True)
class ShardMeta:
    """What every row of a shard shares, also stored in the Parquet key-value metadata."""

    source: str
    """Source name (e.g. `openwebmath`, `algebraic_stack`, `stdlib`)."""
    domain: str
    """`math`, `code` or `text`."""
    tokenizer_fingerprint: str
    """sha256 of the canonical tokenizer JSON."""
    vocab_size: int
    """Number of token ids."""
    token_dtype: str
    """`uint16` or `uint32`."""

    def to_metadata(self) -> dict[str, str]:
        return {
            META_FORMAT: "shard",
            META_FORMAT_VERSION: str(SHARD_FORMAT_VERSION),
            META_FINGERPRINT: self.tokenizer_fingerprint,
            META_VOCAB_SIZE: str(self.vocab_size),
            META_TOKEN_DTYPE: self.token_dtype,
            META_SOURCE: self.source,
            META_DOMAIN: self.domain,
        }

    @classmethod
    def from_metadata(cls, meta: dict[bytes, bytes] | None, origin: str) -> ShardMeta:
        values = {k.decode(): v.decode() for k, v in (meta or {}).items()}
        if values.get(META_FORMAT) != "shard":
            raise ShardFormatError(f"{origin}: not a mathcorpus shard (no {META_FORMAT}=shard)")
        version = values.get(META_FORMAT_VERSION, "")
        if version != str(SHARD_FORMAT_VERSION):
            raise ShardFormatError(
                f"{origin}: shard format version {version!r}, this reader reads "
                f"{SHARD_FORMAT_VERSION}"
            )
        return cls(
            source=values[META_SOURCE],
            domain=values[META_DOMAIN],
            tokenizer_fingerprint=values[META_FINGERPRINT],
            vocab_size=int(values[META_VOCAB_SIZE]),
            token_dtype=values[META_TOKEN_DTYPE],
        )


@dataclass(frozen=True)
class ShardStats:
    """What the writer measured: the manifest's numbers for one shard."""

    rows: int
    tokens: int
    bytes: int
    sha256: str


class _HashingSink:
    """A write-only file object that hashes and counts what passes through it (pyarrow writes
    through it, so the checksum costs no second read)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        # The owner of `raw` closes it; pyarrow closing its wrapper must not.
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def _row_groups(docs: Sequence[TokenizedDoc], row_group_tokens: int) -> Iterator[range]:
    """Consecutive index ranges of about `row_group_tokens` tokens each (at least one row)."""
    start = 0
    tokens = 0
    for i, doc in enumerate(docs):
        tokens += doc.n_tokens
        if tokens >= row_group_tokens:
            yield range(start, i + 1)
            start, tokens = i + 1, 0
    if start < len(docs) or not docs:
        yield range(start, len(docs))


def _table(docs: Sequence[TokenizedDoc], meta: ShardMeta, schema: pa.Schema) -> pa.Table:
    dtype = np.dtype(meta.token_dtype)
    lengths = np.fromiter((d.n_tokens for d in docs), dtype=np.int64, count=len(docs))
    offsets = np.zeros(len(docs) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = (
        np.concatenate([d.tokens.astype(dtype, copy=False) for d in docs])
        if docs
        else np.zeros(0, dtype=dtype)
    )
    list_type = schema.field("tokens").type
    tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), type=list_type)
    n = len(docs)
    columns: dict[str, pa.Array] = {
        "doc_id": pa.array([d.doc_id for d in docs], pa.string()),
        "source": pa.array([meta.source] * n, pa.string()),
        "domain": pa.array([meta.domain] * n, pa.string()),
        "n_tokens": pa.array(lengths.astype(np.int32)),
        "tokens": tokens,
        "url": pa.array([d.url for d in docs], pa.string()),
        "host": pa.array([d.host for d in docs], pa.string()),
        "path": pa.array([d.path for d in docs], pa.string()),
        "language": pa.array([d.language for d in docs], pa.string()),
    }
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def write_shard(
    sink: BinaryIO,
    docs: Sequence[TokenizedDoc],
    meta: ShardMeta,
    row_group_tokens: int = DEFAULT_ROW_GROUP_TOKENS,
) -> ShardStats:
    """Write `docs` (any order; sorted here) as one shard into the binary writer `sink`.

    Returns rows, tokens, bytes and sha256 of exactly the bytes written. The caller opens and
    closes `sink` (a local file, Beam's FileSystems.create, pyarrow's output stream).
    """
    if meta.domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {meta.domain!r}")
    limit = np.iinfo(np.dtype(meta.token_dtype)).max
    if meta.vocab_size - 1 > limit:
        raise ValueError(f"vocab_size {meta.vocab_size} does not fit {meta.token_dtype}")
    ordered = sorted(docs, key=sort_key)
    schema = shard_schema(meta.token_dtype, meta.to_metadata())
    hashing = _HashingSink(sink)
    with pq.ParquetWriter(
        hashing,
        schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=["doc_id", "n_tokens"],
    ) as writer:
        for group in _row_groups(ordered, row_group_tokens):
            part = [ordered[i] for i in group]
            writer.write_table(_table(part, meta, schema), row_group_size=max(1, len(part)))
    hashing.flush()
    return ShardStats(
        rows=len(ordered),
        tokens=sum(d.n_tokens for d in ordered),
        bytes=hashing.size,
        sha256=hashing.sha256,
    )


@dataclass(frozen=True)
class TokenBatch:
    """The token ids of one row group, as flat arrays (no per-document Python objects).

    Document i's tokens are `values[offsets[i]:offsets[i + 1]]`.
    """

    doc_ids: list[str]
    offsets: np.ndarray
    """int64, len(doc_ids) + 1."""
    values: np.ndarray
    """uint16 or uint32, all the row group's tokens."""

    def __len__(self) -> int:
        return len(self.doc_ids)

    def tokens(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]


def _list_arrays(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = array.offsets.to_numpy().astype(np.int64)
    # A sliced array's offsets do not start at 0: rebase them onto the flattened values.
    values = array.flatten().to_numpy(zero_copy_only=False)
    return offsets - offsets[0], values


class ShardReader:
    """Reads a shard: its metadata, and its tokens one row group at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = storage.open_input(path)
        try:
            self._file = pq.ParquetFile(self._fh)
        except (pa.ArrowInvalid, OSError) as exc:
            self._fh.close()
            raise ShardFormatError(f"{path}: not a readable Parquet file: {exc}") from exc
        self.meta = ShardMeta.from_metadata(self._file.schema_arrow.metadata, path)

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    @property
    def num_rows(self) -> int:
        return int(self._file.metadata.num_rows)

    @property
    def num_row_groups(self) -> int:
        return int(self._file.num_row_groups)

    def read_row_group_columns(self, index: int, columns: list[str]) -> pa.Table:
        """Some columns of one row group as an Arrow table."""
        return self._file.read_row_group(index, columns=columns)

    def read_row_group(self, index: int) -> TokenBatch:
        table = self.read_row_group_columns(index, ["doc_id", "tokens"])
        offsets, values = _list_arrays(table.column("tokens"))
        return TokenBatch(table.column("doc_id").to_pylist(), offsets, values)

    def iter_batches(self) -> Iterator[TokenBatch]:
        for i in range(self.num_row_groups):
            yield self.read_row_group(i)

    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        return self._file.read(columns=columns)


@dataclass(frozen=True)
class ShardCount:
    """Counts re-computed from a shard's Parquet data (what `manifest verify` compares)."""

    meta: ShardMeta
    rows: int
    tokens: int
    """Sum of the token lists' lengths."""
    n_tokens_mismatches: int
    """Rows whose `n_tokens` differs from the length of their token list."""
    max_token_id: int
    """Largest token id (-1 for an empty shard)."""


def count_shard(path: str) -> ShardCount:
    """Re-count rows and tokens from the data itself (every row group is read and decoded)."""
    rows = tokens = mismatches = 0
    max_id = -1
    with ShardReader(path) as reader:
        for i in range(reader.num_row_groups):
            try:
                table = reader.read_row_group_columns(i, ["n_tokens", "tokens"])
            except (pa.ArrowInvalid, OSError) as exc:
                raise ShardFormatError(f"{path}: row group {i} is unreadable: {exc}") from exc
            lengths = pc.list_value_length(table.column("tokens"))
            n_tokens = table.column("n_tokens")
            rows += table.num_rows
            tokens += int(pc.sum(lengths).as_py() or 0)
            unequal = pc.not_equal(lengths, pc.cast(n_tokens, pa.int32()))
            mismatches += int(pc.sum(unequal).as_py() or 0)
            flat = pc.list_flatten(table.column("tokens"))
            if len(flat):
                max_id = max(max_id, int(pc.max(flat).as_py()))
        return ShardCount(reader.meta, rows, tokens, mismatches, max_id)


def read_rows(path: str) -> list[dict[str, Any]]:
    """Every row of a shard as a dict (small shards only: tests and inspection)."""
    with ShardReader(path) as reader:
        return reader.read_table().to_pylist()
