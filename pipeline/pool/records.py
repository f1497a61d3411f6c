"""Records read from WARC files: an HTML response, or a record dropped with its reason (pure data).

Both carry enough lineage (file, byte offset, URL) to find the record again in its WARC file;
what could not be read becomes a `pipeline.core.dead_letters.DeadLetter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class HtmlResponse:
    """An HTTP response from a WARC/ARC file that is (or sniffs as) HTML, before decoding."""

    url: str
    """WARC-Target-URI exactly as recorded (not yet normalised)."""
    fetch_time: datetime
    """WARC-Date (capture time), timezone-aware UTC."""
    warc_file: str
    """Path or URL of the WARC file the record came from."""
    warc_offset: int
    """Byte offset of the record in that file (in the compressed stream for .gz files)."""
    content_type: str | None
    """HTTP Content-Type header value, if any (carries the HTTP charset)."""
    payload: bytes
    """HTTP body after de-chunking and content-encoding removal."""
    http_status: int | None = None
    """HTTP status code, when the record had an HTTP status line."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A record a stage decided not to keep, with the reason (a short snake_case word)."""

    stage: str
    reason: str
    warc_file: str = ""
    warc_offset: int = -1
    url: str = ""


@dataclass(frozen=True, slots=True)
class NormalizedResponse:
    """An HTML response with its normalised URL, id and domain."""

    response: HtmlResponse
    url: str
    doc_id: str
    domain: str
