"""Configuration of the mining loop (`mathcorpus mine`) and of `mathcorpus classifier train`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.mine.classifier import ClassifierConfig
from pipeline.mine.domain_discovery import (
    DEFAULT_AUTO_ACCEPT,
    DEFAULT_DOMAIN_THRESHOLD,
    DEFAULT_MIN_PREFIX_PAGES,
)
from pipeline.mine.seed_files import source_exists
from pipeline.shards.text_sources import SourceFields

# Files of the mining workdir (FORMAT.md, "Mining workdir").
STATE_FILE = "mining.json"
"""The loop's state: iterations done, status, config fingerprint."""
SUMMARY_FILE = "summary.json"
"""Written when the loop stops: status, why it stopped, the final iteration."""
STATS_FILE = "stats.json"
"""An iteration's funnel (iter_k/stats.json)."""
ANNOTATIONS_FILE = "annotations.csv"
"""An iteration's URL-prefix decisions (iter_k/annotations.csv)."""
HISTOGRAM_FILE = "histogram.json"
"""The recall step's score histogram (iter_k/recall/)."""
CUT_FILE = "cut.json"
"""The recall step's score threshold for the token budget (iter_k/recall/)."""
DOMAINS_FILE = "domains.csv"
"""The recall step's per-domain collected fractions (iter_k/recall/)."""
RECALL_DIR = "recall"
"""An iteration's recall outputs (iter_k/recall/)."""
SAMPLE_DIR = "sample"
"""An iteration's training sample, drawn by Beam (iter_k/sample/)."""
MODEL_DIR = "model"
"""An iteration's classifier (iter_k/model/)."""
EXPANSION_DIR = "expansion"
"""An iteration's seed expansion (iter_k/expansion/)."""
NEGATIVES_DIR = "negatives"
"""The negatives sampled from the pool when no --negatives are given."""
RATE_FILE = "rate.json"
"""The negatives' sampling rate (negatives/)."""
FINAL_DIR = "final"
"""The last iteration's collection, a pool-format folder."""


@dataclass(frozen=True)
class MiningConfig:
    """Everything that decides what `mathcorpus mine` writes (Beam options excluded)."""

    pool: str = field(metadata=flag(metavar="DIR"))
    """Pool folder (pool-*.parquet; local, gs:// or s3://)."""
    positives: tuple[str, ...] = field(metadata=flag(metavar="SRC"))
    """Positive seed sources (any Beam file system): pool folders, folders of .parquet /
    .jsonl[.gz] files, or such files."""
    workdir: str = field(metadata=flag(metavar="DIR"))
    """Folder for all iterations' state (iter_k/, negatives/, final/, summary; local, gs:// or
    s3://): the driver keeps only temporary files."""
    negatives: tuple[str, ...] = field(default=(), metadata=flag(metavar="SRC", empty_list=True))
    """Negative seed sources; empty: a seeded random sample of pool pages (docs/stages/mine.md)."""
    iterations: int = 4
    """Most iterations K (the paper ran four)."""
    budget_tokens: int | None = None
    """Collect the top-scored pages up to this many tokens (the paper: 40B in iteration 1)."""
    min_score: float | None = None
    """Instead of a budget: collect every page whose math probability is at least this."""
    domain_threshold: float = DEFAULT_DOMAIN_THRESHOLD
    """A domain with more than this share of its pool pages collected is math-related (0.10)."""
    auto_accept: float = field(default=DEFAULT_AUTO_ACCEPT, metadata=flag(metavar="F"))
    """Auto-accept rule: a prefix is accepted when this share of its pages was collected."""
    min_prefix_pages: int = DEFAULT_MIN_PREFIX_PAGES
    """Prefixes with fewer pool pages are not listed for annotation."""
    pause_for_annotation: bool = False
    """Stop after writing each iteration's annotation file with empty decisions (a person
    fills them in and reruns the same command; `auto_accept` is then not applied)."""
    converged: float = 0.98
    """Stop when this share of an iteration's collection was collected in the previous one."""
    negatives_per_positive: float = 1.0
    """Sampled negatives per positive of seed 1 (the paper: 500k each)."""
    seed: int = 0
    """Seeds the negative sample (the classifier has its own seed)."""
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    """fastText settings (defaults: the paper's)."""
    tokenizer: str | None = None
    """tokenizer.json used to count tokens; None: estimated as characters / 4."""
    text_field: str = "text"
    """Text field of JSONL/Parquet seed sources."""
    id_field: str | None = None
    """Id field of JSONL/Parquet seed sources (None: content id; pool sources use doc_id)."""
    num_shards: int = 0
    """Parquet files of the final collection; 0 lets the runner decide."""
    overwrite: bool = False
    """Start over when the work folder holds a run with another config."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.pool:
            problems.append("pool: give the pool folder (--pool DIR)")
        if not self.positives:
            problems.append("positives: give at least one seed source (--positives SRC)")
        if not self.workdir:
            problems.append("workdir: give a work folder (--workdir DIR)")
        if self.iterations < 1:
            problems.append(f"iterations: must be >= 1, got {self.iterations}")
        if (self.budget_tokens is None) == (self.min_score is None):
            problems.append("give exactly one of --budget-tokens N or --min-score P")
        if self.budget_tokens is not None and self.budget_tokens < 1:
            problems.append(f"budget_tokens: must be >= 1, got {self.budget_tokens}")
        if self.min_score is not None and not 0.0 < self.min_score < 1.0:
            problems.append(f"min_score: must be in (0, 1), got {self.min_score}")
        for name in ("domain_threshold", "auto_accept", "converged"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}: must be in [0, 1], got {value}")
        if self.min_prefix_pages < 1:
            problems.append(f"min_prefix_pages: must be >= 1, got {self.min_prefix_pages}")
        if not self.negatives_per_positive > 0:
            problems.append(
                f"negatives_per_positive: must be > 0, got {self.negatives_per_positive}"
            )
        if self.num_shards < 0:
            problems.append(f"num_shards: must be >= 0, got {self.num_shards}")
        missing = [s for s in (*self.positives, *self.negatives) if not source_exists(s)]
        problems.extend(f"seed source {s} does not exist or holds no files" for s in missing)
        raise_if_problems("mining config", problems)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["positives"] = list(self.positives)
        data["negatives"] = list(self.negatives)
        return data

    def fingerprint_fields(self) -> dict[str, Any]:
        """Fields that decide the iterations' results (not where, how many, or when to stop)."""
        data = self.to_json()
        for key in ("workdir", "overwrite", "pause_for_annotation", "iterations", "converged"):
            data.pop(key)
        return data

    @property
    def fields(self) -> SourceFields:
        return SourceFields(text_field=self.text_field, id_field=self.id_field)


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """What `mathcorpus classifier train` trains on and where it writes the model."""

    positives: tuple[str, ...] = field(metadata=flag(metavar="SRC"))
    """Positive seed sources (any Beam file system; read on the driver): pool folders, folders
    of .parquet / .jsonl[.gz] files, or such files."""
    negatives: tuple[str, ...] = field(metadata=flag(metavar="SRC"))
    """Negative seed sources, the same kinds."""
    output: str = field(metadata=flag(metavar="DIR"))
    """Model folder (any Beam file system): model.bin, model.json, scoring_table.npz."""
    text_field: str = "text"
    """Text field of JSONL/Parquet seed sources."""
    id_field: str | None = None
    """Id field of JSONL/Parquet seed sources (None: content id; pool sources use doc_id)."""
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    """fastText settings (defaults: the paper's)."""

    @property
    def fields(self) -> SourceFields:
        return SourceFields(text_field=self.text_field, id_field=self.id_field)
