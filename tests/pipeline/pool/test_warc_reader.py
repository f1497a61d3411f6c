"""WARC/ARC reading: every real file (the malformed ones included), and small WARCs written here
for the cases the real files lack (size cap, sniffing, statuses, encodings, faults)."""

from __future__ import annotations

import collections
import io
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.core.dead_letters import DeadLetter
from pipeline.pool.charset_decode import decode_html
from pipeline.pool.records import Dropped, HtmlResponse
from pipeline.pool.warc_reader import (
    iter_warc_records,
    looks_like_html,
    media_type,
    open_warc,
    parse_warc_date,
)
from tests.helpers import require_shared

MiB = 1024 * 1024
CAP = 5 * MiB
Event = HtmlResponse | Dropped | DeadLetter


def read_events(path: Path, cap: int = CAP) -> list[Event]:
    with path.open("rb") as fh:
        return list(iter_warc_records(fh, str(path), cap))


def read_bytes(data: bytes, cap: int = CAP) -> list[Event]:
    return list(iter_warc_records(io.BytesIO(data), "test.warc", cap))


def kept(events: Iterable[Event]) -> list[HtmlResponse]:
    return [e for e in events if isinstance(e, HtmlResponse)]


def drops(events: Iterable[Event]) -> dict[str, int]:
    return dict(collections.Counter(e.reason for e in events if isinstance(e, Dropped)))


def offset_of(e: Event) -> int:
    """Byte offset of the record an event is about (dead letters name it `offset`)."""
    return e.offset if isinstance(e, DeadLetter) else e.warc_offset


def file_of(e: Event) -> str:
    return e.source if isinstance(e, DeadLetter) else e.warc_file


def faults(events: Iterable[Event]) -> list[tuple[str, int]]:
    return [
        (e.reason, e.offset)
        for e in events
        if isinstance(e, DeadLetter) and e.extra.get("scope") == "file"
    ]


# --------------------------------------------------------------------------------------------
# The real files in ../shared/data/warc
# --------------------------------------------------------------------------------------------

# Established by reading each file with warcio directly and by inspecting its bytes:
# (HTML responses kept, drops by reason, file faults as (reason, offset), record dead letters).
REAL_FILES: dict[str, tuple[int, dict[str, int], list[tuple[str, int]], int]] = {
    "dolma/sample-0000.warc.gz": (22, {"not_response": 26}, [], 0),
    "dolma/sample-0001.warc.gz": (15, {"not_response": 19}, [], 0),
    "jwarc/cc.warc.gz": (1, {}, [], 0),
    # A warcinfo record whose gzip header has an extra field.
    "jwarc/gzip_extra_sl.warc.gz": (0, {"not_response": 1}, [], 0),
    # Three records of WARC-Type "unknown" filling gzip blocks exactly.
    "resiliparse/block-sized-records.warc.gz": (0, {"not_response": 3}, [], 0),
    # One response whose gzip member stops 13,068 bytes short of its declared length.
    "resiliparse/clipped.warc.gz": (0, {}, [("truncated_gzip", 0)], 0),
    # ClueWeb09: every WARC-Date is "2008-10-294T05:21:46-0700" (day 294 of a month).
    "resiliparse/clueweb-quirk.warc.gz": (0, {"not_response": 1}, [], 29),
    # Common Crawl: warcinfo, then request/response/metadata triples, then a lone request.
    "resiliparse/warcfile.warc.gz": (16, {"not_response": 34}, [], 0),
    # The ARC header's own length is "-1".
    "warcio/bad.arc": (0, {}, [("bad_headers", 0)], 0),
    # One gzip member holding every record: warcio finds no record boundary after the first.
    "warcio/example-bad-non-chunked.warc.gz": (
        0,
        {"not_response": 1},
        [("bad_gzip_chunking", 0)],
        0,
    ),
    "warcio/example-bad.warc.gz.bad": (0, {"not_response": 1}, [("bad_gzip_chunking", 0)], 0),
    "warcio/example-digest.warc": (0, {"not_response": 4}, [], 0),
    "warcio/example-iana.org-chunked.warc": (1, {"not_response": 2}, [], 0),
    "warcio/example-resource.warc.gz": (0, {"not_response": 3}, [], 0),
    "warcio/example-space-in-target-uri.warc.gz": (0, {"not_response": 2}, [], 0),
    # Its HTTP headers were rewritten with LF line ends: the ARC length is 12 bytes too long,
    # so the file ends inside the record.
    "warcio/example-space-in-url.arc": (0, {"not_response": 1}, [("truncated_record", 151)], 0),
    # The response's Content-Length is 2 bytes short; warcio re-synchronises on the next record
    # (the page itself decodes completely).
    "warcio/example-trunc.warc": (1, {"not_response": 3}, [], 0),
    "warcio/example-wget-bad-target-uri.warc.gz": (1, {"not_response": 5}, [], 0),
    # The response's head and body are in two gzip members.
    "warcio/example-wrong-chunks.warc.gz": (0, {}, [("bad_gzip_chunking", 0)], 0),
    "warcio/example.arc": (1, {"not_response": 1}, [], 0),
    "warcio/example.arc.gz": (1, {"not_response": 1}, [], 0),
    "warcio/example.warc": (1, {"not_response": 5}, [], 0),
    "warcio/example.warc.gz": (1, {"not_response": 5}, [], 0),
    "warcio/post-test.warc.gz": (0, {"not_html": 3, "not_response": 3}, [], 0),
}


