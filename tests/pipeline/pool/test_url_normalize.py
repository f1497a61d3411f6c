"""URL normalisation: the rules one by one, on the URLs of the real WARC files, and the ids."""

from __future__ import annotations

import hashlib
import re

import pytest

from pipeline.pool.records import HtmlResponse
from pipeline.pool.url_normalize import InvalidUrl, doc_id, normalize_url, url_domain
from pipeline.pool.warc_reader import iter_warc_records
from tests.helpers import require_shared


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host lower-case, default port and fragment removed, empty path -> "/"
        ("HTTP://WWW.Example.COM:80#top", "http://www.example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        # trailing dot of a fully qualified host
        ("https://example.com./a", "https://example.com/a"),
        # IDNA host
        ("https://Bücher.example/", "https://xn--bcher-kva.example/"),
        ("http://☃.net/", "http://xn--n3h.net/"),
        # user info never reaches the pool
        ("http://user:secret@example.com/x", "http://example.com/x"),
        # percent-encoding: unreserved decoded, others upper-cased, raw ones escaped
        ("http://e.org/%7euser/%41%2fb", "http://e.org/~user/A%2Fb"),
        ("http://e.org/a b/ü", "http://e.org/a%20b/%C3%BC"),
        ("http://e.org/100%", "http://e.org/100%25"),
        ("http://e.org/p?q=a%2bb&r=%e4", "http://e.org/p?q=a%2Bb&r=%E4"),
        # dot segments
        ("http://e.org/a/./b/../c", "http://e.org/a/c"),
        ("http://e.org/a/b/..", "http://e.org/a/"),
        ("http://e.org/../../x", "http://e.org/x"),
        # tracking parameters removed, the others kept in their order
        (
            "https://e.org/p?b=2&utm_source=x&a=1&UTM_Medium=y&gclid=1&fbclid=2&z=0",
            "https://e.org/p?b=2&a=1&z=0",
        ),
        (
            "https://e.org/p?mc_cid=1&mc_eid=2&yclid=3&msclkid=4&_ga=5&igshid=6&ref_src=7",
            "https://e.org/p",
        ),
        ("https://e.org/p?ref=home&id=3", "https://e.org/p?ref=home&id=3"),
        ("http://e.org/?", "http://e.org/"),
        ("http://e.org/p?a=1&&b=2", "http://e.org/p?a=1&b=2"),
        # surrounding whitespace and embedded newlines/tabs (as browsers strip them)
        ("  http://e.org/a\n/b\t \n", "http://e.org/a/b"),
        # IPv6 literal
        ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/relative/path",
        "example.com/no-scheme",
        "http://",
        "ftp://example.com/file",
        "mailto:someone@example.com",
        "javascript:alert(1)",
        "file:///example%20with%20spaces.png",
        "dns:example.com",
        "not%20a%20url%20at%20all",
        "http://example.com:99999/",
        "http://example.com:port/",
        "http://bad host.example/",
        "http://[::1/",
    ],
)
def test_invalid_urls_raise(url: str) -> None:
    with pytest.raises(InvalidUrl):
        normalize_url(url)


def test_invalid_url_is_a_value_error() -> None:
    assert issubclass(InvalidUrl, ValueError)


def test_normalization_is_idempotent() -> None:
    urls = [
        "HTTP://WWW.Example.COM:80/a/./b/../%7Euser?utm_source=x&id=3#top",
        "http://e.org/a b/ü?q=%e4&x",
        "https://Bücher.example/%2f",
    ]
    for url in urls:
        once = normalize_url(url)
        assert normalize_url(once) == once


def test_url_domain_strips_one_www_label_only() -> None:
    assert url_domain("https://www.example.org/a") == "example.org"
    assert url_domain("https://example.org/a") == "example.org"
    assert url_domain("https://math.stackexchange.com/q/1") == "math.stackexchange.com"
    assert url_domain("https://www2.example.org/") == "www2.example.org"
    assert url_domain("https://www.com/") == "www.com"
    assert url_domain("http://example.org:8080/") == "example.org"


def test_doc_id_is_16_hex_and_stable() -> None:
    url = normalize_url("https://www.example.com/a?utm_source=x")
    assert re.fullmatch(r"[0-9a-f]{16}", doc_id(url))
    assert doc_id(url) == doc_id(normalize_url("HTTPS://WWW.EXAMPLE.COM:443/a#frag"))
    assert doc_id(url) != doc_id(normalize_url("https://www.example.com/b"))
    # The definition (FORMAT.md), and a fixed value: ids must never change between releases.
    expected = hashlib.blake2b(b"https://www.example.com/a", digest_size=8).hexdigest()
    assert doc_id("https://www.example.com/a") == expected == "453bfabec994921e"


def test_every_url_of_the_real_warcs_normalizes() -> None:
    warc_dir = require_shared("warc")
    urls: list[str] = []
    for path in sorted(warc_dir.rglob("*.warc.gz")):
        with path.open("rb") as fh:
            urls.extend(
                e.url
                for e in iter_warc_records(fh, str(path), 5 * 1024 * 1024)
                if isinstance(e, HtmlResponse)
            )
    assert len(urls) >= 50
    for url in urls:
        normalized = normalize_url(url)
        assert normalized.startswith(("http://", "https://"))
        assert normalize_url(normalized) == normalized
        assert url_domain(normalized)
    assert (
        normalize_url("http://0615235.com/02mjqjo%7Bibotij2.btq?odmbtt=106&tdmbtt=121")
        == "http://0615235.com/02mjqjo%7Bibotij2.btq?odmbtt=106&tdmbtt=121"
    )
