"""Beam transforms of the pool pipeline: thin DoFns over the pure modules.

    file specs -> ReadWarcFiles -> NormalizeUrls -> KeepNewestCapture
               -> ExtractPages (pipeline/extract/transforms.py) -> pool rows

Each DoFn counts its stage's outcomes (pipeline/core/counters.py) and sends failures to the
`dead_letter` tagged output as `DeadLetter` records.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.core.stage_run import CountPassThrough
from pipeline.extract.transforms import ExtractPages
from pipeline.pool.config import PoolConfig
from pipeline.pool.records import Dropped, HtmlResponse, NormalizedResponse

# The stages in pipeline order (stats.json lists them in this order).
POOL_STAGES = ("files", "read", "url", "url_dedup", "decode", "extract", "language")


def default_fetch_cache(config: PoolConfig) -> str:
    if config.fetch_cache:
        return config.fetch_cache
    if "://" not in config.output:
        return os.path.join(config.output, "_fetch_cache")
    return os.path.join(tempfile.gettempdir(), "mathcorpus-fetch-cache")


class ReadWarcFiles(beam.DoFn):
    """File spec (path, gs://, s3:// or http(s) URL) -> HtmlResponse records.

    Remote http(s) files are fetched into a local cache first (retries, resume) and deleted
    from it once read, unless `keep_fetched`; a file that cannot be fetched or opened is
    dead-lettered and the next file goes on. Faults inside a file
    end that file only: the records before the fault are kept.
    """

    def __init__(self, config: PoolConfig) -> None:
        self._config = config

    def setup(self) -> None:
        from pipeline.pool.remote_fetch import RetryPolicy

        self._files = StageCounter("files")
        self._read = StageCounter("read")
        self._policy = RetryPolicy(
            attempts=self._config.fetch_attempts, timeout_s=self._config.fetch_timeout_s
        )
        self._cache = default_fetch_cache(self._config)

    def process(self, spec: str) -> Iterator[Any]:
        from pipeline.pool.remote_fetch import fetch_to_cache

        self._files.entered()
        if not spec.startswith(("http://", "https://")):
            yield from self._read_file(spec, spec)
            return
        try:
            path = fetch_to_cache(spec, self._cache, self._policy)
        except Exception as exc:  # any fetch failure: this file is dead-lettered, run goes on
            self._files.dead_lettered("fetch_failed")
            yield _dead(DeadLetter("files", "fetch_failed", repr(exc), source=spec))
            return
        try:
            yield from self._read_file(spec, path)
        finally:
            # Once the file is read, or its bundle failed: a retried bundle fetches it again.
            if not self._config.keep_fetched:
                _remove_quietly(path)

    def _read_file(self, spec: str, path: str) -> Iterator[Any]:
        from pipeline.pool.warc_reader import iter_warc_records, open_warc

        try:
            stream = open_warc(path)
        except Exception as exc:  # unreadable file: dead-letter it, go on with the next
            self._files.dead_lettered("open_failed")
            yield _dead(DeadLetter("files", "open_failed", repr(exc), source=spec))
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
                    yield _dead(event)
        self._files.kept()
        if faulted:
            self._files.note("ended_by_fault")


def _remove_quietly(path: str) -> None:
    # Another attempt at the same bundle may have removed it already.
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class NormalizeUrls(beam.DoFn):
    """HtmlResponse -> (normalised URL, NormalizedResponse); bad URLs are dead-lettered."""

    def setup(self) -> None:
        self._counts = StageCounter("url")

    def process(self, response: HtmlResponse) -> Iterator[Any]:
        from pipeline.pool.url_normalize import InvalidUrl, doc_id, normalize_url, url_domain

        self._counts.entered()
        try:
            url = normalize_url(response.url)
        except InvalidUrl as exc:
            self._counts.dead_lettered("invalid_url")
            yield _dead(
                DeadLetter(
                    "url",
                    "invalid_url",
                    str(exc),
                    source=response.warc_file,
                    offset=response.warc_offset,
                    url=response.url,
                )
            )
            return
        self._counts.kept()
        yield url, NormalizedResponse(response, url, doc_id(url), url_domain(url))


def newest_capture(captures: Iterable[NormalizedResponse]) -> tuple[NormalizedResponse, int]:
    """The newest capture (ties broken by file and offset, so the choice is order-free) and
    the number of captures."""
    best: NormalizedResponse | None = None
    count = 0
    for capture in captures:
        count += 1
        r = capture.response
        if best is None or (r.fetch_time, r.warc_file, r.warc_offset) > (
            best.response.fetch_time,
            best.response.warc_file,
            best.response.warc_offset,
        ):
            best = capture
    if best is None:
        raise ValueError("newest_capture() needs at least one capture")
    return best, count


class KeepNewestCapture(beam.DoFn):
    """(url, captures) -> the newest capture; the older ones are dropped as duplicate_url."""

    def setup(self) -> None:
        self._counts = StageCounter("url_dedup")

    def process(self, element: tuple[str, Iterable[NormalizedResponse]]) -> Iterator[Any]:
        _, captures = element
        best, count = newest_capture(captures)
        self._counts.entered(count)
        self._counts.kept()
        if count > 1:
            self._counts.dropped("duplicate_url", count - 1)
        yield best


class BuildPool(beam.PTransform):
    """PCollection of file specs -> {'pages': pool row dicts, 'dead_letter': DeadLetter}."""

    def __init__(self, config: PoolConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, specs: beam.PCollection) -> dict[str, beam.PCollection]:
        c = self._config
        read = (
            specs
            # Spread files over workers: one file is the unit of reading.
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadWarcFiles" >> beam.ParDo(ReadWarcFiles(c)).with_outputs(DEAD_LETTER, main="ok")
        )
        normalized = read.ok | "NormalizeUrls" >> beam.ParDo(NormalizeUrls()).with_outputs(
            DEAD_LETTER, main="ok"
        )
        if c.url_dedup:
            unique = (
                normalized.ok
                | "GroupByUrl" >> beam.GroupByKey()
                | "KeepNewestCapture" >> beam.ParDo(KeepNewestCapture())
            )
        else:
            unique = (
                normalized.ok
                | "DropUrlKey" >> beam.Values()
                | "UrlDedupOff" >> beam.ParDo(CountPassThrough("url_dedup"))
            )
        extracted = unique | "ExtractPages" >> ExtractPages(c.extract_settings())
        dead = (
            read[DEAD_LETTER],
            normalized[DEAD_LETTER],
            extracted[DEAD_LETTER],
        ) | "MergeDeadLetters" >> beam.Flatten()
        return {"pages": extracted["pages"], DEAD_LETTER: dead}
