"""Configuration of text extraction: the settings the pool uses, and `mathcorpus extract`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.core.config_errors import raise_if_problems
from pipeline.core.config_flags import flag
from pipeline.extract.extractors import EXTRACTOR_NAMES

DEFAULT_EXTRACTOR = "resiliparse"
DEFAULT_MIN_TEXT_CHARS = 100


@dataclass(frozen=True)
class ExtractSettings:
    """How a decoded page becomes text with its math as LaTeX, and which pages are kept."""

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

    def problems(self) -> list[str]:
        """Every problem of these settings (empty when valid)."""
        problems = []
        if self.extractor not in EXTRACTOR_NAMES:
            problems.append(f"extractor: must be one of {EXTRACTOR_NAMES}, got {self.extractor!r}")
        if self.min_text_chars < 0:
            problems.append(f"min_text_chars: must be >= 0, got {self.min_text_chars}")
        if not 0.0 <= self.min_language_score <= 1.0:
            problems.append(f"min_language_score: must be in [0, 1], got {self.min_language_score}")
        bad_langs = [lang for lang in self.languages if not lang.isalpha() or not lang.islower()]
        if bad_langs:
            problems.append(f"languages: lower-case codes such as `en`, got {bad_langs}")
        return problems


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that decides what `mathcorpus extract` writes (Beam options excluded)."""

    output: str = field(metadata=flag(metavar="DIR"))
    """Output folder (local path, gs:// or s3://): pages-*.jsonl.gz, stats.json, dead_letter/."""
    inputs: tuple[str, ...] = field(metadata=flag("--input", metavar="PATTERN"))
    """HTML files or glob patterns (.html, .htm, .html.gz; local, gs://, s3://). A file's URL
    is its path (file:// for local files)."""
    settings: ExtractSettings = field(default_factory=ExtractSettings)
    """Extraction settings."""
    overwrite: bool = False
    """Replace a finished output written with a different config instead of stopping."""

    def __post_init__(self) -> None:
        problems = list(self.settings.problems())
        if not self.output:
            problems.append("output: give an output folder (--output DIR)")
        if not self.inputs:
            problems.append("inputs: give --input PATTERN [...]")
        raise_if_problems("extract config", problems)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["settings"]["languages"] = list(self.settings.languages)
        return data

    def output_fingerprint_fields(self) -> dict[str, Any]:
        """The fields that change the rows written (not where they go or how to overwrite)."""
        data = self.to_json()
        for key in ("output", "overwrite"):
            data.pop(key)
        return data
