"""Decode an HTML payload (bytes) into text, choosing the charset the way a careful crawler does.

Sources in order: BOM, valid UTF-8, HTTP charset, `<meta>`, detection, UTF-8 fallback
(`DecodedHtml.source`); a declared charset that replaces too much is overruled. Undecodable bytes
become U+FFFD and are counted; `decode_html` never raises. The rules: docs/stages/pool.md.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5


@dataclass(frozen=True, slots=True)
class DecodedHtml:
    """A decoded page and how its charset was chosen."""

    text: str
    """The page as text (a leading BOM removed)."""
    encoding: str
    """Python codec name used (e.g. `utf-8`, `cp1252`, `gbk`, `euc_jp`)."""
    source: str
    """Where the charset came from: `bom`, `utf8_valid`, `http`, `meta`, `detected` or
    `fallback`."""
    replaced: int
    """Number of U+FFFD replacement characters inserted for undecodable bytes."""


# Bytes of the page searched for a <meta> charset (browsers use 1 KiB; long heads are common).
META_SCAN_BYTES = 4096
# A declared charset is trusted while it replaces at most this fraction of the characters, or at
# most this many characters (a page cut inside a multi-byte character at the crawler's size limit
# has one bad sequence; a mislabelled page has one per non-ASCII character).
MAX_DECLARED_REPLACED_FRACTION = 0.01
MIN_DECLARED_REPLACED_TOLERATED = 16
# NUL bytes in the first KiB that make a page without BOM a UTF-16 candidate.
MIN_UTF16_NULS = 8

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Labels seen on the web that the WHATWG table does not know.
_EXTRA_ALIASES = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf-8mb4": "utf-8"}
# Python codecs that decode bytes to text but never name a web page's charset.
_NOT_PAGE_CHARSETS = frozenset(
    {"idna", "punycode", "raw_unicode_escape", "unicode_escape", "undefined", "mbcs", "oem"}
)
_HTTP_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?\s*([^\s;"',]+)""", re.IGNORECASE)
_META_CHARSET_RE = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([a-z0-9_.:+-]+)""", re.IGNORECASE
)
_XML_ENCODING_RE = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([a-z0-9_.:+-]+)""", re.I)

# Replacement counting: a codec error handler that writes U+FFFD (like errors="replace") and
# counts its calls in a per-thread counter (Beam may run several DoFn threads per process).
_ERRORS = "mathcorpus.count_replace"
_counter = threading.local()


def _count_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _counter.n = getattr(_counter, "n", 0) + 1
    return "\ufffd", exc.end


codecs.register_error(_ERRORS, _count_replace)


def decode_html(payload: bytes, content_type: str | None) -> DecodedHtml:
    """Decode an HTML payload; `content_type` is the HTTP Content-Type header value, if any."""
    bom = _decode_bom(payload)
    if bom is not None:
        return bom
    valid_utf8 = _strict_utf8(payload)
    if valid_utf8 is not None:
        return _valid_utf8_result(payload, valid_utf8, content_type)

    candidates: list[DecodedHtml] = []
    for source, label in (("http", _http_charset(content_type)), ("meta", _meta_charset(payload))):
        if label is None or (label.startswith("utf-16") and _utf16_by_nuls(payload) is None):
            continue
        decoded = _decode_with(payload, label, source)
        tolerated = max(
            MIN_DECLARED_REPLACED_TOLERATED, MAX_DECLARED_REPLACED_FRACTION * len(decoded.text)
        )
        if decoded.replaced <= tolerated:
            return decoded
        candidates.append(decoded)
    detected = _detected_charset(payload)
    if detected is not None:
        candidates.append(_decode_with(payload, detected, "detected"))
    candidates.append(_decode_with(payload, "utf-8", "fallback"))
    # Fewest replacements wins; on a tie the earlier source (declared before detected).
    return min(candidates, key=lambda d: d.replaced)


