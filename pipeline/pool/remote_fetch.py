"""Common Crawl listings and resumable HTTP(S) downloads into a local cache (no Beam import,
except lazily for listings on gs:// or s3://).

`resolve_listing` turns `warc.paths.gz` paths into URLs; `fetch_to_cache` downloads one file with
retries, backoff and Range resume, checks its size and renames it into place. Cache layout and
retry rules: docs/stages/pool.md.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import requests
import urllib3.exceptions

from pipeline.core.config_errors import raise_if_problems

# Bytes per read from the network and per write to the cache file.
CHUNK_BYTES = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


class FetchError(RuntimeError):
    """A file could not be downloaded (after every attempt, or with a final HTTP answer)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard `fetch_to_cache` tries before giving up on a file."""

    attempts: int = 6
    """HTTP attempts per file (the first one included)."""
    base_delay_s: float = 1.0
    """Delay before the second attempt (seconds); it doubles for each further attempt."""
    max_delay_s: float = 60.0
    """Upper bound of one delay (seconds), also for a server's Retry-After."""
    timeout_s: float = 60.0
    """Seconds to connect, and seconds without receiving a byte, before an attempt is abandoned."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.attempts < 1:
            problems.append(f"attempts: must be >= 1, got {self.attempts}")
        if self.base_delay_s < 0:
            problems.append(f"base_delay_s: must be >= 0, got {self.base_delay_s}")
        if self.max_delay_s < self.base_delay_s:
            problems.append(
                f"max_delay_s: must be >= base_delay_s ({self.base_delay_s}), "
                f"got {self.max_delay_s}"
            )
        if self.timeout_s <= 0:
            problems.append(f"timeout_s: must be > 0, got {self.timeout_s}")
        raise_if_problems("retry policy", problems)

    def delay_s(self, attempt: int, key: str) -> float:
        """Delay after failed attempt number `attempt` (1-based): exponential with "equal
        jitter" (half fixed, half spread). The spread comes from a hash of `key` and the
        attempt, so it differs between files (workers do not retry in step) but a run is
        reproducible."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        digest = hashlib.blake2b(f"{key}#{attempt}".encode(), digest_size=8).digest()
        fraction = int.from_bytes(digest, "big") / 2**64
        return ceiling / 2 + fraction * ceiling / 2


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def read_paths_listing(path_or_url: str) -> list[str]:
    """The non-empty lines of a listing (gzip or plain text; a local path, http(s) URL, gs:// or
    s3:// path), in order."""
    data = _read_bytes(path_or_url)
    if data.startswith(_GZIP_MAGIC):
        data = gzip.decompress(data)
    lines = io.StringIO(data.decode("utf-8"))
    return [line.strip() for line in lines if line.strip()]


def resolve_listing(paths: list[str], base_url: str) -> list[str]:
    """URLs for a listing's paths: relative paths are joined to `base_url`; absolute URLs are
    kept as they are."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    base = base_url.rstrip("/") + "/"
    return [p if "://" in p else base + p.lstrip("/") for p in paths]


def cache_name(url: str) -> str:
    """The file name of a URL in the cache: `<12 hex chars of blake2b(url)>-<basename>`."""
    basename = PurePosixPath(unquote(urlsplit(url).path)).name
    safe = _SAFE_NAME_RE.sub("_", basename).strip("._") or "download"
    digest = hashlib.blake2b(url.encode("utf-8"), digest_size=6).hexdigest()
    return f"{digest}-{safe}"


def fetch_to_cache(url: str, cache_dir: str, policy: RetryPolicy) -> str:
    """Download `url` into `cache_dir` (docs/stages/pool.md) and return the local path."""
    if "://" in cache_dir:
        raise ValueError(f"the fetch cache must be a local folder, got {cache_dir!r}")
    final = os.path.join(cache_dir, cache_name(url))
    if os.path.exists(final):
        return final
    os.makedirs(cache_dir, exist_ok=True)
    part = final + ".part"
    last_error = ""
    with requests.Session() as session:
        for attempt in range(1, policy.attempts + 1):
            try:
                _attempt(session, url, part, policy.timeout_s)
            except _Retryable as exc:
                last_error = str(exc)
                if attempt == policy.attempts:
                    break
                delay = policy.delay_s(attempt, url)
                if exc.retry_after_s is not None:
                    delay = min(max(delay, exc.retry_after_s), policy.max_delay_s)
                time.sleep(delay)
                continue
            os.replace(part, final)
            return final
    raise FetchError(f"{url}: gave up after {policy.attempts} attempt(s); last error: {last_error}")


def _attempt(session: requests.Session, url: str, part: str, timeout_s: float) -> None:
    """One HTTP request that appends to (or restarts) the `.part` file until it is complete.

    Raises _Retryable for failures worth another attempt and FetchError for final answers.
    """
    have = os.path.getsize(part) if os.path.exists(part) else 0
    # identity: the bytes must be the file's bytes (a server must not gzip a .warc.gz again).
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with session.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
            expected_total = _check_status(response, have, part)
            if response.status_code == 200:
                have = 0  # the server ignored the range: start again
            with open(part, "ab" if have else "wb") as out:
                _copy_body(response, out)
    # Reading the raw stream surfaces urllib3's errors (a connection cut mid-body is an
    # IncompleteRead / ProtocolError, a stalled one a ReadTimeoutError), not requests' own.
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
    size = os.path.getsize(part)
    if expected_total is not None and size != expected_total:
        if size > expected_total:
            _discard(part)  # more bytes than announced: the part file cannot be trusted
        raise _Retryable(f"got {size} of {expected_total} bytes")


def _copy_body(response: requests.Response, out: BinaryIO) -> None:
    """Write the body as it arrives. `read1` returns what one socket read gives, so every byte
    received is on disk before a timeout or a cut can strike (`read(n)` would wait for n bytes
    and lose them); `decode_content=False` keeps the file's own bytes."""
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: urllib3 >= 2
    while chunk := read(CHUNK_BYTES, decode_content=False):
        out.write(chunk)


def _check_status(response: requests.Response, have: int, part: str) -> int | None:
    """The expected final size of the file (None when unknown), or raise for the status."""
    status = response.status_code
    if status == 206:
        match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != have:
            _discard(part)  # an answer for another range: restart from zero next time
            raise _Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
        return int(match.group(3)) if match.group(3) != "*" else None
    if status == 200:
        length = response.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None
    if status == 416 and have:
        # The range starts at or past the end: the part is stale (or complete but unverifiable).
        _discard(part)
        raise _Retryable("416 Range Not Satisfiable for the partial file; restarting")
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status}", _retry_after_s(response))
    raise FetchError(f"{response.url}: HTTP {status} {response.reason}")


def _discard(part: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(part)


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _read_bytes(path_or_url: str) -> bytes:
    if path_or_url.startswith(("http://", "https://")):
        # Fetched like a WARC file (retries, size check) into a folder that is removed after.
        with tempfile.TemporaryDirectory(prefix="mathcorpus-listing-") as folder:
            path = fetch_to_cache(path_or_url, folder, RetryPolicy())
            with open(path, "rb") as fh:
                return fh.read()
    if "://" in path_or_url:
        # Beam's file systems (gs://, s3://), imported only for such paths.
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path_or_url, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            return fh.read()
    with open(path_or_url, "rb") as fh:
        return fh.read()
