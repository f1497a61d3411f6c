"""Beam transforms of the pool pipeline: thin DoFns over the pure modules.

    file specs -> ReadWarcFiles -> NormalizeUrls -> KeepNewestCapture -> DecodeHtml
               -> ExtractText -> IdentifyLanguage -> pool rows

Each DoFn counts its stage's outcomes (pipeline/core/counters.py) and sends failures to the
`dead_letter` tagged output as `DeadLetter` records.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apache_beam as beam

from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.core.stage_run import CountPassThrough
from pipeline.pool.config import PoolConfig
from pipeline.pool.records import Dropped, HtmlResponse
from pipeline.pool.schema import pool_row

# The stages in pipeline order (stats.json lists them in this order).
POOL_STAGES = ("files", "read", "url", "url_dedup", "decode", "extract", "language")


@dataclass(frozen=True, slots=True)
class NormalizedResponse:
    """An HTML response with its normalised URL, id and domain."""

    response: HtmlResponse
    url: str
    doc_id: str
    domain: str


@dataclass(frozen=True, slots=True)
class PageText:
    """A page after extraction (before language id)."""

    page: NormalizedResponse
    text: str
    encoding: str
    math_formats: tuple[str, ...]
    n_math: int


def default_fetch_cache(config: PoolConfig) -> str:
    if config.fetch_cache:
        return config.fetch_cache
    if "://" not in config.output:
        return os.path.join(config.output, "_fetch_cache")
    return os.path.join(tempfile.gettempdir(), "mathcorpus-fetch-cache")


class ReadWarcFiles(beam.DoFn):
    """File spec (path, gs://, s3:// or http(s) URL) -> HtmlResponse records.

    Remote http(s) files are fetched into a local cache first (retries, resume); a file that
    cannot be fetched or opened is dead-lettered and the next file goes on. Faults inside a file
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
        from pipeline.pool.warc_reader import iter_warc_records, open_warc

        self._files.entered()
        path = spec
        if spec.startswith(("http://", "https://")):
            try:
                path = fetch_to_cache(spec, self._cache, self._policy)
            except Exception as exc:  # any fetch failure: this file is dead-lettered, run goes on
                self._files.dead_lettered("fetch_failed")
                yield _dead(DeadLetter("files", "fetch_failed", repr(exc), source=spec))
                return
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


class DecodeAndExtract(beam.DoFn):
    """NormalizedResponse -> PageText: charset decoding, then math-preserving extraction.

    Two stages counted separately (`decode`, `extract`) but run in one DoFn so the decoded HTML
    string never has to be encoded between steps.
    """

    def __init__(self, extractor: str, min_text_chars: int) -> None:
        self._extractor_name = extractor
        self._min_text_chars = min_text_chars

    def setup(self) -> None:
        from pipeline.extract.extractors import get_extractor

        self._decode = StageCounter("decode")
        self._extract = StageCounter("extract")
        self._extractor = get_extractor(self._extractor_name)

    def _dead_letter(self, page: NormalizedResponse, stage: str, exc: Exception) -> DeadLetter:
        r = page.response
        return DeadLetter(
            stage,
            f"{stage}_error",
            f"{type(exc).__name__}: {exc}",
            source=r.warc_file,
            offset=r.warc_offset,
            url=page.url,
            doc_id=page.doc_id,
        )

    def process(self, page: NormalizedResponse) -> Iterator[Any]:
        from pipeline.extract.extractors import extract_page
        from pipeline.pool.charset_decode import decode_html

        self._decode.entered()
        try:
            decoded = decode_html(page.response.payload, page.response.content_type)
        except Exception as exc:  # a record error dead-letters the record, never the run
            self._decode.dead_lettered("decode_error")
            yield _dead(self._dead_letter(page, "decode", exc))
            return
        self._decode.kept()
        if decoded.replaced:
            self._decode.note("pages_with_bad_bytes")
            self._decode.note("bad_bytes_replaced", decoded.replaced)

        self._extract.entered()
        try:
            extraction = extract_page(decoded.text, self._extractor, url=page.url)
        except Exception as exc:  # a record error dead-letters the record, never the run
            self._extract.dead_lettered("extract_error")
            yield _dead(self._dead_letter(page, "extract", exc))
            return
        text = extraction.text.strip()
        if not text:
            self._extract.dropped("empty_text")
            return
        if len(text) < self._min_text_chars:
            self._extract.dropped("too_short")
            return
        self._extract.kept()
        if extraction.n_math or extraction.math_formats:
            self._extract.note("pages_with_math")
        yield PageText(page, text, decoded.encoding, extraction.math_formats, extraction.n_math)


class IdentifyLanguage(beam.DoFn):
    """PageText -> pool row dict, with language and score; optional allow-list filter."""

    def __init__(self, languages: tuple[str, ...], min_score: float, extractor: str) -> None:
        self._languages = frozenset(languages)
        self._min_score = min_score
        self._extractor_name = extractor

    def setup(self) -> None:
        from pipeline.extract.extractors import get_extractor
        from pipeline.extract.language_id import shared_identifier

        self._counts = StageCounter("language")
        self._identifier = shared_identifier()
        self._extractor_version = get_extractor(self._extractor_name).version

    def process(self, page: PageText) -> Iterator[dict[str, Any]]:
        self._counts.entered()
        guess = self._identifier.identify(page.text)
        if self._languages:
            if guess.language not in self._languages:
                self._counts.dropped("language_not_allowed")
                return
            if guess.score < self._min_score:
                self._counts.dropped("language_score_low")
                return
        self._counts.kept()
        r = page.page.response
        yield pool_row(
            doc_id=page.page.doc_id,
            url=page.page.url,
            domain=page.page.domain,
            warc_file=r.warc_file,
            warc_offset=r.warc_offset,
            fetch_time=_utc(r.fetch_time),
            language=guess.language,
            language_score=guess.score,
            text=page.text,
            math_formats=page.math_formats,
            n_math=page.n_math,
            encoding=page.encoding,
            extractor=self._extractor_name,
            extractor_version=self._extractor_version,
        )


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
        extracted = unique | "DecodeAndExtract" >> beam.ParDo(
            DecodeAndExtract(c.extractor, c.min_text_chars)
        ).with_outputs(DEAD_LETTER, main="ok")
        pages = extracted.ok | "IdentifyLanguage" >> beam.ParDo(
            IdentifyLanguage(c.languages, c.min_language_score, c.extractor)
        )
        dead = (
            read[DEAD_LETTER],
            normalized[DEAD_LETTER],
            extracted[DEAD_LETTER],
        ) | "MergeDeadLetters" >> beam.Flatten()
        return {"pages": pages, DEAD_LETTER: dead}
