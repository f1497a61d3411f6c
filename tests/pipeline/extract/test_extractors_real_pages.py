"""Both extractors on the real pages in ../shared/data/html (labels.csv: math / not-math).

What is measured, per backend, each printed (run with `-s` to see the table) and held to a floor:

- TeX recall on the math pages: the TeX expressions in the page source, found here by a method
  independent of pipeline.extract.math_markup (regular expressions over the raw HTML: MathJax
  scripts, x-tex annotations or alttext, d-math/dt-math bodies, and `$..$`, `$$..$$`, `\\(..\\)`,
  `\\[..\\]`, `\\begin..\\end` in the text), and the share of them present in the extracted
  text, white space ignored.
- MathML-only pages come out as readable LaTeX (specific fragments asserted).
- Main-content quality on the not-math pages: token precision / recall / F1 against the
  scrapinghub article-extraction-benchmark ground truth, and the trafilatura evaluation set's
  "with" (must be present) and "without" (must be absent) snippets. The latter set is
  trafilatura's own tuning data, so it flatters trafilatura.

The floors sit a little under what was measured when they were written (the figures are in
comments beside them), so a regression fails; the metrics are deterministic, not timings.
"""

from __future__ import annotations

import gzip
import html as html_lib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.extract.extractors import EXTRACTOR_NAMES, Extraction, extract_page, get_extractor
from tests.helpers import require_shared

# --- reading the pages ----------------------------------------------------------------------


