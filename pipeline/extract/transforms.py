"""Beam transforms of text extraction: decode, extract with math as LaTeX, identify the language.

    NormalizedResponse -> DecodeAndExtract -> IdentifyLanguage -> pool row

`PageExtractor` and `LanguageTagger` hold the logic and the counts (`decode`, `extract`,
`language`); the pool's per-file stage calls them directly, `mathcorpus extract` through the
thin DoFns. What fails is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apache_beam as beam

from pipeline.core.counters import StageCounter
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter
from pipeline.core.dead_letters import dead_letter_output as _dead
from pipeline.extract.config import ExtractSettings
from pipeline.pool.records import NormalizedResponse
from pipeline.pool.schema import pool_row

# The stages these transforms count, in pipeline order.
EXTRACT_STAGES = ("decode", "extract", "language")


@dataclass(frozen=True, slots=True)
class PageText:
    """A page after extraction (before language id)."""

    page: NormalizedResponse
    text: str
    encoding: str
    math_formats: tuple[str, ...]
    n_math: int


class PageExtractor:
    """Decoding and math-preserving extraction of one page, counted as the `decode` and
    `extract` stages (plain Python: the DoFns below and the pool's per-file stage share it).

    Create it where counters may be made (a DoFn's `setup`).
    """

    def __init__(self, settings: ExtractSettings) -> None:
        from pipeline.extract.extractors import get_extractor

        self._min_text_chars = settings.min_text_chars
        self._decode = StageCounter("decode")
        self._extract = StageCounter("extract")
        self._extractor = get_extractor(settings.extractor)

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

    def extract(self, page: NormalizedResponse) -> PageText | DeadLetter | None:
        """The page's text, a dead letter (decoding or extraction failed), or None (dropped:
        no text, or too short)."""
        from pipeline.extract.extractors import extract_page
        from pipeline.pool.charset_decode import decode_html

        self._decode.entered()
        try:
            decoded = decode_html(page.response.payload, page.response.content_type)
        except Exception as exc:  # a record error dead-letters the record, never the run
            self._decode.dead_lettered("decode_error")
            return self._dead_letter(page, "decode", exc)
        self._decode.kept()
        if decoded.replaced:
            self._decode.note("pages_with_bad_bytes")
            self._decode.note("bad_bytes_replaced", decoded.replaced)

        self._extract.entered()
        try:
            extraction = extract_page(decoded.text, self._extractor, url=page.url)
        except Exception as exc:  # a record error dead-letters the record, never the run
            self._extract.dead_lettered("extract_error")
            return self._dead_letter(page, "extract", exc)
        text = extraction.text.strip()
        if not text:
            self._extract.dropped("empty_text")
            return None
        if len(text) < self._min_text_chars:
            self._extract.dropped("too_short")
            return None
        self._extract.kept()
        if extraction.n_math or extraction.math_formats:
            self._extract.note("pages_with_math")
        # The math-aware main-content decision, per kept page: TeX in the whole page's text
        # and in the main text after it, and what it put back (docs/stages/extract.md).
        if extraction.tex_in_page:
            self._extract.note("tex_in_page", extraction.tex_in_page)
        if extraction.tex_in_main:
            self._extract.note("tex_in_main_text", extraction.tex_in_main)
        if extraction.restored_lines:
            self._extract.note("pages_with_math_restored")
            self._extract.note("math_lines_restored", extraction.restored_lines)
        return PageText(page, text, decoded.encoding, extraction.math_formats, extraction.n_math)


class LanguageTagger:
    """Language identification of one extracted page -> its pool row, counted as the
    `language` stage; with an allow-list, other languages are dropped."""

    def __init__(self, settings: ExtractSettings) -> None:
        from pipeline.extract.extractors import get_extractor
        from pipeline.extract.language_id import shared_identifier

        self._languages = frozenset(settings.languages)
        self._min_score = settings.min_language_score
        self._extractor_name = settings.extractor
        self._counts = StageCounter("language")
        self._identifier = shared_identifier()
        self._extractor_version = get_extractor(settings.extractor).version

    def tag(self, page: PageText) -> dict[str, Any] | None:
        """The pool row, or None when the language is not allowed."""
        self._counts.entered()
        guess = self._identifier.identify(page.text)
        if self._languages:
            if guess.language not in self._languages:
                self._counts.dropped("language_not_allowed")
                return None
            if guess.score < self._min_score:
                self._counts.dropped("language_score_low")
                return None
        self._counts.kept()
        r = page.page.response
        return pool_row(
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


class DecodeAndExtract(beam.DoFn):
    """NormalizedResponse -> PageText (`PageExtractor`); failures to `dead_letter`."""

    def __init__(self, settings: ExtractSettings) -> None:
        self._settings = settings

    def setup(self) -> None:
        self._extractor = PageExtractor(self._settings)

    def process(self, page: NormalizedResponse) -> Iterator[Any]:
        result = self._extractor.extract(page)
        if isinstance(result, DeadLetter):
            yield _dead(result)
        elif result is not None:
            yield result


class IdentifyLanguage(beam.DoFn):
    """PageText -> pool row dict (`LanguageTagger`)."""

    def __init__(self, settings: ExtractSettings) -> None:
        self._settings = settings

    def setup(self) -> None:
        self._tagger = LanguageTagger(self._settings)

    def process(self, page: PageText) -> Iterator[dict[str, Any]]:
        row = self._tagger.tag(page)
        if row is not None:
            yield row


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ExtractPages(beam.PTransform):
    """NormalizedResponse -> {'pages': pool row dicts, 'dead_letter': DeadLetter}."""

    def __init__(self, settings: ExtractSettings) -> None:
        super().__init__()
        self._settings = settings

    def expand(self, pages: beam.PCollection) -> dict[str, beam.PCollection]:
        extracted = pages | "DecodeAndExtract" >> beam.ParDo(
            DecodeAndExtract(self._settings)
        ).with_outputs(DEAD_LETTER, main="ok")
        rows = extracted.ok | "IdentifyLanguage" >> beam.ParDo(IdentifyLanguage(self._settings))
        return {"pages": rows, DEAD_LETTER: extracted[DEAD_LETTER]}