def real_files() -> list[Path]:
    warc_dir = require_shared("warc")
    return sorted(p for p in warc_dir.rglob("*") if p.is_file() and p.suffix != ".md")


def assert_well_formed(events: Sequence[Event], path: Path) -> None:
    """Invariants every file must meet, whatever its content."""
    file_faults = [i for i, e in enumerate(events) if faults([e])]
    assert len(file_faults) <= 1
    if file_faults:
        assert file_faults[0] == len(events) - 1, "a file fault must be the file's last event"
    offsets = [offset_of(e) for e in events]
    assert all(o >= 0 for o in offsets)
    record_offsets = offsets[:-1] if file_faults else offsets
    assert record_offsets == sorted(set(record_offsets)), "one event per record, in file order"
    for e in events:
        assert file_of(e) == str(path)
        if isinstance(e, (Dropped, DeadLetter)):
            assert e.stage == "read"
            assert e.reason.isidentifier()
    for page in kept(events):
        assert page.url
        assert page.fetch_time.tzinfo is not None
        assert page.fetch_time.utcoffset().total_seconds() == 0
        assert page.payload
        assert page.http_status is not None and 200 <= page.http_status < 300


def test_every_real_file_is_read_without_raising() -> None:
    files = real_files()
    names = {str(p.relative_to(p.parents[1])) for p in files}
    assert names == set(REAL_FILES), "the expectations below must cover every real file"
    for path in files:
        assert_well_formed(read_events(path), path)


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_file_outcomes(name: str) -> None:
    path = require_shared("warc", *name.split("/"))
    events = read_events(path)
    n_kept, dropped, file_faults, record_dead = REAL_FILES[name]
    assert len(kept(events)) == n_kept
    assert drops(events) == dropped
    assert faults(events) == file_faults
    record_letters = [e for e in events if isinstance(e, DeadLetter) and not faults([e])]
    assert len(record_letters) == record_dead


