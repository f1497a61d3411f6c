"""Both extractors on the real pages in ../shared/data/html (labels.csv: math / not-math).

What is measured, per backend, each printed (run with `-s` to see the table) and held to a floor:

- TeX recall on the math pages, per site: the TeX expressions in the page source, found by a
  method independent of pipeline.extract.math_markup (pipeline/extract/evaluation.py), and the
  share of them present in the extracted text, white space ignored.
- MathML-only pages come out as readable LaTeX (specific fragments asserted).
- Main-content quality on the not-math pages: token precision / recall / F1 against the
  scrapinghub article-extraction-benchmark ground truth, and the trafilatura evaluation set's
  "with" (must be present) and "without" (must be absent) snippets. The latter set is
  trafilatura's own tuning data, so it flatters trafilatura.

The floors sit a little under what was measured when they were written (the figures are in
comments beside them), so a regression fails; the metrics are deterministic, not timings.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.extract.evaluation import (
    NO_SPACE,
    read_page,
    site_of,
    source_tex,
    squeeze,
    tex_recall,
    token_prf,
)
from pipeline.extract.extractors import EXTRACTOR_NAMES, Extraction, extract_page, get_extractor
from tests.helpers import require_shared


@dataclass(frozen=True)
class Page:
    filename: str  # relative to ../shared/data, as in labels.csv
    label: str
    html: str


@pytest.fixture(scope="module")
def pages(shared_data: Path, html_labels: list[dict[str, str]]) -> list[Page]:
    return [
        Page(row["filename"], row["label"], read_page(shared_data / row["filename"]))
        for row in html_labels
    ]


@pytest.fixture(scope="module")
def extractions(pages: list[Page]) -> dict[str, dict[str, Extraction]]:
    """backend name -> filename -> Extraction, every labelled page, computed once."""
    out: dict[str, dict[str, Extraction]] = {}
    for name in EXTRACTOR_NAMES:
        extractor = get_extractor(name)
        out[name] = {page.filename: extract_page(page.html, extractor) for page in pages}
    return out


# --- TeX recall on the math pages, per site ------------------------------------------------

# Goal (issue 15): TeX recall >= 0.95 on every math site, the mean of its pages. Measured with
# the math-aware main-content decision: resiliparse 0.999 distill, 1.000 lilianweng, 1.000
# mathjax_demos, 1.000 on the single pages of readability and trafilatura; trafilatura 0.997,
# 1.000, 1.000, 1.000 (bench/extraction_quality.py prints the leave-one-site-out figures).
SITE_TEX_RECALL_FLOOR = 0.95
# No single page loses more than this share of its TeX (measured worst: 0.995 resiliparse,
# 0.98 trafilatura, distill/ctc and understanding-gnns).
PAGE_TEX_RECALL_FLOOR = 0.9


def tex_recall_by_page(
    pages: list[Page], extractions: dict[str, dict[str, Extraction]], backend: str
) -> list[tuple[float, int, int, str]]:
    """(recall, hit, total, filename) for each math page with TeX in its source, worst first."""
    rows = []
    for page in pages:
        if page.label != "math":
            continue
        hit, total = tex_recall(page.html, extractions[backend][page.filename].text)
        if total:
            rows.append((hit / total, hit, total, page.filename))
    return sorted(rows)


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
def test_tex_recall_on_every_math_site(
    backend: str, pages: list[Page], extractions: dict[str, dict[str, Extraction]]
) -> None:
    rows = tex_recall_by_page(pages, extractions, backend)
    math_sites = {site_of(p.filename) for p in pages if p.label == "math"}
    by_site: dict[str, list[float]] = {}
    for frac, _hit, _total, filename in rows:
        by_site.setdefault(site_of(filename), []).append(frac)
    # Every site with math pages whose source holds TeX is measured (labels.csv decides).
    assert len(by_site) >= 3 and set(by_site) <= math_sites
    print(f"\nTeX recall, {backend}, per site (mean, min, pages):")
    for site, fracs in sorted(by_site.items()):
        print(f"    {site:14s} {sum(fracs) / len(fracs):.3f} {min(fracs):.3f} {len(fracs)}")
    for site, fracs in by_site.items():
        mean = sum(fracs) / len(fracs)
        assert mean >= SITE_TEX_RECALL_FLOOR, f"{backend} on {site}: TeX recall {mean:.3f}"
    worst = rows[0]
    assert worst[0] >= PAGE_TEX_RECALL_FLOOR, f"{backend}: {worst}"


# --- MathML without TeX comes out as LaTeX --------------------------------------------------

MATHML_PAGES = ("html/mathjax_demos/page__mml-chtml.html", "html/readability/mathjax.html")


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
@pytest.mark.parametrize("filename", MATHML_PAGES)
def test_mathml_pages_read_as_latex(
    filename: str, backend: str, extractions: dict[str, dict[str, Extraction]]
) -> None:
    extraction = extractions[backend][filename]
    text = extraction.text
    assert extraction.n_math == 13
    assert "$a\\neq0$" in text
    assert "$ax^{2}+bx+c=0$" in text
    assert "x=\\frac{-b\\pm\\sqrt{b^{2}-4ac}}{2a}" in text  # the quadratic formula
    assert "\\dot{x} & =\\sigma(y-x)" in text  # Lorenz equations, an aligned table
    assert "\\sum_{k=1}^{n}a_{k}b_{k}" in text  # Cauchy-Schwarz
    assert "\\sqrt{3x-1}+(1+x)^{2}" in text
    assert "<math" not in text and "mjx-" not in text
    # Every formula once: MathJax v3's CHTML rendering and assistive MathML are not doubled.
    assert text.count("\\frac{-b\\pm") == 1


# --- main content on not-math pages ---------------------------------------------------------

# Measured mean F1: resiliparse 0.950 (P 0.923, R 0.988), trafilatura 0.948 (P 0.930, R 0.984).
# The goal (issue 15) is 0.93 for the default extractor; its skipped selectors were chosen on
# half of these pages (held-out half: bench/extraction_quality.py).
SCRAPINGHUB_FLOOR = {"resiliparse": 0.93, "trafilatura": 0.93}


def test_scrapinghub_ground_truth(extractions: dict[str, dict[str, Extraction]]) -> None:
    truth = json.loads(require_shared("html", "scrapinghub", "ground-truth.json").read_text())
    print("\nscrapinghub article bodies: mean token precision / recall / F1")
    f1s = {}
    for name, by_file in extractions.items():
        scores = []
        for key, item in truth.items():
            filename = f"html/scrapinghub/{key}.html.gz"
            if filename in by_file:
                scores.append(token_prf(by_file[filename].text, item["articleBody"]))
        assert len(scores) >= 150
        p, r, f = (sum(s[i] for s in scores) / len(scores) for i in range(3))
        f1s[name] = f
        print(f"  {name:12s} P {p:.3f}  R {r:.3f}  F1 {f:.3f}  ({len(scores)} pages)")
    for name, f1 in f1s.items():
        assert f1 >= SCRAPINGHUB_FLOOR[name], f"{name}: F1 {f1:.3f}"


# Measured: with 0.908 / 0.945, without 0.746 / 0.874 (resiliparse / trafilatura). resiliparse
# keeps more "related articles" boxes and teasers than trafilatura; comments and bylines go.
WITH_FLOOR = {"resiliparse": 0.89, "trafilatura": 0.92}
WITHOUT_FLOOR = {"resiliparse": 0.72, "trafilatura": 0.85}


def test_trafilatura_eval_snippets(extractions: dict[str, dict[str, Extraction]]) -> None:
    evaldata = json.loads(require_shared("html", "trafilatura", "evaldata.json").read_text())
    by_name = {}
    for folder in ("cache", "eval"):
        for path in require_shared("html", "trafilatura", folder).iterdir():
            by_name.setdefault(path.name, f"html/trafilatura/{folder}/{path.name}")
    print("\ntrafilatura eval: 'with' snippets present / 'without' snippets absent")
    for name, by_file in extractions.items():
        with_hits = with_total = without_hits = without_total = pages = 0
        for item in evaldata.values():
            filename = by_name.get(item["file"])
            if filename is None or filename not in by_file:
                continue
            pages += 1
            text = NO_SPACE.sub(" ", by_file[filename].text)
            for snippet in item.get("with", []):
                with_total += 1
                with_hits += NO_SPACE.sub(" ", snippet) in text
            for snippet in item.get("without", []):
                without_total += 1
                without_hits += NO_SPACE.sub(" ", snippet) not in text
        with_rate, without_rate = with_hits / with_total, without_hits / without_total
        print(
            f"  {name:12s} with {with_rate:.3f} ({with_hits}/{with_total})  "
            f"without {without_rate:.3f} ({without_hits}/{without_total})  ({pages} pages)"
        )
        assert pages >= 150
        assert with_rate >= WITH_FLOOR[name], f"{name}: with {with_rate:.3f}"
        assert without_rate >= WITHOUT_FLOOR[name], f"{name}: without {without_rate:.3f}"


def test_not_math_pages_rarely_report_math(
    pages: list[Page], extractions: dict[str, dict[str, Extraction]]
) -> None:
    """The maths pre-pass must not invent maths on ordinary pages."""
    not_math = [p for p in pages if p.label == "not-math"]
    for name, by_file in extractions.items():
        converted = [p.filename for p in not_math if by_file[p.filename].n_math]
        print(f"\n  {name}: {len(converted)}/{len(not_math)} not-math pages had maths markup")
        assert len(converted) <= 0.02 * len(not_math), converted


WIKIPEDIA_PAGES = {
    "html/readability/wikipedia-3.html": 66,
    "html/trafilatura/cache/en.wikipedia.org.tsne.html": 34,
}


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
def test_wikipedia_formulas_come_out_once(
    backend: str, pages: list[Page], extractions: dict[str, dict[str, Extraction]]
) -> None:
    """MediaWiki ships each formula three times (MathML, annotation, image alt): one survives."""
    by_name = {p.filename: p for p in pages}
    for filename, n_formulas in WIKIPEDIA_PAGES.items():
        extraction = extractions[backend][filename]
        assert extraction.n_math == n_formulas
        assert "{\\displaystyle" not in extraction.text
        source = Counter(source_tex(by_name[filename].html))
        text = squeeze(extraction.text)
        for tex, count in source.items():
            assert text.count(f"${tex}$") <= count, tex  # delimited: a whole formula


def test_get_extractor() -> None:
    import importlib.metadata

    for name in EXTRACTOR_NAMES:
        extractor = get_extractor(name)
        assert extractor.name == name
        assert extractor.version.startswith(importlib.metadata.version(name) + "+math")
    with pytest.raises(ValueError, match="resiliparse, trafilatura"):
        get_extractor("boilerpipe")
