"""Configuration of the pool pipeline (`mathcorpus pool`), validated before launch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.dedup.config import DedupOptions
from pipeline.extract.config import DEFAULT_EXTRACTOR, DEFAULT_MIN_TEXT_CHARS, ExtractSettings
from pipeline.extract.extractors import EXTRACTOR_NAMES

# Common Crawl's public HTTPS endpoint for paths in a warc.paths.gz listing.
COMMON_CRAWL_BASE_URL = "https://data.commoncrawl.org/"
# Common Crawl truncates payloads at 1 MiB; 5 MiB leaves room for other crawls while still
# bounding memory against giant or decompression-bomb records (bytes).
DEFAULT_MAX_RECORD_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class PoolConfig:
    """Everything that decides what `mathcorpus pool` writes (Beam options excluded)."""

    output: str = field(metadata=flag(metavar="DIR"))
    """Output folder (local path, gs:// or s3://): Parquet files, stats.json, dead_letter/."""
    inputs: tuple[str, ...] = field(default=(), metadata=flag("--input", metavar="PATTERN"))
    """WARC/ARC file paths or glob patterns (local, gs://, s3://)."""
    paths_listing: str | None = field(default=None, metadata=flag(metavar="FILE"))
    """A Common Crawl `warc.paths.gz` listing (local path or http(s) URL) of files to fetch."""
    base_url: str = COMMON_CRAWL_BASE_URL
    """Prefix joined to each relative path of `paths_listing`."""
    max_files: int | None = None
    """Use only the first N files of the inputs (after sorting); None: all."""
    fetch_cache: str | None = None
    """Folder where remote WARC files are downloaded (a download is resumed, and a file still
    there is not fetched again). None: `<output>/_fetch_cache` for a local output, else the
    system temp folder."""
    keep_fetched: bool = False
    """Keep each downloaded WARC file after its file is processed; default: delete it (a Common
    Crawl file is ~1 GB)."""
    fetch_attempts: int = 6
    """HTTP attempts per file before it is dead-lettered."""
    fetch_timeout_s: float = field(default=60.0, metadata=flag("--fetch-timeout"))
    """Seconds without progress before an HTTP attempt is abandoned."""
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    """Records whose HTTP body is larger than this (bytes) are dropped as `too_large`."""
    extractor: str = field(default=DEFAULT_EXTRACTOR, metadata=flag(choices=EXTRACTOR_NAMES))
    """Text extractor: `resiliparse` (default, faster and better on the real-page tests) or
    `trafilatura`. Both turn math into LaTeX the same way."""
    min_text_chars: int = DEFAULT_MIN_TEXT_CHARS
    """Pages whose extracted text is shorter (characters) are dropped as `too_short`."""
    languages: tuple[str, ...] = field(default=(), metadata=flag(metavar="CODE", empty_list=True))
    """Languages to keep (fastText lid.176 codes, e.g. `en`, `zh`; the paper kept English and
    Chinese). Empty: keep all and record the language."""
    min_language_score: float = 0.0
    """With `languages` set, pages whose language score is below this are dropped."""
    url_dedup: bool = True
    """Keep only the newest capture of each normalised URL."""
    dedup: bool = True
    """After language id, remove exact and MinHash near-duplicates (DeepSeekMath
    section 2.1 deduplicates the crawl by URL and near-duplicates before scoring).
    Off: `mathcorpus dedup` can be run later on the pool."""
    dedup_options: DedupOptions = field(default_factory=DedupOptions)
    """How deduplication is done (exact, near, MinHash bands x rows, ...)."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if not self.inputs and not self.paths_listing:
            problems.append("inputs: give --input PATTERN [...] or --paths-listing FILE")
        if self.paths_listing and not self.base_url.startswith(("http://", "https://")):
            problems.append(f"base_url: must be an http(s) URL, got {self.base_url!r}")
        if self.max_files is not None and self.max_files < 1:
            problems.append(f"max_files: must be >= 1, got {self.max_files}")
        if self.fetch_attempts < 1:
            problems.append(f"fetch_attempts: must be >= 1, got {self.fetch_attempts}")
        if self.fetch_timeout_s <= 0:
            problems.append(f"fetch_timeout_s: must be > 0, got {self.fetch_timeout_s}")
        if self.max_record_bytes < 1024:
            problems.append(f"max_record_bytes: must be >= 1024, got {self.max_record_bytes}")
        problems.extend(self.extract_settings().problems())
        if self.dedup and not (self.dedup_options.exact or self.dedup_options.near):
            problems.append("dedup: exact and near dedup are both off; use --no-dedup instead")
        raise_if_problems("pool config", problems)

    def extract_settings(self) -> ExtractSettings:
        """The extraction settings of this pool run (the extract stage's config)."""
        return ExtractSettings(
            self.extractor, self.min_text_chars, self.languages, self.min_language_score
        )

    def to_json(self) -> dict[str, Any]:
        """The resolved config as JSON-ready data (written next to the output)."""
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["languages"] = list(self.languages)
        return data

    def output_fingerprint_fields(self) -> dict[str, Any]:
        """The fields that change the rows written (not where they go or how to overwrite)."""
        data = self.to_json()
        for key in (
            "output",
            "overwrite",
            "fetch_cache",
            "keep_fetched",
            "fetch_attempts",
            "fetch_timeout_s",
        ):
            data.pop(key)
        return data