def test_real_common_crawl_lineage() -> None:
    path = require_shared("warc", "jwarc", "cc.warc.gz")
    (page,) = kept(read_events(path))
    assert page.url == "http://commoncrawl.org/"
    assert page.fetch_time == datetime(2019, 12, 10, 10, 0, 1, tzinfo=UTC)
    assert (page.warc_offset, page.http_status) == (0, 200)
    assert page.content_type == "text/html; charset=UTF-8"
    assert len(page.payload) == 20289
    assert b"Common Crawl" in page.payload

    path = require_shared("warc", "resiliparse", "warcfile.warc.gz")
    pages = kept(read_events(path))
    # Offsets as warcio's own index reports them (the response of each triple).
    assert [p.warc_offset for p in pages[:4]] == [940, 12685, 32353, 38503]
    assert pages[1].url == "http://01spb.ru/company/"
    assert pages[1].fetch_time == datetime(2020, 8, 8, 18, 31, 12, tzinfo=UTC)
    assert decode_html(pages[1].payload, pages[1].content_type).encoding == "cp1251"


def test_real_arc_files_get_utc_dates_and_offsets() -> None:
    for name, offset in (("example.arc", 151), ("example.arc.gz", 171)):
        (page,) = kept(read_events(require_shared("warc", "warcio", name)))
        assert page.warc_offset == offset
        assert page.fetch_time == datetime(2014, 2, 16, 5, 2, 21, tzinfo=UTC)
        assert page.url == "http://example.com/"
        assert page.payload.startswith(b"<!doctype html>")


def test_real_bodies_are_dechunked_and_decompressed() -> None:
    (chunked,) = kept(
        read_events(require_shared("warc", "warcio", "example-iana.org-chunked.warc"))
    )
    assert chunked.payload.startswith(b"<!doctype html>")
    assert chunked.payload.rstrip().endswith(b"</html>")
    assert len(chunked.payload) == 7223
    # Content-Encoding: gzip, undone by warcio.
    (gzipped,) = kept(read_events(require_shared("warc", "warcio", "example.warc.gz")))
    assert gzipped.payload.startswith(b"<!doctype html>")
    assert len(gzipped.payload) == 1270


def test_records_before_a_real_fault_are_reported() -> None:
    events = read_events(require_shared("warc", "warcio", "example-bad-non-chunked.warc.gz"))
    assert [type(e).__name__ for e in events] == ["Dropped", "DeadLetter"]
    assert events[0].reason == "not_response" and events[0].warc_offset == 0
    assert "non-chunked gzip" in events[1].error


def test_the_sample_crawl_faults(tmp_path: Path) -> None:
    from mathcorpus.sample_crawl import write_sample_crawl

    sample = write_sample_crawl(tmp_path, seed=7, scale=0.05)
    by_name = {Path(f).name: read_events(Path(f)) for f in sample.warc_files}
    truncated = by_name["sample-00004-truncated.warc.gz"]
    broken = by_name["sample-00005-badheaders.warc"]
    assert [r for r, _ in faults(truncated)] == ["truncated_gzip"]
    assert [r for r, _ in faults(broken)] == ["bad_headers"]
    assert len(kept(broken)) == 5  # the good records before the broken one
    assert len(kept(truncated)) >= 1
    others = [events for name, events in by_name.items() if "-" not in name.removesuffix(".gz")]
    for events in others:
        assert not faults(events)
    all_drops = collections.Counter()
    for events in by_name.values():
        all_drops.update(drops(events))
    assert all_drops["too_large"] == 1
    assert all_drops["not_html"] >= 3
    assert all_drops["http_status"] >= 2


# --------------------------------------------------------------------------------------------
# Small WARCs written here
# --------------------------------------------------------------------------------------------

DATE = "2024-03-01T12:00:00Z"
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>x + y = 2</p></body></html>"


def response(
    writer: WARCWriter,
    url: str,
    body: bytes,
    content_type: str | None = "text/html; charset=utf-8",
    status: str = "200 OK",
    headers: Sequence[tuple[str, str]] = (),
    date: str = DATE,
) -> None:
    http = [("Content-Type", content_type)] if content_type is not None else []
    http.extend(headers)
    record = writer.create_warc_record(
        url,
        "response",
        payload=io.BytesIO(body),
        http_headers=StatusAndHeaders(status, http, protocol="HTTP/1.1"),
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(record)


def warc_bytes(write: Callable[[WARCWriter], None], gzip: bool = True) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzip)
    write(writer)
    return buf.getvalue()


