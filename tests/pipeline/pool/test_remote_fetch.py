"""Listings and resumable downloads, against a real HTTP server on 127.0.0.1 that serves the real
WARC files and misbehaves on purpose (cut connections, 503s, 429s, stalls, no Range support)."""

from __future__ import annotations

import collections
import gzip
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.core.config_errors import ConfigError
from pipeline.pool.remote_fetch import (
    FetchError,
    RetryPolicy,
    cache_name,
    fetch_to_cache,
    read_paths_listing,
    resolve_listing,
)
from tests.helpers import require_shared

# Tiny delays: the retries are real, the waiting is not.
FAST = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.01, timeout_s=5.0)
WARC = "dolma/sample-0000.warc.gz"  # 214,006 bytes


class WarcServer(ThreadingHTTPServer):
    """Serves files under `roots` at /<mode>/<relative path>; the mode says how to misbehave:

    plain: normal, with Range support; norange: always 200 with the whole file;
    cut / cutnorange: the first request of a path sends half the body and drops the
    connection; flaky: 503 for the first two requests; limited: 429 (Retry-After: 0) first;
    down: always 503; stall: the first request sends 100 bytes and then nothing for 0.6 s.
    """

    daemon_threads = True

    def __init__(self, roots: list[Path]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.roots = roots
        self.requests: list[tuple[str, str | None]] = []
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def url(self, mode: str, relative: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{mode}/{relative}"

    def ranges(self, path_part: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path_part in path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WarcServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode, _, relative = self.path.lstrip("/").partition("/")
        with self.server.lock:
            self.server.requests.append((self.path, self.headers.get("Range")))
            self.server.seen[self.path] += 1
            nth = self.server.seen[self.path]
        if mode == "down" or (mode == "flaky" and nth <= 2):
            return self._empty(503)
        if mode == "limited" and nth == 1:
            return self._empty(429, {"Retry-After": "0"})
        file = next((r / relative for r in self.server.roots if (r / relative).is_file()), None)
        if file is None:
            return self._empty(404)
        data = file.read_bytes()
        start = 0
        requested = self.headers.get("Range")
        if requested and "norange" not in mode:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(data):
                return self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if mode.startswith("cut") and nth == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if mode == "stall" and nth == 1:
            self.wfile.write(body[:100])
            self.wfile.flush()
            time.sleep(0.6)
            self.close_connection = True
            return None
        self.wfile.write(body)
        return None

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WarcServer]:
    listing_root = tmp_path / "served"
    listing_root.mkdir()
    srv = WarcServer([require_shared("warc"), listing_root])
    # A short poll interval (seconds) lets shutdown() return at once.
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def original(relative: str) -> bytes:
    return require_shared("warc", *relative.split("/")).read_bytes()


def test_plain_download_and_no_second_request(server: WarcServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    url = server.url("plain", WARC)
    path = fetch_to_cache(url, str(cache), FAST)
    assert Path(path).read_bytes() == original(WARC)
    assert Path(path).name.endswith("-sample-0000.warc.gz")
    assert sorted(p.name for p in cache.iterdir()) == [Path(path).name]  # no .part left
    assert fetch_to_cache(url, str(cache), FAST) == path
    assert len(server.requests) == 1  # the second fetch found the file in the cache


def test_cut_connection_resumes_with_range(server: WarcServer, tmp_path: Path) -> None:
    path = fetch_to_cache(server.url("cut", WARC), str(tmp_path), FAST)
    data = original(WARC)
    assert Path(path).read_bytes() == data
    first, second = server.ranges("/cut/")
    assert first is None
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", second).group(1))
    assert 0 < resumed_at < len(data)


def test_resume_restarts_from_zero_without_range_support(
    server: WarcServer, tmp_path: Path
) -> None:
    path = fetch_to_cache(server.url("cutnorange", WARC), str(tmp_path), FAST)
    assert Path(path).read_bytes() == original(WARC)
    first, second = server.ranges("/cutnorange/")
    assert first is None and second is not None  # asked to resume, got the whole file (200)


def test_a_partial_file_from_an_earlier_run_is_resumed(server: WarcServer, tmp_path: Path) -> None:
    url = server.url("plain", WARC)
    data = original(WARC)
    part = tmp_path / (cache_name(url) + ".part")
    part.write_bytes(data[:50_000])
    path = fetch_to_cache(url, str(tmp_path), FAST)
    assert Path(path).read_bytes() == data
    assert server.ranges("/plain/") == ["bytes=50000-"]


def test_a_stale_oversized_part_file_is_replaced(server: WarcServer, tmp_path: Path) -> None:
    url = server.url("plain", WARC)
    data = original(WARC)
    (tmp_path / (cache_name(url) + ".part")).write_bytes(data + b"junk")
    path = fetch_to_cache(url, str(tmp_path), FAST)
    assert Path(path).read_bytes() == data
    assert server.ranges("/plain/") == [f"bytes={len(data) + 4}-", None]  # 416, then anew


def test_server_errors_are_retried(server: WarcServer, tmp_path: Path) -> None:
    relative = "warcio/example.warc.gz"
    path = fetch_to_cache(server.url("flaky", relative), str(tmp_path), FAST)
    assert Path(path).read_bytes() == original(relative)
    assert len(server.ranges("/flaky/")) == 3
    path = fetch_to_cache(server.url("limited", relative), str(tmp_path), FAST)
    assert Path(path).read_bytes() == original(relative)
    assert len(server.ranges("/limited/")) == 2


def test_a_stalled_transfer_times_out_and_resumes(server: WarcServer, tmp_path: Path) -> None:
    policy = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.01, timeout_s=0.2)
    path = fetch_to_cache(server.url("stall", WARC), str(tmp_path), policy)
    assert Path(path).read_bytes() == original(WARC)
    assert server.ranges("/stall/") == [None, "bytes=100-"]


def test_gives_up_after_the_attempts(server: WarcServer, tmp_path: Path) -> None:
    policy = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.01, timeout_s=5.0)
    with pytest.raises(FetchError, match=r"3 attempt\(s\).*HTTP 503"):
        fetch_to_cache(server.url("down", WARC), str(tmp_path), policy)
    assert len(server.requests) == 3
    assert not any(p.name.endswith(".warc.gz") for p in tmp_path.iterdir())


def test_not_found_fails_at_once(server: WarcServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch_to_cache(server.url("plain", "no/such.warc.gz"), str(tmp_path), FAST)
    assert len(server.requests) == 1


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(attempts=2, base_delay_s=0.001, max_delay_s=0.01, timeout_s=1.0)
    with pytest.raises(FetchError, match="2 attempt"):
        fetch_to_cache(f"http://127.0.0.1:{port}/x.warc.gz", str(tmp_path), policy)


def test_the_cache_must_be_local() -> None:
    with pytest.raises(ValueError, match="local folder"):
        fetch_to_cache("https://x.example/a.warc.gz", "gs://bucket/cache", FAST)


def test_cache_names_are_unique_per_url() -> None:
    a = cache_name("https://data.commoncrawl.org/crawl-data/A/warc/CC-00001.warc.gz")
    b = cache_name("https://data.commoncrawl.org/crawl-data/B/warc/CC-00001.warc.gz")
    assert a != b
    assert a.endswith("-CC-00001.warc.gz") and b.endswith("-CC-00001.warc.gz")
    assert cache_name("https://x.example/").endswith("-download")
    assert "/" not in cache_name("https://x.example/a%2F..%2Fb c.warc.gz")


def test_listings(server: WarcServer, tmp_path: Path) -> None:
    lines = ["crawl-data/CC-MAIN-2024-10/segments/1/warc/CC-1.warc.gz", "", "  x/y.warc.gz  "]
    text = "\n".join(lines) + "\n"
    gz = tmp_path / "served" / "warc.paths.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    plain = tmp_path / "warc.paths"
    plain.write_text(text)
    expected = [lines[0], "x/y.warc.gz"]
    assert read_paths_listing(str(gz)) == expected
    assert read_paths_listing(str(plain)) == expected
    assert read_paths_listing(server.url("plain", "warc.paths.gz")) == expected
    urls = resolve_listing([*expected, "https://other.example/z.warc.gz"], "https://cc.example")
    assert urls == [
        "https://cc.example/crawl-data/CC-MAIN-2024-10/segments/1/warc/CC-1.warc.gz",
        "https://cc.example/x/y.warc.gz",
        "https://other.example/z.warc.gz",
    ]
    with pytest.raises(ValueError, match="base_url"):
        resolve_listing(expected, "data.commoncrawl.org")


def test_a_listing_fetched_file_by_file(server: WarcServer, tmp_path: Path) -> None:
    names = ["warcio/example.warc.gz", "resiliparse/clipped.warc.gz", "jwarc/cc.warc.gz"]
    urls = resolve_listing(names, server.url("cut", ""))
    paths = [fetch_to_cache(url, str(tmp_path / "cache"), FAST) for url in urls]
    for name, path in zip(names, paths, strict=True):
        assert Path(path).read_bytes() == original(name)
    assert len(set(paths)) == 3


def test_retry_policy_validation_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        RetryPolicy(attempts=0, base_delay_s=-1, max_delay_s=-2, timeout_s=0)
    assert isinstance(info.value, ValueError)
    assert len(info.value.problems) == 4
    for field in ("attempts", "base_delay_s", "max_delay_s", "timeout_s"):
        assert field in str(info.value)


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=1.0, max_delay_s=8.0, timeout_s=1.0)
    delays = [policy.delay_s(n, "https://a.example/x") for n in range(1, 8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert delays == [policy.delay_s(n, "https://a.example/x") for n in range(1, 8)]
    assert delays != [policy.delay_s(n, "https://a.example/y") for n in range(1, 8)]
