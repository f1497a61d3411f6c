"""Records that flow between the pool pipeline's stages (pure data, no Beam import).

Every record that enters a stage leaves it kept, dropped with a reason, or dead-lettered with its
error; `Dropped` and `DeadLetter` carry enough lineage (file, byte offset, URL) to find the record
again in its WARC file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
class DeadLetter:
    """A record (or a file fault) a stage could not process: kept for inspection, never lost."""

    stage: str
    reason: str
    """Short snake_case class of the error (e.g. `truncated_gzip`, `bad_headers`)."""
    error: str
    """The error message."""
    warc_file: str = ""
    warc_offset: int = -1
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    """Anything else useful to debug the record (e.g. a payload preview)."""
