"""Cross-validated precision and recall on the real labelled pages of ../shared/data/html.

Reported, not tuned to: the classifier runs with the paper's settings, and the set has few math
pages (labels.csv counts them), so the figures are noisy. The numbers are printed (run with `-s`).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.extract.extractors import extract_page, get_extractor
from pipeline.mine.classifier import ClassifierConfig, cross_validate


@pytest.mark.slow
def test_cross_validated_precision_recall_on_real_labels(
    shared_data: Path, html_labels: list[dict[str, str]], tmp_path: Path
) -> None:
    extractor = get_extractor("resiliparse")
    docs: list[tuple[str, bool]] = []
    for row in html_labels:
        data = (shared_data / row["filename"]).read_bytes()
        if row["filename"].endswith(".gz"):
            data = gzip.decompress(data)
        text = extract_page(data.decode("utf-8", errors="replace"), extractor).text
        docs.append((text, row["label"] == "math"))
    report = cross_validate(docs, folds=5, config=ClassifierConfig(), work_dir=str(tmp_path))
    print(
        "\ncross-validated on ../shared/data/html:",
        json.dumps({"pooled": report["pooled"], "ranking": report["ranking"]}),
    )
    pooled = report["pooled"]
    assert report["documents"] == len(html_labels)
    math_labels = sum(row["label"] == "math" for row in html_labels)
    assert pooled["tp"] + pooled["fn"] == report["math_documents"] == math_labels
    assert pooled["tp"] + pooled["fp"] + pooled["fn"] + pooled["tn"] == len(html_labels)
    # Precision is None when no page reaches probability 0.5 (reported as such, not tuned).
    assert pooled["recall"] is not None
    assert report["ranking"]["roc_auc"] is not None
