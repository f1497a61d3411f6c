"""Read WARC/ARC files into HTML responses, with one outcome per record (pure logic, no Beam).

`iter_warc_records` (warcio) yields one event per record: an `HtmlResponse`, a `Dropped` with its
reason, or a `DeadLetter` (scope `record`, or `file` for a fault that ends the file). Memory per
record is bounded by `max_record_bytes`. Reasons, offsets, memory: docs/stages/pool.md.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeadersParser, StatusAndHeadersParserException

from pipeline.core.dead_letters import DeadLetter
from pipeline.pool.records import Dropped, HtmlResponse

STAGE = "read"
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Content-Types that say nothing about the body: such bodies are sniffed. `text/plain` is not
# among them (browsers do not render it as HTML either).
GENERIC_MEDIA_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/unknown",
        "application/x-unknown-content-type",
        "unknown/unknown",
        "*/*",
    }
)
# Bytes of a body that are sniffed for HTML markup.
SNIFF_BYTES = 1024
# Chunk size for reading a body (bytes); the cap, not this, bounds the memory.
READ_CHUNK_BYTES = 64 * 1024

_HTML_SNIFF_RE = re.compile(rb"<(?:!doctype\s+html|html|head|body)[\s>/]", re.IGNORECASE)
_MEDIA_TYPE_RE = re.compile(r"^\s*([a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+*-]+|\*/\*)", re.IGNORECASE)
# Content-Encodings after which warcio hands out the decoded body.
_DECODED_ENCODINGS = frozenset(
    {"", "identity", "none", *(e.lower() for e in BufferedReader.get_supported_decompressors())}
)
_GZIP_MAGIC = b"\x1f\x8b"
# HTTP status line and headers, parsed as leniently as ArchiveIterator(verify_http=False) does.
_HTTP_PARSER = StatusAndHeadersParser(ArcWarcRecordLoader.HTTP_TYPES, verify=False)


@dataclass(frozen=True, slots=True)
class _Body:
    """A record judged to be an HTML page, before its offset and date are attached."""

    payload: bytes
    content_type: str | None
    http_status: int


def open_warc(path_or_url: str) -> BinaryIO:
    """Open a local path, `gs://` or `s3://` file as raw bytes (warcio undoes gzip itself).

    http(s) URLs are fetched into a local cache first (`pipeline.pool.remote_fetch.fetch_to_cache`).
    """
    if path_or_url.startswith(("http://", "https://")):
        raise ValueError(
            f"{path_or_url}: fetch http(s) files with remote_fetch.fetch_to_cache, then open "
            "the cached path"
        )
    # Beam is imported here so that the pure reading logic does not need it.
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path_or_url, compression_type=CompressionTypes.UNCOMPRESSED)


def iter_warc_records(
    stream: BinaryIO, warc_file: str, max_record_bytes: int
) -> Iterator[HtmlResponse | Dropped | DeadLetter]:
    """One event per record of a WARC/ARC stream positioned at the start of the file
    (docs/stages/pool.md). A bad file never raises: its fault is its last event."""
    if max_record_bytes < 1:
        raise ValueError(f"max_record_bytes must be >= 1, got {max_record_bytes}")
    source = _Source(stream)
    records = ArchiveIterator(source, arc2warc=True)
    reading_at = 0  # offset of the record being parsed or read; after the loop, the end (bytes)
    count = 0
    try:
        for record in records:
            reading_at = _position(records, reading_at)
            url = record.rec_headers.get_header("WARC-Target-URI") or ""
            if _declared_length(record) is None:
                length = record.rec_headers.get_header("Content-Length")
                error = f"record length {length!r} is not a byte count"
                reason = _cut_reason(records, source) or "bad_headers"
                yield _file_fault(reason, error, warc_file, reading_at, url)
                return
            outcome = _judge(record, max_record_bytes)
            # Reads the rest of the record (streamed in 16 KiB blocks, not kept).
            offset = records.get_record_offset()
            offset = offset if offset >= 0 else reading_at
            cut = _cut_record(record, records, source)
            if cut is not None:
                yield _file_fault(cut[0], cut[1], warc_file, offset, url)
                return
            count += 1
            yield _event(outcome, record, url, warc_file, offset)
            reading_at = _position(records, reading_at)
    # The file-fault boundary: whatever warcio, zlib or the stream raise ends this file only,
    # as one dead letter after the records already yielded.
    except Exception as exc:
        reason = _cut_reason(records, source) or _fault_reason(exc, count)
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        yield _file_fault(reason, error, warc_file, _position(records, reading_at))
        return
    # warcio ends quietly when the file stops inside a record's headers: bytes left over after
    # the last complete record are that fault.
    leftover = source.bytes_read - reading_at
    if leftover > 0:
        reason = "truncated_gzip" if source.gzipped else "truncated_record"
        error = f"the last {leftover} bytes of the file do not form a complete record"
        yield _file_fault(reason, error, warc_file, reading_at)


class _Source:
    """The file as warcio reads it: counts the bytes read (warcio takes its offsets from
    `tell()`, so they count from where the stream started), notes the end of the file and
    whether the file starts like gzip."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.bytes_read = 0
        self.at_eof = False
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not data and size != 0:
            self.at_eof = True
        if len(self.head) < len(_GZIP_MAGIC):
            self.head += data[: len(_GZIP_MAGIC) - len(self.head)]
        self.bytes_read += len(data)
        return data

    def tell(self) -> int:
        return self.bytes_read

    @property
    def gzipped(self) -> bool:
        return bool(self.head) and _GZIP_MAGIC.startswith(self.head)


