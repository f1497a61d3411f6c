"""Charset decoding: order of the sources, odd labels, bad bytes, real pages in many charsets."""

from __future__ import annotations

import random

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.pool.charset_decode import DecodedHtml, codec_for_label, decode_html
from pipeline.pool.records import HtmlResponse
from pipeline.pool.warc_reader import iter_warc_records
from tests.helpers import require_shared

RUSSIAN = "Привет, мир! Это страница на русском языке. " * 8
JAPANESE = "日本語のテキストです。数学の問題を解きましょう。" * 8


def test_http_charset_wins_for_legacy_bytes() -> None:
    decoded = decode_html("café crème".encode("cp1252"), "text/html; charset=ISO-8859-1")
    assert decoded == DecodedHtml("café crème", "cp1252", "http", 0)


def test_meta_charset_when_http_has_none() -> None:
    page = b'<html><head><meta charset="windows-1251"></head><body>' + RUSSIAN.encode("cp1251")
    decoded = decode_html(page, "text/html")
    assert (decoded.encoding, decoded.source, decoded.replaced) == ("cp1251", "meta", 0)
    assert RUSSIAN in decoded.text


def test_meta_http_equiv_and_xml_declaration() -> None:
    equiv = (
        b'<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">'
        + JAPANESE.encode("shift_jis")
    )
    assert decode_html(equiv, None).encoding == "shift_jis"
    xml = b'<?xml version="1.0" encoding="EUC-JP"?><html>' + JAPANESE.encode("euc_jp")
    decoded = decode_html(xml, "application/xhtml+xml")
    assert (decoded.encoding, decoded.source) == ("euc_jp", "meta")
    assert JAPANESE in decoded.text


def test_http_charset_before_meta() -> None:
    page = b'<meta charset="utf-8">' + RUSSIAN.encode("koi8-r")
    decoded = decode_html(page, "text/html; charset=KOI8-R")
    assert (decoded.encoding, decoded.source) == ("koi8-r", "http")
    assert RUSSIAN in decoded.text


def test_bom_decides() -> None:
    decoded = decode_html(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>", "text/html; charset=iso-8859-1")
    assert decoded == DecodedHtml("<p>café</p>", "utf-8", "bom", 0)
    utf16 = "\ufeff<p>" + RUSSIAN + "</p>"
    decoded = decode_html(utf16.encode("utf-16-le"), None)
    assert (decoded.encoding, decoded.source, decoded.text) == ("utf-16-le", "bom", utf16[1:])


def test_valid_utf8_beats_a_legacy_label() -> None:
    # Re-encoded to UTF-8, old label kept: a browser would show mojibake, we do not.
    decoded = decode_html("café".encode(), "text/html; charset=iso-8859-1")
    assert decoded == DecodedHtml("café", "utf-8", "utf8_valid", 0)


def test_pure_ascii_reports_the_declared_charset() -> None:
    assert decode_html(b"<p>plain</p>", "text/html; charset=latin1").encoding == "cp1252"
    assert decode_html(b"<p>plain</p>", None) == DecodedHtml(
        "<p>plain</p>", "utf-8", "utf8_valid", 0
    )


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf8mb4", "utf-8"),
        ("UTF8", "utf-8"),
        ('"utf-8"', "utf-8"),
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("gb2312", "gbk"),
        ("x-sjis", "shift_jis"),
        ("cp932", "cp932"),
        ("none", None),
        ("x-user-defined", None),
        ("replacement", None),
        ("rot13", None),
        ("base64", None),
        ("idna", None),
        ("no-such-charset", None),
        ("", None),
        (None, None),
    ],
)
def test_codec_for_label(label: str | None, codec: str | None) -> None:
    assert codec_for_label(label) == codec


@pytest.mark.parametrize("bogus", ["none", "x-user-defined", "utf-8x", "replacement"])
def test_bogus_labels_fall_through_to_detection(bogus: str) -> None:
    decoded = decode_html(RUSSIAN.encode("cp1251"), f"text/html; charset={bogus}")
    assert (decoded.encoding, decoded.source, decoded.replaced) == ("cp1251", "detected", 0)
    assert decoded.text == RUSSIAN


def test_utf8mb4_label_is_utf8() -> None:
    page = '<meta charset="utf8mb4"><p>naïve ∑</p>'.encode() + b"\xff"
    decoded = decode_html(page, None)
    assert (decoded.encoding, decoded.source, decoded.replaced) == ("utf-8", "meta", 1)
    assert decoded.text.endswith("∑</p>\ufffd")


