"""A tiny tokenizer trained on real text, for tests (seconds, not minutes).

Sample: the standard library's `json` and `email` packages (real code) and the first 20,000
characters of the real math pages in ../shared/data/html (skipped when that folder is absent).
"""

from __future__ import annotations

import gzip
import sysconfig
from pathlib import Path

from tests.conftest import SHARED_DATA
from tokenizer.bpe_training import BpeTrainingConfig, train_bpe

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TINY_VOCAB = 1500
# Characters of each page used for training and for round-trip tests: enough of every page's
# markup and text, while the whole set encodes in about a second.
PAGE_CHARS = 20_000


def read_page(path: Path) -> str:
    """A real page's HTML as text (UTF-8, undecodable bytes replaced; .html.gz unpacked)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def real_pages(label: str | None = None) -> list[tuple[str, str]]:
    """(relative path, text) of the real pages, optionally only those labelled `label`."""
    import csv

    labels = SHARED_DATA / "html" / "labels.csv"
    if not labels.exists():
        return []
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        (row["filename"], read_page(SHARED_DATA / row["filename"]))
        for row in rows
        if label is None or row["label"] == label
    ]


def training_texts() -> list[str]:
    code = [p.read_text(encoding="utf-8") for p in sorted((STDLIB / "json").glob("*.py"))]
    code += [p.read_text(encoding="utf-8") for p in sorted((STDLIB / "email").glob("*.py"))]
    pages = [text[:PAGE_CHARS] for _, text in real_pages("math")]
    return code + pages


def write_tiny_tokenizer(folder: Path, vocab_size: int = TINY_VOCAB) -> Path:
    """Train and save a tiny tokenizer; returns the tokenizer.json path."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe(training_texts(), BpeTrainingConfig(vocab_size=vocab_size))
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path