def looks_like_html(payload: bytes) -> bool:
    """True when the first KiB of a body holds an HTML document tag."""
    return _HTML_SNIFF_RE.search(payload[:SNIFF_BYTES]) is not None


def media_type(content_type: str | None) -> str:
    """The lower-case `type/subtype` of a Content-Type value; "" when missing or unreadable."""
    match = _MEDIA_TYPE_RE.match(content_type or "")
    return match.group(1).lower() if match else ""


def parse_warc_date(value: str) -> datetime:
    """A WARC-Date (ISO 8601, `Z` or an offset, optional fraction) or an ARC date
    (`YYYYMMDDhhmmss`, extra digits ignored) as a timezone-aware UTC datetime.

    Raises ValueError when the value is neither.
    """
    text = value.strip()
    if text.isdigit() and len(text) >= 14:
        moment = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    else:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _judge(record: Any, max_record_bytes: int) -> _Body | str:
    """The body of an HTML page, or the reason the record is dropped."""
    if record.rec_type != "response":
        return "not_response"
    http = _http_headers(record)
    if http is None:
        return "not_http"
    status = _status_code(http.get_statuscode())
    if status is None or not 200 <= status < 300:
        return "http_status"
    content_type = http.get_header("Content-Type")
    media = media_type(content_type)
    if media not in HTML_MEDIA_TYPES and media not in GENERIC_MEDIA_TYPES:
        return "not_html"
    if (http.get_header("Content-Encoding") or "").strip().lower() not in _DECODED_ENCODINGS:
        return "content_encoding"
    payload = _read_capped(record.content_stream(), max_record_bytes)
    if len(payload) > max_record_bytes:
        return "too_large"
    if not payload.strip():
        # An empty capture (e.g. a 204) must not win URL dedup over an older full one.
        return "empty_payload"
    if payload.startswith(_GZIP_MAGIC):
        # Still compressed: warcio passes a body through when it cannot be decompressed.
        return "content_encoding"
    if media not in HTML_MEDIA_TYPES and not looks_like_html(payload):
        return "not_html"
    return _Body(payload, content_type, status)


def _http_headers(record: Any) -> Any:
    """The record's HTTP headers; None when its block is not an HTTP message.

    warcio parses them only for http(s) target URIs, but a response record whose block is
    `application/http` is an HTTP response even when its URI is broken: the URL stage judges
    the URI, and counts it as `invalid_url`.
    """
    if record.http_headers is not None:
        return record.http_headers
    block_type = media_type(record.rec_headers.get_header("Content-Type"))
    if block_type != "application/http" or not record.length:
        return None
    try:
        record.http_headers = _HTTP_PARSER.parse(record.raw_stream)
    except (StatusAndHeadersParserException, EOFError):
        return None
    return record.http_headers


