"""Session fixtures over the real third-party data (helpers live in tests/helpers.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.helpers import require_shared


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def html_labels() -> list[dict[str, str]]:
    """Rows of ../shared/data/html/labels.csv: filename (relative to data/), label, reason."""
    with require_shared("html", "labels.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def real_page_texts(
    shared_data: Path, html_labels: list[dict[str, str]]
) -> list[tuple[dict[str, str], str]]:
    """(labels.csv row, text extracted with the default extractor) for every real page."""
    import gzip

    from pipeline.extract.extractors import extract_page, get_extractor

    extractor = get_extractor("resiliparse")
    out = []
    for row in html_labels:
        data = (shared_data / row["filename"]).read_bytes()
        if row["filename"].endswith(".gz"):
            data = gzip.decompress(data)
        out.append((row, extract_page(data.decode("utf-8", errors="replace"), extractor).text))
    return out