def codec_for_label(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when it names no usable text encoding."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name:
        return None
    name = _EXTRA_ALIASES.get(name, name)
    mapped = map_encoding_to_html5(name, fallback_utf8=False)
    try:
        info = codecs.lookup(mapped or name)
        b"x".decode(info.name, "replace")  # LookupError for bytes-to-bytes codecs (rot13)
    except (LookupError, UnicodeError):
        return None
    if info.name in _NOT_PAGE_CHARSETS:
        return None
    return info.name


def _strict_utf8(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _valid_utf8_result(payload: bytes, text: str, content_type: str | None) -> DecodedHtml:
    """The result for a payload that is valid UTF-8 (pure ASCII included)."""
    declared_source, declared = "http", _http_charset(content_type)
    if declared is None:
        declared_source, declared = "meta", _meta_charset(payload)
    if declared is None or declared.startswith("utf-16"):
        # HTML never holds NUL bytes, but UTF-16 text without a BOM is full of them (and they
        # are valid UTF-8): their positions tell UTF-16 from UTF-8.
        utf16 = _utf16_by_nuls(payload)
        if utf16 is not None:
            return _decode_with(payload, utf16, declared_source if declared else "detected")
        return DecodedHtml(text, "utf-8", "utf8_valid", 0)
    if payload.isascii() and _ascii_compatible(declared):
        # Every ASCII-compatible charset reads ASCII the same: report the declared one.
        return DecodedHtml(text, declared, declared_source, 0)
    if declared == "utf-8":
        return DecodedHtml(text, "utf-8", declared_source, 0)
    return DecodedHtml(text, "utf-8", "utf8_valid", 0)


def _ascii_compatible(codec: str) -> bool:
    probe = "<html lang=en> AZaz09"
    try:
        return probe.encode(codec) == probe.encode("ascii")
    except (LookupError, UnicodeError):
        return False


def _decode_bom(payload: bytes) -> DecodedHtml | None:
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return _decode_with(payload[len(bom) :], codec, "bom")
    return None


def _utf16_by_nuls(payload: bytes) -> str | None:
    """`utf-16-le` / `utf-16-be` when the first KiB has NUL bytes, nearly all of them at odd /
    even positions (the high bytes of ASCII markup in UTF-16), else None. No other charset
    puts NUL bytes in HTML."""
    head = payload[:1024]
    if head.count(0) < MIN_UTF16_NULS:
        return None
    odd_nuls = head[1::2].count(0)
    even_nuls = head[0::2].count(0)
    if odd_nuls > 4 * even_nuls:
        return "utf-16-le"
    if even_nuls > 4 * odd_nuls:
        return "utf-16-be"
    return None


def _http_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HTTP_CHARSET_RE.search(content_type)
    return codec_for_label(match.group(1)) if match else None


def _meta_charset(payload: bytes) -> str | None:
    head = payload[:META_SCAN_BYTES]
    match = _XML_ENCODING_RE.match(head) or _META_CHARSET_RE.search(head)
    if not match:
        return None
    codec = codec_for_label(match.group(1).decode("ascii", "replace"))
    # A <meta> readable as ASCII cannot be in UTF-16: WHATWG reads such pages as UTF-8.
    if codec is not None and codec.startswith("utf-16"):
        return "utf-8"
    return codec


def _detected_charset(payload: bytes) -> str | None:
    try:
        return codec_for_label(detect_encoding(payload))
    except MemoryError:  # the detector could not be allocated: fall back to UTF-8
        return None


def _decode_with(payload: bytes, codec: str, source: str) -> DecodedHtml:
    _counter.n = 0
    try:
        text = payload.decode(codec, _ERRORS)
    except (LookupError, UnicodeError):
        # A codec that rejects the error handler or fails on its own (rare, e.g. some CJK
        # stateful codecs): UTF-8 with replacement always works.
        _counter.n = 0
        text = payload.decode("utf-8", _ERRORS)
        codec = "utf-8"
    replaced = _counter.n
    if text.startswith("\ufeff"):
        text = text[1:]
    return DecodedHtml(text, codec, source, replaced)
