"""Configuration of `mathcorpus shards`, validated before launch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.shards.code_filters import (
    CodeFilterConfig,
)
from pipeline.shards.text_sources import (
    FORMATS,
    SourceFields,
)
from tokenizer.shard_format import (
    DEFAULT_ROW_GROUP_TOKENS,
    DOMAINS,
)

TEXT_STAGES = ("files", "read", "tokenize", "write")
CODE_STAGES = ("files", "read", "code_filter", "dedup", "tokenize", "write")
# Folders no code tree should contribute (fnmatch patterns on the path relative to the root;
# `*` crosses folders).
DEFAULT_EXCLUDES = ("*__pycache__*", ".git/*", "*/.git/*", "*.egg-info/*", "node_modules/*")
# ~50M tokens per shard: ~75 MB on disk at uint16, and a shard's token arrays (~100 MiB) fit
# a worker's memory while it is sorted and written.
DEFAULT_SHARD_TOKENS = 50_000_000
# Characters handed to encode_batch at once: ~250k tokens, large enough that per-call overhead
# vanishes, small enough to bound a worker's memory.
DEFAULT_BATCH_CHARS = 1_000_000


def _valid_name(name: str) -> bool:
    return bool(name) and all(ch.isalnum() or ch in "._-" for ch in name)


@dataclass(frozen=True)
class ShardsConfig:
    """Everything that decides what `mathcorpus shards` writes (Beam options excluded)."""

    output: str = field(metadata=flag(metavar="DIR"))
    """Output folder (local, gs://, s3://): shards, manifest.json, stats.json, dead_letter/."""
    inputs: tuple[str, ...] = field(metadata=flag("--input", metavar="PATH"))
    """Input folders, files or globs (local, gs://, s3://)."""
    source: str
    """Source name recorded on every row and in the manifest (e.g. `openwebmath`, `arxiv`)."""
    domain: str = field(metadata=flag(choices=DOMAINS))
    """`math`, `code` or `text`: the mixture bucket the source belongs to."""
    tokenizer: str = field(metadata=flag(metavar="PATH"))
    """tokenizer.json (or a folder holding one)."""
    input_format: str = field(default="auto", metadata=flag(choices=("auto", *FORMATS)))
    """`auto`, `pool`, `jsonl`, `parquet` or `tree`. auto: a folder with pool-*.parquet is a
    pool, other folders are trees, files by suffix (.jsonl[.gz], .json[.gz], .parquet)."""
    text_field: str | None = None
    """Field holding the text (JSONL/Parquet); None: `content` for code, else `text`."""
    id_field: str | None = None
    """Field holding a stable document id; None: the content id (blake2b-64 of the text)."""
    url_field: str | None = "url"
    """Field holding a URL, kept as lineage when present."""
    path_field: str | None = None
    """Field holding a file path; None: `path` for code, else not read."""
    language_field: str | None = None
    """Field holding a language name; None: `language` for code, else not read."""
    exclude: tuple[str, ...] = field(
        default=DEFAULT_EXCLUDES, metadata=flag(metavar="PATTERN", empty_list=True)
    )
    """Tree files whose relative path matches one of these fnmatch patterns are not inputs."""
    code_filter: CodeFilterConfig = field(default_factory=CodeFilterConfig)
    """Code-only filters (languages, sizes, line lengths, generated files)."""
    dedup: bool = True
    """Code only: keep one file per exact content (sha256)."""
    num_shards: int = 0
    """Number of shards; 0: ceil(total tokens / shard_tokens), at least 1."""
    shard_tokens: int = DEFAULT_SHARD_TOKENS
    """Target tokens per shard when num_shards is 0."""
    row_group_tokens: int = DEFAULT_ROW_GROUP_TOKENS
    """Target tokens per Parquet row group."""
    batch_chars: int = DEFAULT_BATCH_CHARS
    """Characters per encode_batch call."""
    bos_token: str | None = None
    """Name of the bos token recorded in the manifest; None: found by the usual names."""
    eos_token: str | None = None
    """Name of the eos token; None: found by the usual names."""
    pad_token: str | None = None
    """Name of the pad token; None: found by the usual names."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if not self.inputs:
            problems.append("inputs: give --input PATH [...]")
        if not _valid_name(self.source):
            problems.append(
                f"source: letters, digits, '.', '_' or '-' only (e.g. openwebmath), "
                f"got {self.source!r}"
            )
        if self.domain not in DOMAINS:
            problems.append(f"domain: one of {DOMAINS}, got {self.domain!r}")
        if not self.tokenizer:
            problems.append("tokenizer: give --tokenizer PATH (tokenizer.json or its folder)")
        if self.input_format not in ("auto", *FORMATS):
            problems.append(f"input_format: one of {('auto', *FORMATS)}, got {self.input_format!r}")
        if self.input_format == "tree" and self.domain != "code":
            problems.append("input_format tree (a folder of source files) needs --domain code")
        if self.num_shards < 0:
            problems.append(f"num_shards: must be >= 0, got {self.num_shards}")
        if self.shard_tokens < 1:
            problems.append(f"shard_tokens: must be >= 1, got {self.shard_tokens}")
        # Arrow list offsets are int32: a row group holds fewer than 2**31 tokens.
        if not 1 <= self.row_group_tokens < 2**31:
            problems.append(f"row_group_tokens: must be in [1, 2**31), got {self.row_group_tokens}")
        if self.batch_chars < 1:
            problems.append(f"batch_chars: must be >= 1, got {self.batch_chars}")
        raise_if_problems("shards config", problems)

    @property
    def is_code(self) -> bool:
        return self.domain == "code"

    @property
    def stages(self) -> tuple[str, ...]:
        return CODE_STAGES if self.is_code else TEXT_STAGES

    def fields(self) -> SourceFields:
        """Field names with the code/text defaults resolved."""
        return SourceFields(
            text_field=self.text_field or ("content" if self.is_code else "text"),
            id_field=self.id_field,
            url_field=self.url_field,
            path_field=self.path_field or ("path" if self.is_code else None),
            language_field=self.language_field or ("language" if self.is_code else None),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["exclude"] = list(self.exclude)
        data["code_filter"] = self.code_filter.to_json()
        data["fields"] = self.fields().to_json()
        return data

    def output_fingerprint_fields(self, tokenizer_fingerprint: str) -> dict[str, Any]:
        """The fields that change the shards (not where they go, nor the tokenizer's path:
        its content, by fingerprint)."""
        data = self.to_json()
        for key in ("output", "overwrite", "tokenizer", "batch_chars"):
            data.pop(key)
        if not self.is_code:
            data.pop("code_filter")
            data.pop("dedup")
        data["tokenizer_fingerprint"] = tokenizer_fingerprint
        return data