def gzip_bomb(uncompressed: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    return b"".join(compressor.compress(zeros) for _ in range(uncompressed // MiB)) + (
        compressor.flush()
    )


def test_oversized_plain_record_is_dropped_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.warc"
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=False)
        response(writer, "https://big.example/", b"<html>" + b"x" * (24 * MiB))
        response(writer, "https://small.example/", PAGE)
    tracemalloc.start()
    try:
        events = read_events(path, cap=1 * MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(type(e).__name__, getattr(e, "reason", "")) for e in events] == [
        ("Dropped", "too_large"),
        ("HtmlResponse", ""),
    ]
    assert events[1].url == "https://small.example/"
    # The 24 MiB body never was in memory: the cap plus read buffers.
    assert peak < 4 * MiB


def test_decompression_bomb_is_dropped_with_bounded_memory() -> None:
    bomb = gzip_bomb(256 * MiB)  # 256 MiB of zeros in about 250 KiB

    def write(writer: WARCWriter) -> None:
        response(writer, "https://bomb.example/", bomb, headers=[("Content-Encoding", "gzip")])
        response(writer, "https://after.example/", PAGE)

    data = warc_bytes(write)
    tracemalloc.start()
    try:
        events = read_bytes(data, cap=1 * MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [getattr(e, "reason", "kept") for e in events] == ["too_large", "kept"]
    # Bounded by zlib's ~1032:1 ratio over 16 KiB blocks (file and body), not by the 256 MiB.
    assert peak < 64 * MiB


def test_cap_boundary() -> None:
    body = b"<html>" + b"y" * 994  # exactly 1000 bytes

    def write(writer: WARCWriter) -> None:
        response(writer, "https://a.example/", body)

    assert len(kept(read_bytes(warc_bytes(write), cap=1000))) == 1
    assert drops(read_bytes(warc_bytes(write), cap=999)) == {"too_large": 1}


def test_non_html_and_sniffing() -> None:
    def write(writer: WARCWriter) -> None:
        response(writer, "https://a.example/img.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
        response(writer, "https://a.example/api", b'{"html": "<html>"}', "application/json")
        response(writer, "https://a.example/robots.txt", b"<html>not sniffed</html>", "text/plain")
        response(writer, "https://a.example/no-type", PAGE, None)
        response(
            writer,
            "https://a.example/octet",
            b"\n  <HTML lang=en><body>x",
            "application/octet-stream",
        )
        response(writer, "https://a.example/xhtml", PAGE, "application/xhtml+xml")
        response(writer, "https://a.example/odd-header", PAGE, "TEXT/HTML charset=utf-8")
        response(writer, "https://a.example/no-type-binary", b"\x00\x01binary <header>", None)
        response(writer, "https://a.example/empty", b"  \r\n", "text/html")

    events = read_bytes(warc_bytes(write))
    outcome = {e.url.rsplit("/", 1)[1]: getattr(e, "reason", "kept") for e in events}
    assert outcome == {
        "img.png": "not_html",
        "api": "not_html",
        "robots.txt": "not_html",
        "no-type": "kept",
        "octet": "kept",
        "xhtml": "kept",
        "odd-header": "kept",
        "no-type-binary": "not_html",
        "empty": "empty_payload",
    }
    no_type = next(p for p in kept(events) if p.url.endswith("/no-type"))
    assert no_type.content_type is None
    assert no_type.payload == PAGE


def test_statuses_and_record_types() -> None:
    def write(writer: WARCWriter) -> None:
        writer.write_record(writer.create_warcinfo_record("t.warc.gz", {"software": "test"}))
        response(writer, "https://a.example/moved", b"", status="301 Moved Permanently")
        response(writer, "https://a.example/gone", PAGE, status="404 Not Found")
        response(writer, "https://a.example/error", PAGE, status="500 Internal Server Error")
        response(writer, "https://a.example/partial", PAGE, status="206 Partial Content")
        response(writer, "https://a.example/weird", PAGE, status="OK 200")
        request = writer.create_warc_record(
            "https://a.example/",
            "request",
            payload=io.BytesIO(b""),
            http_headers=StatusAndHeaders(
                "GET / HTTP/1.1", [("Host", "a.example")], is_http_request=True
            ),
        )
        writer.write_record(request)
        for rec_type in ("metadata", "resource"):
            writer.write_record(
                writer.create_warc_record(
                    "https://a.example/",
                    rec_type,
                    payload=io.BytesIO(PAGE),
                    warc_content_type="text/html",
                )
            )
        dns = writer.create_warc_record(
            "dns:a.example",
            "response",
            payload=io.BytesIO(b"20240301 a.example. 60 IN A 1.2.3.4"),
            warc_content_type="text/dns",
        )
        writer.write_record(dns)
        # A broken target URI on a real HTTP response: kept here, the URL stage judges it.
        response(writer, "not a url at all", PAGE)

    events = read_bytes(warc_bytes(write))
    assert [getattr(e, "reason", "kept") for e in events] == [
        "not_response",
        "http_status",
        "http_status",
        "http_status",
        "kept",
        "http_status",
        "not_response",
        "not_response",
        "not_response",
        "not_http",
        "kept",
    ]
    assert kept(events)[0].http_status == 206
    assert kept(events)[1].url == "not%20a%20url%20at%20all"


def test_content_encodings() -> None:
    def write(writer: WARCWriter) -> None:
        compressed = zlib.compress(PAGE, wbits=31)
        response(
            writer, "https://a.example/gzip", compressed, headers=[("Content-Encoding", "gzip")]
        )
        # Declared gzip, sent plain: warcio notices on the first block and passes it through.
        response(writer, "https://a.example/not-gzip", PAGE, headers=[("Content-Encoding", "gzip")])
        response(
            writer,
            "https://a.example/zstd",
            b"(\xb5/\xfd...",
            headers=[("Content-Encoding", "zstd")],
        )
        # Compressed twice: what is left after one decoding is still gzip.
        twice = zlib.compress(compressed, wbits=31)
        response(writer, "https://a.example/twice", twice, headers=[("Content-Encoding", "gzip")])

    events = read_bytes(warc_bytes(write))
    assert [getattr(e, "reason", "kept") for e in events] == [
        "kept",
        "kept",
        "content_encoding",
        "content_encoding",
    ]
    assert [p.payload for p in kept(events)] == [PAGE, PAGE]


def test_broken_chunked_bodies_fall_back() -> None:
    chunked = (
        b"10\r\n"
        + PAGE[:16]
        + b"\r\n"
        + b"%x\r\n" % (len(PAGE) - 16)
        + PAGE[16:]
        + b"\r\n0\r\n\r\n"
    )
    broken = b"10\r\n" + PAGE[:16] + b"\r\nZZ not a chunk header\r\n" + PAGE[16:]
    chunked_header = [("Transfer-Encoding", "chunked")]

    def write(writer: WARCWriter) -> None:
        response(writer, "https://a.example/good", chunked, headers=chunked_header)
        # Not chunked at all although the header says so: read as it is.
        response(writer, "https://a.example/unchunked", PAGE, headers=chunked_header)
        # The second chunk header is garbage: warcio reads the rest as unchunked.
        response(writer, "https://a.example/broken", broken, headers=chunked_header)
        response(writer, "https://a.example/next", PAGE)

    events = read_bytes(warc_bytes(write))
    pages = kept(events)
    assert [p.url.rsplit("/", 1)[1] for p in pages] == ["good", "unchunked", "broken", "next"]
    assert pages[0].payload == PAGE
    assert pages[1].payload == PAGE
    assert pages[2].payload.startswith(PAGE[:16]) and pages[2].payload.endswith(PAGE[16:])


def test_dates() -> None:
    assert parse_warc_date("2024-03-01T12:00:00Z") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert parse_warc_date("2024-03-01T13:30:00+01:30") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert parse_warc_date("2024-03-01T12:00:00.250000Z") == datetime(
        2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC
    )
    assert parse_warc_date("20140216050221") == datetime(2014, 2, 16, 5, 2, 21, tzinfo=UTC)
    assert parse_warc_date("2024-03-01T12:00:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    for bad in ("", "yesterday", "2008-10-294T05:21:46-0700", "2024-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_warc_date(bad)


def test_bad_date_dead_letters_the_record_and_reading_goes_on() -> None:
    def write(writer: WARCWriter) -> None:
        response(writer, "https://a.example/1", PAGE, date="2024-02-30T00:00:00Z")
        response(writer, "https://a.example/2", PAGE, date="2024-03-01T12:00:00.5+02:00")

    events = read_bytes(warc_bytes(write))
    assert isinstance(events[0], DeadLetter)
    assert (events[0].reason, events[0].extra, events[0].url) == (
        "bad_date",
        {"scope": "record"},
        "https://a.example/1",
    )
    assert kept(events)[0].fetch_time == datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)


def test_charsets_through_the_reader() -> None:
    russian = "<html><body><p>Теорема Пифагора: a^2 + b^2 = c^2</p></body></html>"

    def write(writer: WARCWriter) -> None:
        response(
            writer,
            "https://ru.example/http",
            russian.encode("cp1251"),
            "text/html; charset=windows-1251",
        )
        meta = '<meta charset="koi8-r">' + russian
        response(writer, "https://ru.example/meta", meta.encode("koi8-r"), "text/html")
        response(
            writer, "https://ru.example/utf8mb4", russian.encode(), "text/html; charset=utf8mb4"
        )
        response(
            writer,
            "https://ru.example/bad-bytes",
            russian.encode() + b"\xff\xfe",
            "text/html; charset=utf-8",
        )

    pages = {p.url.rsplit("/", 1)[1]: p for p in kept(read_bytes(warc_bytes(write)))}
    decoded = {name: decode_html(p.payload, p.content_type) for name, p in pages.items()}
    assert (decoded["http"].encoding, decoded["http"].source) == ("cp1251", "http")
    assert (decoded["meta"].encoding, decoded["meta"].source) == ("koi8-r", "meta")
    assert (decoded["utf8mb4"].encoding, decoded["utf8mb4"].source) == ("utf-8", "http")
    assert decoded["bad-bytes"].replaced == 2
    for d in decoded.values():
        assert "Теорема Пифагора" in d.text


# --------------------------------------------------------------------------------------------
# Faults in files
# --------------------------------------------------------------------------------------------


def five_pages(writer: WARCWriter) -> None:
    writer.write_record(writer.create_warcinfo_record("t.warc.gz", {"software": "test"}))
    for i in range(5):
        response(writer, f"https://a.example/{i}", PAGE + b"<!-- %d -->" % i * 40)


def record_offsets(data: bytes) -> list[int]:
    events = read_bytes(data)
    assert not faults(events)
    return [offset_of(e) for e in events]


@pytest.mark.parametrize("gzip", [True, False])
def test_a_cut_file_keeps_the_records_before_the_cut(gzip: bool) -> None:
    data = warc_bytes(five_pages, gzip=gzip)
    offsets = record_offsets(data)
    # Cut in the middle of the fourth page (the fifth record).
    cut = (offsets[4] + offsets[5]) // 2
    events = read_bytes(data[:cut])
    assert len(kept(events)) == 3
    assert faults(events) == [("truncated_gzip" if gzip else "truncated_record", offsets[4])]


@pytest.mark.parametrize("gzip", [True, False])
def test_every_cut_position_gives_one_fault_or_whole_records(gzip: bool) -> None:
    data = warc_bytes(five_pages, gzip=gzip)
    offsets = record_offsets(data)
    ends = [*offsets[1:], len(data)]
    step = 1 if gzip else 5  # the uncompressed file is larger; every 5th byte is enough
    for cut in range(0, len(data) + 1, step):
        events = read_bytes(data[:cut])
        # An uncompressed record is complete without the blank lines (4 bytes) that follow it.
        slack = 0 if gzip else 4
        complete = sum(1 for end in ends if end - slack <= cut)
        at_boundary = cut == 0 or any(end - slack <= cut <= end for end in ends)
        assert len([e for e in events if not faults([e])]) == complete, cut
        if at_boundary:
            assert not faults(events), cut
        else:
            assert len(faults(events)) == 1 and faults([events[-1]]), cut
            assert events[-1].reason in ("truncated_gzip", "truncated_record"), cut
            assert offset_of(events[-1]) == (offsets[complete] if complete < 6 else 0), cut


def test_broken_headers_after_good_records() -> None:
    good = warc_bytes(five_pages, gzip=False)
    broken = (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://broken.example/\r\n"
        b"Content-Length: not-a-number\r\n\r\nHTTP/1.1 200 OK\r\n\r\n<html>broken</html>\r\n\r\n"
    )
    events = read_bytes(good + broken + good)
    assert len(kept(events)) == 5
    assert faults(events) == [("bad_headers", len(good))]
    assert events[-1].url == "https://broken.example/"


def test_garbage_between_records() -> None:
    good = warc_bytes(five_pages)
    events = read_bytes(good + b"this is not a WARC record\r\n\r\n" + good)
    assert len(kept(events)) == 5
    assert faults(events) == [("bad_headers", len(good))]


def test_not_a_warc_and_empty_files() -> None:
    html = b"<!DOCTYPE html>\n<html>\n<body>\n<p>Not a WARC file.</p>\n</body>\n</html>\n"
    assert faults(read_bytes(html)) == [("not_warc", 0)]
    assert read_bytes(b"") == []
    assert faults(read_bytes(b"\x1f\x8b\x08\x00garbage")) != []


class FailingStream(io.RawIOBase):
    """A stream that raises OSError after `limit` bytes (a network file system hiccup)."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data = io.BytesIO(data)
        self._limit = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._data.tell() >= self._limit:
            raise OSError("connection reset by peer")
        size = self._limit - self._data.tell() if size < 0 else size
        return self._data.read(min(size, self._limit - self._data.tell()))


def test_io_error_ends_the_file_as_one_fault() -> None:
    data = warc_bytes(five_pages, gzip=False)
    offsets = record_offsets(data)
    # The stream fails 10 bytes into the fourth record.
    events = list(iter_warc_records(FailingStream(data, offsets[3] + 10), "flaky.warc", CAP))
    assert [offset_of(e) for e in events] == offsets[:4]
    assert faults(events) == [("io_error", offsets[3])]
    assert "connection reset" in events[-1].error


def test_max_record_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_record_bytes"):
        list(iter_warc_records(io.BytesIO(b""), "x", 0))


def test_open_warc_reads_local_files_and_refuses_http() -> None:
    path = require_shared("warc", "warcio", "example.warc.gz")
    with open_warc(str(path)) as stream:
        events = list(iter_warc_records(stream, str(path), CAP))
    assert [offset_of(e) for e in events] == [offset_of(e) for e in read_events(path)]
    with pytest.raises(ValueError, match="fetch_to_cache"):
        open_warc("https://data.commoncrawl.org/crawl-data/x.warc.gz")


def test_helpers() -> None:
    assert media_type("Text/HTML; charset=UTF-8") == "text/html"
    assert media_type("text/html charset=utf-8") == "text/html"
    assert media_type(None) == media_type("") == media_type("garbage") == ""
    assert looks_like_html(b"  <!DOCTYPE html>")
    assert looks_like_html(b"<?xml version='1.0'?>\n<html xmlns='...'>")
    assert looks_like_html(b"<!-- c --><HEAD><title>")
    assert not looks_like_html(b"<header>a</header>")
    assert not looks_like_html(b"%PDF-1.4")
