"""Measures of extraction quality on labelled real pages: TeX recall and main-content F1.

The TeX in a page's source is found by regular expressions over the raw HTML (MathJax scripts,
x-tex annotations or alttext, d-math/dt-math bodies, `$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`,
`\\begin..\\end` in the text), independently of pipeline.extract.math_markup, so the measure
does not share the extractor's mistakes. Used by tests/pipeline/extract and
bench/extraction_quality.py.
"""

from __future__ import annotations

import gzip
import html as html_lib
import re
from collections import Counter
from pathlib import Path


def read_page(path: Path) -> str:
    """A stored page as text (.gz decompressed, bad bytes replaced)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def site_of(filename: str) -> str:
    """The site folder of a labels.csv filename (`html/<site>/...`)."""
    return filename.split("/")[1]


NO_SPACE = re.compile(r"\s+")
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
    return NO_SPACE.sub("", text)


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
