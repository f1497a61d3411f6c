"""Configuration of `mathcorpus decontaminate`, and the names of what it writes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.decontaminate.benchmarks import (
    DEFAULT_ID_FIELD,
    DEFAULT_TEXT_FIELDS,
)

DECONTAM_FORMAT_VERSION = 1
STAGE = "decontaminate"
DECONTAM_STAGES = (STAGE,)
KEPT = "kept"
REMOVED = "removed"
REMOVED_DIR = "removed"
REPORT_FILE = "contamination.json"
INDEX_FILE = "benchmark_index.npz"
# Per-item leak counts written by the pipeline, turned into contamination.json by the driver.
REPORT_PARTS = "_report"
# Example URLs kept per leaked item in the report.
EXAMPLE_URLS = 3
# Columns a pool file must have for decontamination (the rest are carried as they are).
REQUIRED_COLUMNS = ("doc_id", "url", "text")

MATCHED_ITEM_TYPE = pa.struct(
    [
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("windows", pa.int32(), nullable=False),
    ]
)
REMOVED_FIELDS = (
    pa.field("benchmark", pa.string(), nullable=False),
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("matched_span", pa.string(), nullable=False),
    pa.field("match_rule", pa.string(), nullable=False),
    pa.field("matched_items", pa.list_(MATCHED_ITEM_TYPE), nullable=False),
)


@dataclass(frozen=True)
class DecontaminateConfig:
    """Everything that decides what `mathcorpus decontaminate` writes (Beam options excluded)."""

    output: str = field(metadata=flag(metavar="DIR"))
    """Output folder (local, gs://, s3://): kept pages, removed/, contamination.json, stats."""
    inputs: tuple[str, ...] = field(
        default=(), metadata=flag("--input", metavar="DIR", required=True)
    )
    """Pool-format folders (their `pool-*.parquet`) or Parquet file globs: the pages to check."""
    benchmarks: tuple[str, ...] = field(default=(), metadata=flag(metavar="PATH", required=True))
    """Benchmark files or folders, `[FORMAT=]PATH` (see pipeline/decontaminate/benchmarks.py)."""
    ngram: int = 10
    """n: a page sharing any n-gram with a benchmark text is removed (10 in the paper)."""
    min_short_grams: int = 3
    """Benchmark texts of min_short_grams to n-1 grams remove pages containing them exactly;
    shorter ones are ignored (3 in the paper)."""
    jsonl_text_fields: tuple[str, ...] = field(
        default=DEFAULT_TEXT_FIELDS, metadata=flag(metavar="FIELD")
    )
    """Fields read as benchmark texts from files of the generic `jsonl` format."""
    jsonl_id_field: str = DEFAULT_ID_FIELD
    """Item id field of `jsonl` files (the line number where a record lacks it)."""
    num_shards: int = 0
    """Parquet files for the kept pages; 0 lets the runner decide."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if not self.inputs:
            problems.append("inputs: give --input DIR [DIR ...] (pool-format folders)")
        if not self.benchmarks:
            problems.append("benchmarks: give --benchmarks PATH [PATH ...]")
        if not 2 <= self.ngram <= 64:
            problems.append(f"ngram: must be in [2, 64], got {self.ngram}")
        if not 1 <= self.min_short_grams <= self.ngram:
            problems.append(
                f"min_short_grams: must be in [1, ngram={self.ngram}], got {self.min_short_grams}"
            )
        if not self.jsonl_text_fields:
            problems.append("jsonl_text_fields: name at least one field")
        if self.num_shards < 0:
            problems.append(f"num_shards: must be >= 0, got {self.num_shards}")
        out = self.output.rstrip("/")
        if any(i.rstrip("/") == out for i in self.inputs):
            problems.append(f"output: {self.output!r} is also an input; choose another folder")
        raise_if_problems("decontaminate config", problems)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("inputs", "benchmarks", "jsonl_text_fields"):
            data[key] = list(data[key])
        return data

    def output_fingerprint_fields(self, benchmark_digests: dict[str, str]) -> dict[str, Any]:
        """The fields that change the rows written, plus the benchmark files' sha256 (an
        edited benchmark file makes a rerun redo the work)."""
        data = self.to_json()
        for key in ("output", "overwrite"):
            data.pop(key)
        data["benchmark_sha256"] = dict(sorted(benchmark_digests.items()))
        return data
