"""Beam transforms of `mathcorpus shards`: read, filter code, dedup, tokenize, write shards.

    files -> ReadDocuments -> [FilterCode -> KeepOneCopy] -> TokenizeDocuments
          -> AssignShard (hash of doc_id into N buckets) -> GroupByKey -> WriteShards

N is `--num-shards`, or ceil(total tokens / `--shard-tokens`) computed in the run; rows are
sorted by doc_id within a shard, so a rerun writes byte-identical shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import (
    DEAD_LETTER,
    DeadLetter,
)
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.core.stage_run import CountPassThrough
from pipeline.shards.code_filters import (
    CodeFilterConfig,
    code_drop_reason,
    content_hash,
    extension_of,
    language_for,
)
from pipeline.shards.config import (
    ShardsConfig,
)
from pipeline.shards.inputs import (
    InputFile,
)
from pipeline.shards.text_sources import (
    BadRecord,
    SourceDocument,
    iter_file_documents,
    tree_document,
)
from tokenizer.loading import (
    TokenizerInfo,
    TokenizerLoadError,
    fingerprint,
    read_tokenizer_json,
    tokenizer_from_json,
)
from tokenizer.manifest import ShardEntry
from tokenizer.shard_format import (
    ShardMeta,
    TokenizedDoc,
    shard_file_name,
    write_shard,
)

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
