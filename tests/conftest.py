"""Shared fixtures: where the real third-party data lives (never copied into the repo)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the project folder; MATHCORPUS_SHARED_DATA overrides it.
SHARED_DATA = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def require_shared(*parts: str) -> Path:
    """Return a path under the shared data folder, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not available: {path} is absent (../shared/data)")
    return path


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