def test_a_few_bad_bytes_keep_the_declared_charset_and_are_counted() -> None:
    page = ("<p>" + "Grüße aus Köln. " * 50 + "</p>").encode() + b"\xe9\xff" + b" end"
    decoded = decode_html(page, "text/html; charset=utf-8")
    assert (decoded.encoding, decoded.source, decoded.replaced) == ("utf-8", "http", 2)
    assert decoded.text.count("\ufffd") == 2


def test_a_wrong_label_is_overruled_when_it_breaks_the_page() -> None:
    decoded = decode_html(RUSSIAN.encode("cp1251"), "text/html; charset=utf-8")
    assert (decoded.encoding, decoded.source, decoded.replaced) == ("cp1251", "detected", 0)


def test_literal_replacement_characters_are_not_counted() -> None:
    decoded = decode_html("a \ufffd b".encode(), "text/html; charset=utf-8")
    assert decoded.replaced == 0
    assert decoded.text == "a \ufffd b"


def test_utf16_without_bom_is_recognised_by_its_nul_bytes() -> None:
    page = "<html><body>" + RUSSIAN + "</body></html>"
    for codec in ("utf-16-le", "utf-16-be"):
        decoded = decode_html(page.encode(codec), None)
        assert (decoded.text, decoded.encoding) == (page, codec)
    # A UTF-16 label on a page without NUL bytes is a mislabel.
    assert decode_html(b"<p>hi</p>", "text/html; charset=utf-16").text == "<p>hi</p>"


def test_never_raises_on_any_bytes() -> None:
    rng = random.Random(20240301)
    labels = [None, "utf-8", "gbk", "euc-jp", "utf-16", "iso-2022-jp", "utf-7", "bogus", "big5"]
    for _ in range(300):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        for label in labels:
            content_type = f"text/html; charset={label}" if label else None
            decoded = decode_html(payload, content_type)
            assert isinstance(decoded.text, str)
            assert decoded.replaced >= 0
            meta = b"<meta charset=%s>" % (label or "x").encode() + payload
            assert isinstance(decode_html(meta, None).text, str)


def test_real_pages_with_their_own_labels() -> None:
    html = require_shared("html")
    german = decode_html(
        (html / "trafilatura/cache/cdu-fraktion-erfurt.de.waldorfschule.html").read_bytes(),
        "text/html",
    )
    assert (german.encoding, german.source, german.replaced) == ("cp1252", "meta", 0)
    assert "Funktionen für soziale Medien" in german.text
    austrian = decode_html(
        (html / "trafilatura/eval/0b96fc66e2c94f45a1b923ec9a31fcf2.html").read_bytes(), None
    )
    assert (austrian.encoding, austrian.source, austrian.replaced) == ("cp1252", "meta", 0)
    assert "Oberösterreichische Nachrichten" in austrian.text
    # Stored as UTF-8 with its original gb2312 label kept.
    chinese = decode_html((html / "readability/qq.html").read_bytes(), "text/html")
    assert (chinese.encoding, chinese.source, chinese.replaced) == ("utf-8", "utf8_valid", 0)
    assert "新电脑" in chinese.text


def test_every_page_of_the_real_warcs_decodes_cleanly() -> None:
    warc = require_shared("warc", "resiliparse", "warcfile.warc.gz")
    with warc.open("rb") as fh:
        pages = [e for e in iter_warc_records(fh, str(warc), 5 * 1024 * 1024)]
    decoded = {
        p.url: decode_html(p.payload, p.content_type) for p in pages if isinstance(p, HtmlResponse)
    }
    assert len(decoded) == 16
    assert all(d.replaced == 0 for d in decoded.values())
    russian = decoded["http://01spb.ru/company/"]
    assert (russian.encoding, russian.source) == ("cp1251", "http")
    assert sum("а" <= c <= "я" for c in russian.text) > 1000
    assert decoded["http://037426.cn/"].encoding == "gbk"
    assert (decoded["http://041696.com/15477/list_6_4.html"].encoding, "meta") == (
        "gbk",
        decoded["http://041696.com/15477/list_6_4.html"].source,
    )
    assert decoded["http://05925.net/index.php/vod/type/id/53.html"].source == "bom"


def test_real_euc_jp_pages() -> None:
    warc = require_shared("warc", "resiliparse", "clueweb-quirk.warc.gz")
    results = []
    with warc.open("rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response":
                content_type = record.http_headers.get_header("Content-Type")
                results.append(decode_html(record.content_stream().read(), content_type))
    assert len(results) == 29
    assert {(d.encoding, d.source, d.replaced) for d in results} == {("euc_jp", "http", 0)}
    assert any("吉田カバン" in d.text for d in results)
