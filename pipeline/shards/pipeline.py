"""`mathcorpus shards`: documents -> tokenized Parquet shards + manifest.json.

The mined corpus (a pool-format folder):

    mathcorpus shards --input runs/corpus --source openwebmath --domain math \
        --tokenizer runs/tokenizer --output runs/shards/math

A JSONL or Parquet dataset with another text field (arXiv, AlgebraicStack, general web):

    mathcorpus shards --input 'arxiv/*.jsonl.gz' --text-field text --id-field id \
        --source arxiv --domain math --tokenizer runs/tokenizer --output runs/shards/arxiv

Code: a folder of source files, or a code dataset with content/path/language fields:

    mathcorpus shards --input /usr/lib/python3.11 --exclude '*__pycache__*' 'site-packages/*' \
        --source stdlib --domain code --tokenizer runs/tokenizer --output runs/shards/code

Dataflow (see deploy/):

    mathcorpus shards --input gs://bucket/corpus --source openwebmath --domain math \
        --tokenizer gs://bucket/tokenizer.json --output gs://bucket/shards/math \
        --runner=DataflowRunner --project=PROJECT --region=REGION \
        --temp_location=gs://bucket/tmp --requirements_file=deploy/dataflow/requirements.txt

    files -> ReadDocuments -> [FilterCode -> DedupByContent] -> TokenizeDocuments
          -> AssignShard (hash of doc_id into N buckets) -> GroupByKey -> WriteShards
          -> shard index -> manifest.json (written after stats.json: the run's last file)

N is `--num-shards`, or ceil(total tokens / `--shard-tokens`) computed in the run; rows are
sorted by doc_id within a shard, so a rerun writes byte-identical shards. Everything after the
app options is passed to Beam as PipelineOptions; with no --runner the in-process FnApiRunner is
used (plain DirectRunner would try to download Prism).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.core.config_errors import ConfigError, raise_if_problems
from pipeline.core.counters import StageCounter, counters_from_beam_result, stats_document
from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DEAD_LETTER_GLOB,
    DeadLetter,
    WriteDeadLetters,
)
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.core.files import match_with_sizes
from pipeline.core.run_output import (
    STATS_FILE,
    OutputConflict,
    RunOutput,
    read_json,
    write_json_atomic,
)
from pipeline.core.stage_cli import CountPassThrough, format_funnel, with_default_runner
from pipeline.shards.code_filters import (
    CodeFilterConfig,
    code_drop_reason,
    content_hash,
    extension_of,
    language_for,
)
from pipeline.shards.text_sources import (
    FORMATS,
    BadRecord,
    SourceDocument,
    SourceFields,
    format_for_file,
    iter_file_documents,
    tree_document,
)
from tokenizer.loading import (
    TokenizerInfo,
    TokenizerLoadError,
    fingerprint,
    read_tokenizer_json,
    tokenizer_from_json,
    tokenizer_info,
)
from tokenizer.manifest import MANIFEST_FILE, ShardEntry, build_manifest
from tokenizer.shard_format import (
    DEFAULT_ROW_GROUP_TOKENS,
    DOMAINS,
    SHARD_FILE_PREFIX,
    SHARD_FORMAT_VERSION,
    ShardMeta,
    TokenizedDoc,
    shard_file_name,
    write_shard,
)

LOG = logging.getLogger("mathcorpus.shards")
# Written by the workers into staging, read and removed by the driver before the commit.
SHARD_INDEX_PREFIX = "_shard_index"
TEXT_STAGES = ("files", "read", "tokenize", "write")
CODE_STAGES = ("files", "read", "code_filter", "dedup", "tokenize", "write")
# Folders no code tree should contribute (fnmatch patterns on the path relative to the root;
# `*` crosses folders).
DEFAULT_EXCLUDES = ("*__pycache__*", ".git/*", "*/.git/*", "*.egg-info/*", "node_modules/*")
# ~50M tokens per shard: ~75 MB on disk at uint16, and a shard's token arrays (~100 MiB) fit
# a worker's memory while it is sorted and written.
DEFAULT_SHARD_TOKENS = 50_000_000
# Characters handed to encode_batch at once: ~250k tokens, large enough that per-call overhead
# vanishes, small enough to bound a worker's memory.
DEFAULT_BATCH_CHARS = 1_000_000


def _valid_name(name: str) -> bool:
    return bool(name) and all(ch.isalnum() or ch in "._-" for ch in name)


@dataclass(frozen=True)
class ShardsConfig:
    """Everything that decides what `mathcorpus shards` writes (Beam options excluded)."""

    output: str
    """Output folder (local, gs://, s3://): shards, manifest.json, stats.json, dead_letter/."""
    inputs: tuple[str, ...]
    """Input folders, files or globs (local, gs://, s3://)."""
    source: str
    """Source name recorded on every row and in the manifest (e.g. `openwebmath`, `arxiv`)."""
    domain: str
    """`math`, `code` or `text`: the mixture bucket the source belongs to."""
    tokenizer: str
    """tokenizer.json (or a folder holding one)."""
    input_format: str = "auto"
    """`auto`, `pool`, `jsonl`, `parquet` or `tree`. auto: a folder with pool-*.parquet is a
    pool, other folders are trees, files by suffix (.jsonl[.gz], .json[.gz], .parquet)."""
    text_field: str | None = None
    """Field holding the text (JSONL/Parquet); None: `content` for code, else `text`."""
    id_field: str | None = None
    """Field holding a stable document id; None: the content id (blake2b-64 of the text)."""
    url_field: str | None = "url"
    """Field holding a URL, kept as lineage when present."""
    path_field: str | None = None
    """Field holding a file path; None: `path` for code, else not read."""
    language_field: str | None = None
    """Field holding a language name; None: `language` for code, else not read."""
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    """Tree files whose relative path matches one of these fnmatch patterns are not inputs."""
    code_filter: CodeFilterConfig = field(default_factory=CodeFilterConfig)
    """Code-only filters (languages, sizes, line lengths, generated files)."""
    dedup: bool = True
    """Code only: keep one file per exact content (sha256)."""
    num_shards: int = 0
    """Number of shards; 0: ceil(total tokens / shard_tokens), at least 1."""
    shard_tokens: int = DEFAULT_SHARD_TOKENS
    """Target tokens per shard when num_shards is 0."""
    row_group_tokens: int = DEFAULT_ROW_GROUP_TOKENS
    """Target tokens per Parquet row group."""
    batch_chars: int = DEFAULT_BATCH_CHARS
    """Characters per encode_batch call."""
    bos_token: str | None = None
    """Name of the bos token recorded in the manifest; None: found by the usual names."""
    eos_token: str | None = None
    """Name of the eos token; None: found by the usual names."""
    pad_token: str | None = None
    """Name of the pad token; None: found by the usual names."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if not self.inputs:
            problems.append("inputs: give --input PATH [...]")
        if not _valid_name(self.source):
            problems.append(
                f"source: letters, digits, '.', '_' or '-' only (e.g. openwebmath), "
                f"got {self.source!r}"
            )
        if self.domain not in DOMAINS:
            problems.append(f"domain: one of {DOMAINS}, got {self.domain!r}")
        if not self.tokenizer:
            problems.append("tokenizer: give --tokenizer PATH (tokenizer.json or its folder)")
        if self.input_format not in ("auto", *FORMATS):
            problems.append(f"input_format: one of {('auto', *FORMATS)}, got {self.input_format!r}")
        if self.input_format == "tree" and self.domain != "code":
            problems.append("input_format tree (a folder of source files) needs --domain code")
        if self.num_shards < 0:
            problems.append(f"num_shards: must be >= 0, got {self.num_shards}")
        if self.shard_tokens < 1:
            problems.append(f"shard_tokens: must be >= 1, got {self.shard_tokens}")
        # Arrow list offsets are int32: a row group holds fewer than 2**31 tokens.
        if not 1 <= self.row_group_tokens < 2**31:
            problems.append(f"row_group_tokens: must be in [1, 2**31), got {self.row_group_tokens}")
        if self.batch_chars < 1:
            problems.append(f"batch_chars: must be >= 1, got {self.batch_chars}")
        raise_if_problems("shards config", problems)

    @property
    def is_code(self) -> bool:
        return self.domain == "code"

    @property
    def stages(self) -> tuple[str, ...]:
        return CODE_STAGES if self.is_code else TEXT_STAGES

    def fields(self) -> SourceFields:
        """Field names with the code/text defaults resolved."""
        return SourceFields(
            text_field=self.text_field or ("content" if self.is_code else "text"),
            id_field=self.id_field,
            url_field=self.url_field,
            path_field=self.path_field or ("path" if self.is_code else None),
            language_field=self.language_field or ("language" if self.is_code else None),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["exclude"] = list(self.exclude)
        data["code_filter"] = self.code_filter.to_json()
        data["fields"] = self.fields().to_json()
        return data

    def output_fingerprint_fields(self, tokenizer_fingerprint: str) -> dict[str, Any]:
        """The fields that change the shards (not where they go, nor the tokenizer's path:
        its content, by fingerprint)."""
        data = self.to_json()
        for key in ("output", "overwrite", "tokenizer", "batch_chars"):
            data.pop(key)
        if not self.is_code:
            data.pop("code_filter")
            data.pop("dedup")
        data["tokenizer_fingerprint"] = tokenizer_fingerprint
        return data


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


# --- DoFns ---


class ReadDocuments(beam.DoFn):
    """InputFile -> SourceDocument (main) and DeadLetter (tagged).

    Stage `files`: one per input file (kept when opened; tree files can be dropped by language
    or size before they are read). Stage `read`: one per record (a tree file is one record).
    """

    def __init__(self, config: ShardsConfig) -> None:
        self._config = config

    def setup(self) -> None:
        self._files = StageCounter("files")
        self._read = StageCounter("read")
        self._fields = self._config.fields()
        self._extensions = self._config.code_filter.extension_map()
        self._languages = frozenset(self._config.code_filter.languages)

    def process(self, item: InputFile) -> Iterator[Any]:
        self._files.entered()
        if item.fmt == "tree":
            yield from self._read_tree_file(item)
            return
        try:
            fh = FileSystems.open(item.path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # an unopenable file is dead-lettered; the next goes on
            self._files.dead_lettered("open_failed")
            yield _dead(DeadLetter("files", "open_failed", repr(exc), item.path))
            return
        emitted = 0
        with fh:
            try:
                for record in iter_file_documents(fh, item.path, item.fmt, self._fields):
                    if isinstance(record, BadRecord) and record.row < 0 and emitted == 0:
                        self._files.dead_lettered(record.reason)
                        yield _dead(DeadLetter("files", record.reason, record.error, item.path))
                        return
                    emitted += 1
                    yield from self._record(record)
            except Exception as exc:  # a fault inside the file ends the file, not the run:
                # the records before it are kept, the rest is one read dead letter.
                error = f"{type(exc).__name__}: {exc}"
                yield from self._record(BadRecord("unreadable_file", error, item.path, emitted))
        self._files.kept()

    def _record(self, record: SourceDocument | BadRecord) -> Iterator[Any]:
        self._read.entered()
        if isinstance(record, BadRecord):
            if record.reason == "unreadable_file":
                self._files.note("ended_by_fault")
            self._read.dead_lettered(record.reason)
            yield _dead(
                DeadLetter("read", record.reason, record.error, record.input_file, record.row)
            )
            return
        if not self._config.is_code and not record.text.strip():
            self._read.dropped("empty_text")
            return
        self._read.kept()
        yield record

    def _read_tree_file(self, item: InputFile) -> Iterator[Any]:
        language = self._extensions.get(extension_of(item.relative), "")
        if language not in self._languages:
            self._files.dropped("language_not_allowed")
            return
        if item.size > self._config.code_filter.max_bytes:
            self._files.dropped("too_large")
            return
        try:
            with FileSystems.open(item.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
                data = fh.read()
        except Exception as exc:  # an unreadable file is dead-lettered; the next goes on
            self._files.dead_lettered("read_error")
            yield _dead(
                DeadLetter(
                    "files", "read_error", repr(exc), item.path, extra={"path": item.relative}
                )
            )
            return
        self._files.kept()
        self._read.entered()
        record = tree_document(data, item.path, item.relative, language)
        if isinstance(record, BadRecord):
            self._read.dead_lettered(record.reason)
            yield _dead(
                DeadLetter(
                    "read", record.reason, record.error, item.path, extra={"path": item.relative}
                )
            )
            return
        self._read.kept()
        yield record


class FilterCode(beam.DoFn):
    """SourceDocument -> SourceDocument with its language set; code that is not worth training
    on is dropped with its reason (pipeline/shards/code_filters.py)."""

    def __init__(self, config: CodeFilterConfig) -> None:
        self._config = config

    def setup(self) -> None:
        self._counts = StageCounter("code_filter")
        self._extensions = self._config.extension_map()
        self._languages = frozenset(self._config.languages)

    def process(self, doc: SourceDocument) -> Iterator[SourceDocument]:
        self._counts.entered()
        language = language_for(doc.path, doc.language, self._extensions)
        if language not in self._languages:
            self._counts.dropped("language_not_allowed")
            return
        reason = code_drop_reason(doc.text, doc.path, self._config)
        if reason is not None:
            self._counts.dropped(reason)
            return
        self._counts.kept()
        yield dataclasses.replace(doc, language=language)


def _copy_order(doc: SourceDocument) -> tuple[str, str, int, str]:
    return (doc.path or "", doc.input_file, doc.row, doc.doc_id)


class KeepOneCopy(beam.DoFn):
    """(content hash, copies) -> the copy with the smallest path; the rest are dropped as
    `duplicate_content` (the choice does not depend on arrival order)."""

    def setup(self) -> None:
        self._counts = StageCounter("dedup")

    def process(self, element: tuple[str, Iterable[SourceDocument]]) -> Iterator[SourceDocument]:
        _, copies = element
        docs = list(copies)
        self._counts.entered(len(docs))
        self._counts.kept()
        if len(docs) > 1:
            self._counts.dropped("duplicate_content", len(docs) - 1)
        yield min(docs, key=_copy_order)


def _global(value: Any) -> WindowedValue:
    return WindowedValue(value, GlobalWindow().max_timestamp(), [GlobalWindow()])


class TokenizeDocuments(beam.DoFn):
    """SourceDocument -> TokenizedDoc, in batches of about `batch_chars` characters through
    `encode_batch_fast` (no offsets computed). The tokenizer is loaded once per worker in
    setup and checked against the driver's fingerprint."""

    def __init__(self, tokenizer_path: str, info: TokenizerInfo, batch_chars: int) -> None:
        self._path = tokenizer_path
        self._info = info
        self._batch_chars = batch_chars

    def setup(self) -> None:
        self._tokenizer = tokenizer_from_json(read_tokenizer_json(self._path), self._path)
        found = fingerprint(self._tokenizer)
        if found != self._info.fingerprint:
            # The file changed after the driver read it: the shards would not match the
            # manifest. Fail the run rather than mix tokenizers.
            raise TokenizerLoadError(
                f"{self._path} changed during the run (fingerprint {found} != "
                f"{self._info.fingerprint})"
            )
        self._dtype = np.dtype(self._info.token_dtype)
        self._counts = StageCounter("tokenize")

    def start_bundle(self) -> None:
        self._buffer: list[SourceDocument] = []
        self._chars = 0

    def process(self, doc: SourceDocument) -> Iterator[Any]:
        self._buffer.append(doc)
        self._chars += len(doc.text)
        if self._chars >= self._batch_chars:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        for output in self._flush():
            if isinstance(output, pvalue.TaggedOutput):
                yield pvalue.TaggedOutput(output.tag, _global(output.value))
            else:
                yield _global(output)

    def _tokenized(self, doc: SourceDocument, ids: list[int]) -> TokenizedDoc:
        return TokenizedDoc(
            doc_id=doc.doc_id,
            tokens=np.asarray(ids, dtype=self._dtype),
            url=doc.url,
            host=doc.host,
            path=doc.path,
            language=doc.language,
        )

    def _flush(self) -> Iterator[Any]:
        docs, self._buffer, self._chars = self._buffer, [], 0
        if not docs:
            return
        self._counts.entered(len(docs))
        try:
            encodings = self._tokenizer.encode_batch_fast(
                [d.text for d in docs], add_special_tokens=False
            )
        except Exception:  # one bad document fails the batch: retry one by one to find it
            encodings = None
        for i, doc in enumerate(docs):
            try:
                ids = (
                    encodings[i].ids
                    if encodings is not None
                    else self._tokenizer.encode(doc.text, add_special_tokens=False).ids
                )
            except Exception as exc:  # a record error dead-letters the record, never the run
                self._counts.dead_lettered("encode_error")
                yield _dead(
                    DeadLetter(
                        stage="tokenize",
                        reason="encode_error",
                        error=repr(exc),
                        source=doc.input_file,
                        offset=doc.row,
                        doc_id=doc.doc_id,
                        extra={"path": doc.path} if doc.path else {},
                    )
                )
                continue
            if not ids:
                self._counts.dropped("no_tokens")
                continue
            self._counts.kept()
            yield self._tokenized(doc, ids)


def shard_index(doc_id: str, num_shards: int) -> int:
    """The shard of a document: blake2b-64 of its id modulo the number of shards (stable across
    runs and machines, unlike Python's salted hash())."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def resolve_num_shards(total_tokens: int, fixed: int, shard_tokens: int) -> int:
    """`fixed` when set, else enough shards of `shard_tokens` for `total_tokens` (>= 1)."""
    if fixed > 0:
        return fixed
    return max(1, math.ceil(total_tokens / shard_tokens))


class WriteShards(beam.DoFn):
    """(shard index, documents) -> one shard file in staging; emits its manifest entry.

    Documents arrive as (index, doc) plus one (index, None) marker per shard, so a shard that
    got no document is still written (empty) and the set of files is always 0..N-1.
    """

    def __init__(self, staging: str, meta: ShardMeta, row_group_tokens: int) -> None:
        self._staging = staging
        self._meta = meta
        self._row_group_tokens = row_group_tokens

    def setup(self) -> None:
        self._counts = StageCounter("write")

    def process(
        self, element: tuple[int, Iterable[TokenizedDoc | None]], num_shards: int
    ) -> Iterator[dict[str, Any]]:
        index, items = element
        docs = [d for d in items if d is not None]
        self._counts.entered(len(docs))
        name = shard_file_name(index, num_shards)
        path = FileSystems.join(self._staging, name)
        with FileSystems.create(
            path,
            mime_type="application/octet-stream",
            compression_type=CompressionTypes.UNCOMPRESSED,
        ) as fh:
            stats = write_shard(fh, docs, self._meta, self._row_group_tokens)
        self._counts.kept(stats.rows)
        yield ShardEntry(
            path=name,
            rows=stats.rows,
            tokens=stats.tokens,
            bytes=stats.bytes,
            sha256=stats.sha256,
            source=self._meta.source,
            domain=self._meta.domain,
        ).to_json()


class BuildShards(beam.PTransform):
    """PCollection of InputFile -> {'entries': manifest entry dicts, 'dead_letter': ...}."""

    def __init__(self, config: ShardsConfig, info: TokenizerInfo, staging: str) -> None:
        super().__init__()
        self._config = config
        self._info = info
        self._staging = staging

    def expand(self, files: beam.PCollection) -> dict[str, beam.PCollection]:
        c = self._config
        read = (
            files
            # One file is the unit of reading: spread them over workers.
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadDocuments" >> beam.ParDo(ReadDocuments(c)).with_outputs(DEAD_LETTER, main="ok")
        )
        docs = read.ok
        if c.is_code:
            docs = docs | "FilterCode" >> beam.ParDo(FilterCode(c.code_filter))
            if c.dedup:
                docs = (
                    docs
                    | "KeyByContent" >> beam.Map(lambda d: (content_hash(d.text), d))
                    | "GroupByContent" >> beam.GroupByKey()
                    | "KeepOneCopy" >> beam.ParDo(KeepOneCopy())
                )
            else:
                docs = docs | "DedupOff" >> beam.ParDo(CountPassThrough("dedup"))
        tokenized = (
            docs
            # Spread documents again: a few large input files must not pin the tokenizing
            # to a few workers.
            | "SpreadDocuments" >> beam.Reshuffle()
            | "TokenizeDocuments"
            >> beam.ParDo(TokenizeDocuments(c.tokenizer, self._info, c.batch_chars)).with_outputs(
                DEAD_LETTER, main="ok"
            )
        )
        total = (
            tokenized.ok
            | "TokenCounts" >> beam.Map(lambda d: d.n_tokens)
            | "TotalTokens" >> beam.CombineGlobally(sum)
        )
        n_shards = total | "NumShards" >> beam.Map(resolve_num_shards, c.num_shards, c.shard_tokens)
        n_side = beam.pvalue.AsSingleton(n_shards)
        keyed = tokenized.ok | "AssignShard" >> beam.Map(
            lambda d, n: (shard_index(d.doc_id, n), d), n_side
        )
        markers = n_shards | "ShardMarkers" >> beam.FlatMap(lambda n: [(i, None) for i in range(n)])
        meta = ShardMeta(
            source=c.source,
            domain=c.domain,
            tokenizer_fingerprint=self._info.fingerprint,
            vocab_size=self._info.vocab_size,
            token_dtype=self._info.token_dtype,
        )
        entries = (
            (keyed, markers)
            | "WithMarkers" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards"
            >> beam.ParDo(WriteShards(self._staging, meta, c.row_group_tokens), n_side)
        )
        dead = (read[DEAD_LETTER], tokenized[DEAD_LETTER]) | "MergeDeadLetters" >> beam.Flatten()
        return {"entries": entries, DEAD_LETTER: dead}


# --- driver ---


def load_tokenizer_info(config: ShardsConfig) -> TokenizerInfo:
    try:
        tokenizer = tokenizer_from_json(read_tokenizer_json(config.tokenizer), config.tokenizer)
        return tokenizer_info(
            tokenizer, bos=config.bos_token, eos=config.eos_token, pad=config.pad_token
        )
    except TokenizerLoadError as exc:
        raise ConfigError("shards tokenizer", [f"tokenizer: {exc}"]) from exc


def shards_run_output(config: ShardsConfig, info: TokenizerInfo) -> RunOutput:
    return RunOutput(
        config.output,
        config.output_fingerprint_fields(info.fingerprint),
        owned_globs=(
            f"{SHARD_FILE_PREFIX}-*.parquet",
            DEAD_LETTER_GLOB,
            MANIFEST_FILE,
            f"{MANIFEST_FILE}.tmp",
        ),
    )


def _read_shard_index(staging: str) -> list[ShardEntry]:
    files = [p for p, _ in match_with_sizes(FileSystems.join(staging, f"{SHARD_INDEX_PREFIX}*"))]
    entries: list[ShardEntry] = []
    for path in files:
        with FileSystems.open(path) as fh:
            for line in fh.read().decode("utf-8").splitlines():
                if line.strip():
                    entries.append(ShardEntry.from_json(json.loads(line)))
    if files:
        FileSystems.delete(files)
    return entries


def build_pipeline(
    p: beam.Pipeline,
    files: list[InputFile],
    config: ShardsConfig,
    info: TokenizerInfo,
    staging: str,
) -> None:
    built = (
        p | "ListFiles" >> beam.Create(files) | "BuildShards" >> BuildShards(config, info, staging)
    )
    _ = (
        built["entries"]
        | "EntryJson" >> beam.Map(lambda e: json.dumps(e, sort_keys=True))
        | "WriteShardIndex"
        >> beam.io.WriteToText(
            FileSystems.join(staging, SHARD_INDEX_PREFIX), file_name_suffix=".jsonl"
        )
    )
    _ = built[DEAD_LETTER] | "WriteDeadLetters" >> WriteDeadLetters(staging)


def run_shards(config: ShardsConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run the shards pipeline; returns the stats document (also written as stats.json)."""
    options = PipelineOptions(with_default_runner(beam_args))
    FileSystems.set_options(options)
    info = load_tokenizer_info(config)
    output = shards_run_output(config, info)
    manifest_path = output.path(MANIFEST_FILE)
    if output.finished_with_same_config(config.overwrite) and FileSystems.exists(manifest_path):
        LOG.info("%s is already finished with this config; nothing to do", config.output)
        return read_json(output.path(STATS_FILE))
    files, excluded = list_inputs(config)
    output.begin()
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, files, config, info, output.staging)
    result = p.run()
    result.wait_until_finish()
    elapsed = time.monotonic() - started
    counters = counters_from_beam_result(result)
    entries = _read_shard_index(output.staging)
    manifest = build_manifest(info, entries, folder=config.output)
    totals = manifest.totals()
    if totals.rows != counters.get("write.kept", 0):
        raise RuntimeError(
            f"shard index lists {totals.rows} rows but the writers counted "
            f"{counters.get('write.kept', 0)}: the run is inconsistent, rerun it"
        )
    stats = stats_document(
        counters,
        config.stages,
        extra={
            "stage": "shards",
            "format_version": SHARD_FORMAT_VERSION,
            "source": config.source,
            "domain": config.domain,
            "tokenizer_fingerprint": info.fingerprint,
            "input_files": len(files),
            "excluded_files": excluded,
            "documents_written": totals.rows,
            "tokens_written": totals.tokens,
            "bytes_written": totals.bytes,
            "shards": totals.shards,
            "elapsed_s": round(elapsed, 3),
        },
    )
    output.commit({**config.to_json(), "tokenizer_fingerprint": info.fingerprint}, stats)
    # Last of all: consumers read manifest.json, so it appears only once every shard is in
    # place (temp file, then rename).
    write_json_atomic(manifest_path, manifest.to_json())
    return stats


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathcorpus shards",
        description="Documents (pool folder, JSONL/Parquet dataset, code tree) -> tokenized "
        "Parquet shards + manifest.json.",
        epilog="Any other --option is passed to Apache Beam (e.g. --runner, "
        "--direct_running_mode=multi_processing --direct_num_workers=2).",
    )
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH")
    parser.add_argument("--source", required=True, help="source name, e.g. openwebmath")
    parser.add_argument("--domain", required=True, choices=DOMAINS)
    parser.add_argument("--tokenizer", required=True, metavar="PATH")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--input-format", default="auto", choices=("auto", *FORMATS))
    parser.add_argument("--text-field", help="default: content for code, else text")
    parser.add_argument("--id-field", help="default: a content id (blake2b-64 of the text)")
    parser.add_argument("--url-field", default="url")
    parser.add_argument("--path-field", help="default: path for code")
    parser.add_argument("--language-field", help="default: language for code")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=list(DEFAULT_EXCLUDES),
        metavar="PATTERN",
        help="tree files to leave out (fnmatch on the path below the root, `*` crosses "
        "folders; replaces the default: %(default)s)",
    )
    defaults = CodeFilterConfig()
    parser.add_argument("--languages", nargs="+", metavar="LANG")
    parser.add_argument("--max-file-bytes", type=int, default=defaults.max_bytes)
    parser.add_argument("--max-line-length", type=int, default=defaults.max_line_length)
    parser.add_argument("--max-mean-line-length", type=float, default=defaults.max_mean_line_length)
    parser.add_argument("--min-alnum-fraction", type=float, default=defaults.min_alnum_fraction)
    parser.add_argument("--no-dedup", action="store_true", help="code: keep exact duplicates")
    parser.add_argument("--num-shards", type=int, default=0, help="0: from --shard-tokens")
    parser.add_argument("--shard-tokens", type=int, default=DEFAULT_SHARD_TOKENS)
    parser.add_argument("--row-group-tokens", type=int, default=DEFAULT_ROW_GROUP_TOKENS)
    parser.add_argument("--batch-chars", type=int, default=DEFAULT_BATCH_CHARS)
    parser.add_argument("--bos-token")
    parser.add_argument("--eos-token")
    parser.add_argument("--pad-token")
    parser.add_argument("--overwrite", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> ShardsConfig:
    defaults = CodeFilterConfig()
    code_filter = CodeFilterConfig(
        languages=tuple(args.languages) if args.languages else defaults.languages,
        max_bytes=args.max_file_bytes,
        max_line_length=args.max_line_length,
        max_mean_line_length=args.max_mean_line_length,
        min_alnum_fraction=args.min_alnum_fraction,
    )
    return ShardsConfig(
        output=args.output,
        inputs=tuple(args.input),
        source=args.source,
        domain=args.domain,
        tokenizer=args.tokenizer,
        input_format=args.input_format,
        text_field=args.text_field,
        id_field=args.id_field,
        url_field=args.url_field or None,
        path_field=args.path_field,
        language_field=args.language_field,
        exclude=tuple(args.exclude),
        code_filter=code_filter,
        dedup=not args.no_dedup,
        num_shards=args.num_shards,
        shard_tokens=args.shard_tokens,
        row_group_tokens=args.row_group_tokens,
        batch_chars=args.batch_chars,
        bos_token=args.bos_token,
        eos_token=args.eos_token,
        pad_token=args.pad_token,
        overwrite=args.overwrite,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_arg_parser().parse_known_args(argv)
    try:
        config = config_from_args(args)
        stats = run_shards(config, beam_args)
    except (ConfigError, OutputConflict) as exc:
        print(f"mathcorpus shards: {exc}", file=sys.stderr)
        return 2
    print(format_funnel(stats))
    print(
        f"{stats['shards']} shard(s), {stats['documents_written']} documents, "
        f"{stats['tokens_written']} tokens written to {config.output} (manifest.json)"
    )
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Beam-example style entry point."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