def read_page(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


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


# --- an independent count of the TeX in a page's source -------------------------------------

_NO_SPACE = re.compile(r"\s+")
_SCRIPT_TEX = re.compile(r"<script[^>]*type=[\"']math/tex[^\"']*[\"'][^>]*>(.*?)</script>", re.S)
_MATH_BLOCK = re.compile(r"<math\b([^>]*)>(.*?)</math>", re.S)
_XTEX = re.compile(
    r"<annotation[^>]*encoding=[\"']application/x-tex[\"'][^>]*>(.*?)</annotation>", re.S
)
_ALTTEXT = re.compile(r"alttext=\"([^\"]*)\"")
_DISTILL = re.compile(r"<(d-math|dt-math)\b[^>]*>(.*?)</\1>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
# Blocks that are not page content: code, forms, hidden caches (momentum.html keeps a
# display:none div of formulas for its figures' scripts).
_NON_CONTENT = re.compile(
    r"<(script|style|textarea|noscript)\b.*?</\1>|<div[^>]*display:\s*none[^>]*>.*?</div>",
    re.S | re.I,
)
_MARKUP_MATH = re.compile(r"<(math|d-math|dt-math)\b.*?</\1>", re.S)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_TEXT_TEX = (
    re.compile(r"\$\$.+?\$\$", re.S),
    re.compile(r"\\\[.+?\\\]", re.S),
    re.compile(r"\\\(.+?\\\)", re.S),
    re.compile(r"\\begin\{([a-z]+\*?)\}.*?\\end\{\1\}", re.S),
    re.compile(r"\$[^$]+?\$", re.S),
)
_DISPLAYSTYLE = re.compile(r"^\{\\displaystyle(.*)\}$", re.S)


def squeeze(text: str) -> str:
    return _NO_SPACE.sub("", text)


def source_tex(html: str) -> list[str]:
    """TeX expressions in the page source, white space removed (markup bodies, or delimited)."""
    found: list[str] = [html_lib.unescape(m.group(1)) for m in _SCRIPT_TEX.finditer(html)]
    html = _NON_CONTENT.sub(" ", _COMMENT.sub("", html))
    for m in _MATH_BLOCK.finditer(html):
        xtex = _XTEX.search(m.group(2))
        alt = _ALTTEXT.search(m.group(1))
        tex = xtex.group(1) if xtex else alt.group(1) if alt else ""
        tex = html_lib.unescape(tex).strip()
        wrapper = _DISPLAYSTYLE.match(tex)
        found.append(wrapper.group(1) if wrapper else tex)
    found.extend(html_lib.unescape(m.group(2)) for m in _DISTILL.finditer(html))
    text = html_lib.unescape(_TAG.sub("", _MARKUP_MATH.sub(" ", html)))
    for pattern in _TEXT_TEX:  # longest delimiters first; each match is cut out of the text
        found.extend(m.group(0) for m in pattern.finditer(text))
        text = pattern.sub(" ", text)
    return [s for s in (squeeze(t) for t in found) if s]


def tex_recall(html: str, extracted: str) -> tuple[int, int]:
    """(expressions found in the extracted text, expressions in the source)."""
    expected = source_tex(html)
    text = squeeze(extracted)
    return sum(1 for tex in expected if tex in text), len(expected)


# Measured: resiliparse 0.990, trafilatura 0.985 (19 pages with TeX in their source, on the
# sites the extractor was developed against).
TEX_RECALL_FLOOR = {"resiliparse": 0.97, "trafilatura": 0.96}
# Sites added to ../shared/data after the extractor was written, whose recall issue 15 lifts:
# formulas as raw `$..$` between headings, lists and figures, which main-content selection drops.
SITES_BELOW_FLOOR = {"lilianweng": "issue 15: math-aware main-content decision"}


def site_of(filename: str) -> str:
    return filename.split("/")[1]  # html/<site>/...


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
def test_tex_recall_on_math_pages(
    backend: str, pages: list[Page], extractions: dict[str, dict[str, Extraction]]
) -> None:
    rows = [
        r
        for r in tex_recall_by_page(pages, extractions, backend)
        if site_of(r[3]) not in SITES_BELOW_FLOOR
    ]
    assert len(rows) >= 19
    mean = sum(r[0] for r in rows) / len(rows)
    print(f"\nTeX recall, {backend}: mean {mean:.3f} over {len(rows)} pages with TeX")
    for frac, hit, total, filename in rows[:4]:
        print(f"    {frac:.2f} ({hit}/{total}) {filename}")
    assert mean >= TEX_RECALL_FLOOR[backend], f"{backend}: TeX recall {mean:.3f}"


@pytest.mark.parametrize("backend", EXTRACTOR_NAMES)
@pytest.mark.parametrize(
    "site",
    [
        pytest.param(site, marks=pytest.mark.xfail(strict=True, reason=reason))
        for site, reason in SITES_BELOW_FLOOR.items()
    ],
)
def test_tex_recall_on_sites_added_later(
    site: str, backend: str, pages: list[Page], extractions: dict[str, dict[str, Extraction]]
) -> None:
    rows = [r for r in tex_recall_by_page(pages, extractions, backend) if site_of(r[3]) == site]
    assert rows, f"no math page with TeX from {site}"
    mean = sum(r[0] for r in rows) / len(rows)
    print(f"\nTeX recall on {site}, {backend}: mean {mean:.3f} over {len(rows)} pages")
    assert mean >= TEX_RECALL_FLOOR[backend], f"{backend} on {site}: TeX recall {mean:.3f}"


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

_WORD = re.compile(r"\w+")


def token_prf(predicted: str, truth: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 of predicted text against the ground truth."""
    pred = Counter(_WORD.findall(predicted.lower()))
    gold = Counter(_WORD.findall(truth.lower()))
    overlap = sum((pred & gold).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(gold.values()) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# Measured mean F1: resiliparse 0.912 (P 0.863, R 0.988), trafilatura 0.948 (P 0.932, R 0.983).
SCRAPINGHUB_FLOOR = {"resiliparse": 0.89, "trafilatura": 0.92}


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


# Measured: with 0.924 / 0.945, without 0.661 / 0.876 (resiliparse / trafilatura). resiliparse
# keeps more comment sections, "related articles" boxes and bylines than trafilatura.
WITH_FLOOR = {"resiliparse": 0.90, "trafilatura": 0.92}
WITHOUT_FLOOR = {"resiliparse": 0.63, "trafilatura": 0.85}


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
            text = _NO_SPACE.sub(" ", by_file[filename].text)
            for snippet in item.get("with", []):
                with_total += 1
                with_hits += _NO_SPACE.sub(" ", snippet) in text
            for snippet in item.get("without", []):
                without_total += 1
                without_hits += _NO_SPACE.sub(" ", snippet) not in text
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
