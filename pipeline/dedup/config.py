"""Configuration of deduplication: inside the pool pipeline and as `mathcorpus dedup`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.dedup.connected_components import DEFAULT_MAX_GATHERED_EDGES, DEFAULT_MAX_ROUNDS
from pipeline.dedup.minhash import MinHashConfig

# One kept page in this many (by a hash of its doc_id) contributes its near-duplicate pairs to
# the report's similarity sample: enough pairs to see the threshold, a small shuffle.
DEFAULT_REPORT_SAMPLE_RATE = 8


@dataclass(frozen=True)
class DedupOptions:
    """What deduplication does to a set of pool rows."""

    exact: bool = field(default=True, metadata=flag("--no-exact-dedup"))
    """Remove pages whose normalised text (NFKC, case folded, whitespace collapsed) is equal."""
    near: bool = field(default=True, metadata=flag("--no-near-dedup"))
    """Remove near-duplicates found by MinHash LSH (`minhash` below)."""
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    """Shingles, permutations and bands x rows (default 14 x 8: threshold ~0.72)."""
    max_rounds: int = field(default=DEFAULT_MAX_ROUNDS, metadata=flag("--max-cc-rounds"))
    """Large-star/small-star rounds of connected components, distributed (they converge in
    O(log n) rounds; near-duplicate clusters, mostly stars, settle in 0-2)."""
    max_gathered_edges: int = field(
        default=DEFAULT_MAX_GATHERED_EDGES, metadata=flag("--max-cc-gathered-edges")
    )
    """Edges still active after the last round that are resolved by union-find on one worker
    (memory ~200 bytes a node); a run with more stops with an error instead of a wrong answer.
    0: never gather (any edge left stops the run)."""
    report_sample_rate: int = DEFAULT_REPORT_SAMPLE_RATE
    """One kept page in N (by doc_id hash) has its duplicate pairs measured for the report."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.minhash, MinHashConfig):
            problems.append(f"minhash must be a MinHashConfig, got {type(self.minhash).__name__}")
        if self.max_rounds < 1:
            problems.append(f"max_rounds must be at least 1, got {self.max_rounds}")
        if self.max_gathered_edges < 0:
            problems.append(f"max_gathered_edges must be >= 0, got {self.max_gathered_edges}")
        if self.report_sample_rate < 1:
            problems.append(f"report_sample_rate must be at least 1, got {self.report_sample_rate}")
        raise_if_problems("DedupOptions", problems)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DedupConfig:
    """Everything that decides what `mathcorpus dedup` writes (Beam options excluded)."""

    input: str = field(metadata=flag(metavar="DIR"))
    """Pool folder to deduplicate (local, gs://, s3://): its `pool-*.parquet` are read."""
    output: str = field(metadata=flag(metavar="DIR"))
    """Output pool folder: kept pages, duplicates/, band_index/, dedup_report.json."""
    against: tuple[str, ...] = field(default=(), metadata=flag(metavar="DIR"))
    """Incremental mode: deduplicated pool folders whose band_index/ the input is compared
    with. Their pages are never removed or rewritten; input pages that duplicate one of them
    (or share its URL) are removed."""
    options: DedupOptions = field(default_factory=DedupOptions)
    """What is removed and how (see DedupOptions)."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.input:
            problems.append("input: give a pool folder (--input DIR)")
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if self.input and self.output and self.input.rstrip("/") == self.output.rstrip("/"):
            problems.append("output must differ from input (the input is read while writing)")
        if self.output and self.output.rstrip("/") in {a.rstrip("/") for a in self.against}:
            problems.append("output must differ from every --against folder")
        if not (self.options.exact or self.options.near or self.against):
            problems.append("nothing to do: exact and near dedup are both off")
        raise_if_problems("DedupConfig", problems)

    def output_fingerprint_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("output")
        fields.pop("overwrite")
        return fields

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