def _event(
    outcome: _Body | str, record: Any, url: str, warc_file: str, offset: int
) -> HtmlResponse | Dropped | DeadLetter:
    if isinstance(outcome, str):
        return Dropped(STAGE, outcome, warc_file=warc_file, warc_offset=offset, url=url)
    date = record.rec_headers.get_header("WARC-Date") or ""
    try:
        fetch_time = parse_warc_date(date)
    except ValueError as exc:
        return DeadLetter(
            STAGE,
            "bad_date",
            f"unparseable WARC-Date {date!r}: {exc}",
            source=warc_file,
            offset=offset,
            url=url,
            extra={"scope": "record"},
        )
    return HtmlResponse(
        url=url,
        fetch_time=fetch_time,
        warc_file=warc_file,
        warc_offset=offset,
        content_type=outcome.content_type,
        payload=outcome.payload,
        http_status=outcome.http_status,
    )


def _file_fault(reason: str, error: str, warc_file: str, offset: int, url: str = "") -> DeadLetter:
    return DeadLetter(
        STAGE,
        reason,
        error,
        source=warc_file,
        offset=offset,
        url=url,
        extra={"scope": "file"},
    )


def _read_capped(stream: Any, max_record_bytes: int) -> bytes:
    """At most `max_record_bytes + 1` bytes of a body: one more than the cap tells "too large"
    without reading the rest."""
    chunks: list[bytes] = []
    total = 0
    while total <= max_record_bytes:
        chunk = stream.read(min(READ_CHUNK_BYTES, max_record_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _status_code(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _declared_length(record: Any) -> int | None:
    """The record's declared length (WARC Content-Length or ARC length), or None when it is
    missing or not a non-negative integer (warcio then guesses 0 and loses the framing)."""
    value = (record.rec_headers.get_header("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _missing_bytes(record: Any) -> int:
    """Bytes of the record's declared length that the file did not have (0: complete)."""
    return max(getattr(record.raw_stream, "limit", 0), 0)


def _cut_record(record: Any, records: ArchiveIterator, source: _Source) -> tuple[str, str] | None:
    """(reason, message) when the record just read is incomplete, else None."""
    missing = _missing_bytes(record)
    decompressor = _decompressor(records)
    if missing:
        if decompressor is None:
            reason = "truncated_record"
        elif getattr(decompressor, "eof", False):
            # The gzip member ended cleanly inside the record: it spans several members.
            reason = "bad_gzip_chunking"
        else:
            reason = "truncated_gzip"
        return reason, f"record ends {missing} bytes before its declared length ({record.length})"
    if _gzip_cut(records, source) and not getattr(records, "next_line", None):
        return "truncated_gzip", "the file ends inside the record's gzip member"
    return None


def _decompressor(records: ArchiveIterator) -> Any:
    return getattr(getattr(records, "reader", None), "decompressor", None)


def _cut_reason(records: ArchiveIterator, source: _Source) -> str | None:
    """`truncated_gzip` / `truncated_record` when a fault was found where the file ends (a
    record cut inside its headers looks like bad headers to warcio), else None."""
    if _gzip_cut(records, source):
        return "truncated_gzip"
    reader = getattr(records, "reader", None)
    if source.at_eof and reader is not None and reader.rem_length() == 0:
        return "truncated_gzip" if source.gzipped else "truncated_record"
    return None


def _gzip_cut(records: ArchiveIterator, source: _Source) -> bool:
    """True when the file has ended inside a gzip member."""
    decompressor = _decompressor(records)
    return source.at_eof and decompressor is not None and not getattr(decompressor, "eof", True)


def _position(records: ArchiveIterator, fallback: int) -> int:
    """warcio's offset of the record being read next (its `offset` attribute: the end of the
    previous record). It goes negative when one gzip member holds several records; the last
    good offset (the start of that member) is kept then."""
    offset = getattr(records, "offset", None)
    return offset if isinstance(offset, int) and offset >= 0 else fallback


def _fault_reason(exc: Exception, records_read: int) -> str:
    if isinstance(exc, ArchiveLoadFailed):
        message = str(exc)
        if "non-chunked gzip" in message:
            return "bad_gzip_chunking"
        if records_read == 0 and "Unknown archive format" in message:
            return "not_warc"
        return "bad_headers"
    if isinstance(exc, StatusAndHeadersParserException):
        return "bad_headers"
    if isinstance(exc, EOFError):
        return "truncated_gzip"
    if isinstance(exc, zlib.error):
        return "bad_gzip"
    if isinstance(exc, UnicodeError):
        return "decode_error"
    if isinstance(exc, OSError):
        return "io_error"
    return "read_error"
