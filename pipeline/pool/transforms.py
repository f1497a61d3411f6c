"""Beam transforms of the pool pipeline: one map per input file, then keys only.

    (part, file spec) -> StageWarcFile: read, normalise URLs, decode, extract, identify the
                         language, hash, band keys -> staged part + key records (map only)
    key records -> DecideDuplicates -> decisions; staged part + decisions -> WriteParts
                         (pipeline/dedup/transforms.py)

Pages never cross a shuffle: the worker that reads a file writes its rows to the file's staged
Parquet part. Each step counts its stage's outcomes (pipeline/core/counters.py) and sends
failures to the `dead_letter` tagged output as `DeadLetter` records.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.dedup.parts import PartStager, part_path
from pipeline.extract.config import ExtractSettings
from pipeline.extract.transforms import LanguageTagger, PageExtractor
from pipeline.pool.config import PoolConfig
from pipeline.pool.records import Dropped, HtmlResponse, NormalizedResponse

# The stages of reading and extraction, in pipeline order (stats.json lists them in this
# order, then the dedup stages: url_dedup, exact_dedup, near_dedup).
POOL_STAGES = ("files", "read", "url", "decode", "extract", "language")
PARTS = "parts"


def default_fetch_cache(config: PoolConfig) -> str:
    if config.fetch_cache:
        return config.fetch_cache
    if "://" not in config.output:
        return os.path.join(config.output, "_fetch_cache")
    return os.path.join(tempfile.gettempdir(), "mathcorpus-fetch-cache")


class WarcFileReader:
    """File spec (path, gs://, s3:// or http(s) URL) -> HtmlResponse and DeadLetter records,
    counted as the `files` and `read` stages.

    Remote http(s) files are fetched into a local cache first (retries, resume) and deleted
    from it once read, unless `keep_fetched`; a file that cannot be fetched or opened is
    dead-lettered and the next file goes on. Faults inside a file end that file only: the
    records before the fault are kept.
    """

    def __init__(self, config: PoolConfig) -> None:
        from pipeline.pool.remote_fetch import RetryPolicy

        self._config = config
        self._files = StageCounter("files")
        self._read = StageCounter("read")
        self._policy = RetryPolicy(attempts=config.fetch_attempts, timeout_s=config.fetch_timeout_s)
        self._cache = default_fetch_cache(config)

    def read(self, spec: str) -> Iterator[HtmlResponse | DeadLetter]:
        from pipeline.pool.remote_fetch import fetch_to_cache

        self._files.entered()
        if not spec.startswith(("http://", "https://")):
            yield from self._read_file(spec, spec)
            return
        try:
            path = fetch_to_cache(spec, self._cache, self._policy)
        except Exception as exc:  # any fetch failure: this file is dead-lettered, run goes on
            self._files.dead_lettered("fetch_failed")
            yield DeadLetter("files", "fetch_failed", repr(exc), source=spec)
            return
        try:
            yield from self._read_file(spec, path)
        finally:
            # Once the file is read, or its bundle failed: a retried bundle fetches it again.
            if not self._config.keep_fetched:
                _remove_quietly(path)

    def _read_file(self, spec: str, path: str) -> Iterator[HtmlResponse | DeadLetter]:
        from pipeline.pool.warc_reader import iter_warc_records, open_warc

        try:
            stream = open_warc(path)
        except Exception as exc:  # unreadable file: dead-letter it, go on with the next
            self._files.dead_lettered("open_failed")
            yield DeadLetter("files", "open_failed", repr(exc), source=spec)
            return
        faulted = False
        with stream:
            for event in iter_warc_records(stream, spec, self._config.max_record_bytes):
                self._read.entered()
                if isinstance(event, HtmlResponse):
                    self._read.kept()
                    yield event
                elif isinstance(event, Dropped):
                    self._read.dropped(event.reason)
                else:
                    # A record-scope dead letter (one bad record) lets the file go on; a
                    # file-scope one (truncated gzip, bad chunking) ends the file there.
                    faulted = faulted or event.extra.get("scope") == "file"
                    self._read.dead_lettered(event.reason)
                    yield event
        self._files.kept()
        if faulted:
            self._files.note("ended_by_fault")


def _remove_quietly(path: str) -> None:
    # Another attempt at the same bundle may have removed it already.
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class UrlNormalizer:
    """HtmlResponse -> NormalizedResponse, or a DeadLetter for a bad URL (the `url` stage)."""

    def __init__(self) -> None:
        self._counts = StageCounter("url")

    def normalize(self, response: HtmlResponse) -> NormalizedResponse | DeadLetter:
        from pipeline.pool.url_normalize import InvalidUrl, doc_id, normalize_url, url_domain

        self._counts.entered()
        try:
            url = normalize_url(response.url)
        except InvalidUrl as exc:
            self._counts.dead_lettered("invalid_url")
            return DeadLetter(
                "url",
                "invalid_url",
                str(exc),
                source=response.warc_file,
                offset=response.warc_offset,
                url=response.url,
            )
        self._counts.kept()
        return NormalizedResponse(response, url, doc_id(url), url_domain(url))


class StageWarcFile(beam.DoFn):
    """(part number, file spec) -> the file's staged part, written by this worker; its key
    records (main output), (part, rows) to `parts`, failures to `dead_letter`.

    Read, URL, decode, extract and language run record by record in this one DoFn, so a page's
    HTML and text never leave the worker that read its file. A retried bundle rewrites the same
    part (a deterministic name, renamed into place when complete).
    """

    def __init__(self, config: PoolConfig, staging: str) -> None:
        self._config = config
        self._staging = staging

    def setup(self) -> None:
        from pipeline.dedup.shingles import char_tables

        c = self._config
        self._reader = WarcFileReader(c)
        self._urls = UrlNormalizer()
        settings: ExtractSettings = c.extract_settings()
        self._extractor = PageExtractor(settings)
        self._tagger = LanguageTagger(settings)
        self._minhash = c.dedup_options.minhash if c.dedup and c.dedup_options.near else None
        self._near = StageCounter("near_dedup")
        if self._minhash is not None:
            char_tables()  # the Unicode tables (~1.5 s) once per worker, not in a bundle

    def process(self, element: tuple[int, str]) -> Iterator[Any]:
        part, spec = element
        stager = PartStager(part_path(self._staging, part), part, self._minhash)
        try:
            for item in self._pages(spec):
                if isinstance(item, DeadLetter):
                    yield _dead(item)
                else:
                    stager.add(item)
            keys = stager.finish()
        except BaseException:
            stager.abort()
            raise
        if stager.no_shingles:
            self._near.note("no_shingles", stager.no_shingles)
        yield from keys
        yield pvalue.TaggedOutput(PARTS, (part, len(keys)))

    def _pages(self, spec: str) -> Iterator[dict[str, Any] | DeadLetter]:
        for response in self._reader.read(spec):
            if isinstance(response, DeadLetter):
                yield response
                continue
            page = self._urls.normalize(response)
            if isinstance(page, DeadLetter):
                yield page
                continue
            text = self._extractor.extract(page)
            if text is None or isinstance(text, DeadLetter):
                if text is not None:
                    yield text
                continue
            row = self._tagger.tag(text)
            if row is not None:
                yield row


class BuildPool(beam.PTransform):
    """PCollection of (part number, file spec) -> {"keys": key records, "parts": (part, rows),
    "dead_letter": DeadLetter}; every page is in its file's staged part under `staging`."""

    def __init__(self, config: PoolConfig, staging: str) -> None:
        super().__init__()
        self._config = config
        self._staging = staging

    def expand(self, specs: beam.PCollection) -> dict[str, beam.PCollection]:
        staged = (
            specs
            # Spread files over workers: one file is the unit of reading.
            | "SpreadFiles" >> beam.Reshuffle()
            | "StageWarcFile"
            >> beam.ParDo(StageWarcFile(self._config, self._staging)).with_outputs(
                PARTS, DEAD_LETTER, main="keys"
            )
        )
        return {"keys": staged.keys, PARTS: staged[PARTS], DEAD_LETTER: staged[DEAD_LETTER]}
