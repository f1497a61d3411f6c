"""Turn the maths on an HTML page into LaTeX text where it stood, before text extraction.

`rewrite_math` replaces each maths element (MathJax, MathML, KaTeX, TeX images, ...) with a text
node holding its TeX, `$...$` inline and `$$...$$` display, so any backend keeps it;
`has_math_markers` lets pages without maths skip the parse. Markup kinds: docs/stages/extract.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from lxml import etree

from pipeline.extract.mathml_to_latex import local_name, mathml_to_latex

MATH_FORMATS = (
    "distill",
    "katex",
    "math_container",
    "mathjax_output",
    "mathjax_script",
    "mathml",
    "tex_delimiters",
    "tex_image",
    "wikipedia",
)

# has_math_markers looks for two needles, each one `str.find` scan from <body> on (about 1 ns
# per character: ~0.12 ms a scan on the real pages, which average 167 k characters; sixteen
# separate `in` tests cost 2 ms, as much as resiliparse itself). Every markup kind we rewrite
# has "math" or "atex" in its markup, in a context that prose and URLs ("mathematics",
# "rank-math", "latex-gloves") lack:
#   "math" after <, : or the prefixes of d-math, dt-math, mwe-math, mjx-math, katex-mathml;
#   or followed by /tex, /mml, -container, tex (MathJax scripts, Stack Exchange, mathtex);
#   "atex" after k (KaTeX), or "latex" followed by . ? or " (latex.php, codecogs' png.latex?,
#   latex.codecogs.com, class="latex").
# Known gap: a page whose only maths is mimeTeX images (`mimetex.cgi?...`) is not flagged.
_MATH_PREFIXES = ("<", ":", "d-", "t-", "mwe-", "mjx-", "katex-")
_MATH_SUFFIXES = ("math/tex", "math/mml", "math-container", "mathtex")
_LATEX_FOLLOWERS = (".", "?", '"')

# TeX delimiters in running text, each pattern gated by a substring test (a regex alternation
# scans ten times slower than `in`): \( \), \[ \], $$ $$, \begin{env}, and $..$ that does not
# look like money (no space inside the dollars, no digit right after the closing one).
_DELIMITER_PATTERNS = (
    ("\\(", re.compile(r"\\\(.{1,2000}?\\\)", re.DOTALL)),
    ("\\[", re.compile(r"\\\[.{1,4000}?\\\]", re.DOTALL)),
    ("$$", re.compile(r"\$\$[^$]{1,4000}?\$\$")),
    ("\\begin{", re.compile(r"\\begin\{[A-Za-z*]+\}")),
    # Starts with the literal `$` (so the regex engine can skip to candidates); the lookbehind
    # then rejects a `$` preceded by a backslash, another `$` or a word character.
    ("$", re.compile(r"\$(?<![\\$\w]\$)[^$\s](?:[^$\n]{0,300}?[^$\s\\])?\$(?![\d$])")),
)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_STYLE_WRAPPER = re.compile(r"^\{\\(?:displaystyle|textstyle|scriptstyle)\s*(.*)\}$", re.DOTALL)
_DELIMITED = re.compile(r"^(?:\$\$.*\$\$|\$.*\$|\\\(.*\\\)|\\\[.*\\\]|\\begin\{.*\})$", re.DOTALL)
# Servers that render TeX from the image URL's query string.
_TEX_IMAGE_SRC = re.compile(
    r"(?:latex\.codecogs\.com|codecogs\.com/[^?]*latex|/latex\.php|mimetex|mathtex|"
    r"chart\.googleapis\.com/chart\?cht=tx|/tex2img|\.latex\?)",
    re.IGNORECASE,
)
_TEX_IMAGE_CLASSES = frozenset({"latex", "tex", "mathtex", "math", "equation", "latexrender"})
_PLACEHOLDER_ALTS = frozenset({"image", "img", "equation", "formula", "latex", "math", "tex"})
_CODECOGS_PREFIX = re.compile(r"^(?:\\(?:dpi\{\d+\}|bg_\w+|fg_\w+|inline|large|small|huge)\s*)+")
# Words that mark rendered maths (MathJax v2 output, KaTeX's HTML) to be dropped beside the source.
_MATHJAX_V2_OUTPUT = frozenset(
    {
        "MathJax_Preview",
        "MathJax",
        "MathJax_Display",
        "MathJax_SVG",
        "MathJax_SVG_Display",
        "MathJax_CHTML",
        "MathJax_MathML",
        "MathJax_PHTML",
        "MJX_Assistive_MathML",
    }
)


@dataclass(frozen=True, slots=True)
class MathRewrite:
    html: str
    """The page with every maths element replaced by a text node `$...$` or `$$...$$`."""
    formats: tuple[str, ...]
    """Sorted markup kinds found, from `MATH_FORMATS`."""
    n_expressions: int
    """Maths expressions converted (TeX already delimited in the text is not counted)."""


def has_math_markers(html: str) -> bool:
    """True when the page may hold maths markup; False proves it holds none we rewrite."""
    # The <head> (a fifth of a page on average, inline CSS and scripts) holds no maths markup.
    start = max(html.find("<body"), 0)
    return _has_math_needle(html, start) or _has_tex_needle(html, start)


def _has_math_needle(html: str, start: int = 0) -> bool:
    i = html.find("math", start)
    while i >= 0:
        if html[max(0, i - 6) : i].endswith(_MATH_PREFIXES) or html.startswith(_MATH_SUFFIXES, i):
            return True
        i = html.find("math", i + 4)
    return False


def _has_tex_needle(html: str, start: int = 0) -> bool:
    i = html.find("atex", start)
    while i >= 0:
        before = html[i - 1 : i]
        if before == "k" or (before == "l" and html[i + 4 : i + 5] in _LATEX_FOLLOWERS):
            return True
        i = html.find("atex", i + 4)
    return False


def has_tex_delimiters(text: str) -> bool:
    """True when text holds TeX between delimiters (`$x$`, `\\(x\\)`, `$$x$$`, `\\[x\\]`)."""
    return any(
        needle in text and pattern.search(text) is not None
        for needle, pattern in _DELIMITER_PATTERNS
    )


def count_tex(text: str) -> int:
    """TeX expressions between delimiters in text (each counted once: a `$$x$$` is not also
    two `$..$`; `\\begin{env}` counts its opening)."""
    count = 0
    for needle, pattern in _DELIMITER_PATTERNS:
        if needle in text:
            text, n = pattern.subn(" ", text)
            count += n
    return count


def tex_spans(text: str) -> list[str]:
    """The delimited TeX expressions in text, delimiters included (as `count_tex` counts)."""
    spans: list[str] = []
    for needle, pattern in _DELIMITER_PATTERNS:
        if needle in text:
            spans.extend(m.group(0) for m in pattern.finditer(text))
            text = pattern.sub(" ", text)
    return spans


def clean_tex(tex: str) -> str:
    """TeX trimmed, without MediaWiki's `{\\displaystyle ...}` wrapper."""
    tex = tex.strip()
    match = _STYLE_WRAPPER.match(tex)
    if match and _balanced(match.group(1)):
        tex = match.group(1).strip()
    return tex


def _balanced(tex: str) -> bool:
    depth = 0
    escaped = False
    for char in tex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def delimit(tex: str, display: bool) -> str:
    """`$tex$` or `$$tex$$`; empty TeX stays empty."""
    if not tex:
        return ""
    return f"$${tex}$$" if display else f"${tex}$"


def _classes(element: etree._Element) -> set[str]:
    return set((element.get("class") or "").split())


def _replace_with_text(element: etree._Element, text: str) -> None:
    """Put text where element stood (keeping the text after it) and remove the element."""
    parent = element.getparent()
    if parent is None:
        return
    joined = text + (element.tail or "")
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + joined
    else:
        parent.text = (parent.text or "") + joined
    parent.remove(element)  # lxml removes the tail with the element: it was copied above


def _unwrap_figures(element: etree._Element) -> None:
    """Turn the `<figure>`s and `<figcaption>`s around a formula into `<div>`s.

    Distill and many course pages set key equations in figures; trafilatura deletes every
    figure, and resiliparse's main-content pass drops it (and on distill/ctc.html everything
    after it). A figure holding maths is content for this corpus.
    """
    for ancestor in element.iterancestors("figure", "figcaption"):
        ancestor.tag = "div"


# XPath runs in C; walking a 5,000-element page in Python costs milliseconds per pass.
# MathML tags keep their prefix in the HTML parser (`m:math`), hence the substring test.
_MATH_ELEMENTS = etree.XPath(
    "//*[local-name()='math' or substring-after(local-name(), ':')='math']"
)
_CLASS_CONTAINS = etree.XPath("//*[contains(@class, $name)]")


def _first_math(element: etree._Element) -> etree._Element | None:
    for node in element.iter():
        if local_name(node) == "math":
            return node
    return None


class _Rewriter:
    """One page's rewrite: each `_rewrite_*` pass handles one markup kind, outermost first."""

    def __init__(self, doc: etree._Element, html: str) -> None:
        self.doc = doc
        self.html = html  # substring tests on the source skip passes whose markup is absent
        self.formats: set[str] = set()
        self.count = 0

    def replace(self, element: etree._Element, tex: str, display: bool, kind: str) -> None:
        tex = clean_tex(tex)
        self.formats.add(kind)
        if tex:
            self.count += 1
        _unwrap_figures(element)
        # TeX that arrives delimited already (Stack Exchange spans, some alt texts) stays as is.
        _replace_with_text(element, tex if _DELIMITED.match(tex) else delimit(tex, display))

    def classed(self, name: str) -> list[etree._Element]:
        """Elements whose class list holds name (XPath finds candidates at C speed)."""
        return [
            e
            for e in _CLASS_CONTAINS(self.doc, name=name)
            if name in (e.get("class") or "").split() and _attached(e)
        ]

    def classed_any(self, names: frozenset[str], *needles: str) -> list[etree._Element]:
        """Elements with any class in names; needles are substrings those classes contain."""
        found = {e for needle in needles for e in _CLASS_CONTAINS(self.doc, name=needle)}
        return [
            e for e in found if names.intersection((e.get("class") or "").split()) and _attached(e)
        ]

    def run(self) -> None:
        self._drop_code_and_note_tex_delimiters()
        passes: tuple[tuple[str, Callable[[], None]], ...] = (
            ("mwe-math-element", self._rewrite_wikipedia),
            ("katex", self._rewrite_katex),
            ("mjx-container", self._rewrite_mathjax_output),
            ("math/", self._rewrite_mathjax_scripts),
            ("-math", self._rewrite_distill),
            ("math-container", self._rewrite_math_containers),
            ("math", self._rewrite_mathml),
            ("tex", self._rewrite_tex_images),
        )
        for needle, rewrite_pass in passes:
            if needle in self.html:
                rewrite_pass()

    def _drop_code_and_note_tex_delimiters(self) -> None:
        # Scripts (but MathJax's maths scripts) and styles: every backend discards them, dropping
        # them here shrinks the page it re-parses and leaves only page text for the check below.
        for element in list(self.doc.iter("script", "style")):
            kind = (element.get("type") or "").strip().lower()
            if not kind.startswith(("math/tex", "math/mml")):
                _replace_with_text(element, "")
        # Before any rewrite, so that the `$` we insert are not mistaken for the page's own.
        body = next(self.doc.iter("body"), None)
        text = etree.tostring(body, method="text", encoding="unicode") if body is not None else ""
        if has_tex_delimiters(text):
            self.formats.add("tex_delimiters")

    def _rewrite_wikipedia(self) -> None:
        # MediaWiki hides the MathML (display:none, which main-content extractors drop) beside a
        # fallback image: the whole element is replaced, so the formula comes out once.
        for element in self.classed("mwe-math-element"):
            math = _first_math(element)
            tex = mathml_to_latex(math) if math is not None else ""
            if not tex:
                img = next(element.iter("img"), None)
                tex = (img.get("alt") or "") if img is not None else ""
            display = (math is not None and math.get("display") == "block") or any(
                "display" in (span.get("class") or "") for span in element.iter("span", "img")
            )
            self.replace(element, tex, display, "wikipedia")

    def _rewrite_katex(self) -> None:
        for element in self.classed("katex"):
            if not _attached(element):  # inside a katex-display already replaced
                continue
            math = _first_math(element)
            tex = mathml_to_latex(math) if math is not None else ""
            parent = element.getparent()
            display = parent is not None and "katex-display" in _classes(parent)
            target = parent if display and parent is not None else element
            self.replace(target, tex, display, "katex")
        # KaTeX's visual rendering left without its MathML twin would read as garbled text.
        for element in self.classed("katex-html"):
            _replace_with_text(element, "")

    def _rewrite_mathjax_output(self) -> None:
        for element in list(self.doc.iter("mjx-container")):
            if not _attached(element):
                continue
            math = _first_math(element)
            tex = (element.get("data-latex") or "").strip()
            if not tex and math is not None:
                tex = (math.get("data-latex") or "").strip() or mathml_to_latex(math)
            display = element.get("display") in {"true", "block"} or (
                math is not None and math.get("display") == "block"
            )
            # SVG output without assistive MathML carries no recoverable TeX: dropped rather
            # than left as glyph soup.
            self.replace(element, tex, display, "mathjax_output")

    def _rewrite_mathjax_scripts(self) -> None:
        scripts = [
            s
            for s in self.doc.iter("script")
            if (s.get("type") or "").strip().lower().startswith(("math/tex", "math/mml"))
        ]
        if not scripts:
            return
        # MathJax v2 put its rendering beside each script; the script is the source of truth.
        for element in self.classed_any(_MATHJAX_V2_OUTPUT, "MathJax", "MJX"):
            _replace_with_text(element, "")
        for script in scripts:
            kind = (script.get("type") or "").lower()
            display = "mode=display" in kind
            body = script.text or ""
            if kind.startswith("math/mml"):
                fragment = etree.HTML(body)
                math = _first_math(fragment) if fragment is not None else None
                display = display or (math is not None and math.get("display") == "block")
                body = mathml_to_latex(math) if math is not None else ""
            self.replace(script, body, display, "mathjax_script")

    def _rewrite_distill(self) -> None:
        for element in list(self.doc.iter("d-math", "dt-math")):
            if not _attached(element):
                continue
            tex = "".join(element.itertext())
            self.replace(element, tex, element.get("block") is not None, "distill")

    def _rewrite_math_containers(self) -> None:
        for element in self.classed("math-container"):
            tex = "".join(element.itertext())
            self.replace(element, tex, element.tag == "div", "math_container")

    def _rewrite_mathml(self) -> None:
        for math in _MATH_ELEMENTS(self.doc):
            if not _attached(math):  # nested <math>, or inside a replaced element
                continue
            display = math.get("display") == "block" or math.get("mode") == "display"
            self.replace(math, mathml_to_latex(math), display, "mathml")

    def _rewrite_tex_images(self) -> None:
        for img in list(self.doc.iter("img")):
            tex = tex_from_image(img.get("src") or "", img.get("alt") or "", _classes(img))
            if tex is not None:
                self.replace(img, tex, False, "tex_image")


def _attached(element: etree._Element) -> bool:
    """False once element or an ancestor was replaced (it then hangs in a detached tree)."""
    root = element
    parent = root.getparent()
    while parent is not None:
        root, parent = parent, parent.getparent()
    return root.tag == "html"


def tex_from_image(src: str, alt: str, classes: set[str]) -> str | None:
    """TeX carried by an image (alt text, else the renderer URL's query), or None if it has none."""
    from_renderer = _TEX_IMAGE_SRC.search(src) is not None
    if not from_renderer and not (classes & _TEX_IMAGE_CLASSES and alt.strip()):
        return None
    alt = alt.strip()
    if alt and not alt.startswith("http") and alt.lower() not in _PLACEHOLDER_ALTS:
        return alt
    if "?" not in src:
        return alt or None
    query = src.split("?", 1)[1]
    # latex.php?latex=...&bg=..., chart?cht=tx&chl=..., or the whole query is TeX (mimetex).
    for key in ("latex=", "chl=", "tex="):
        for part in query.split("&"):
            if part.startswith(key):
                return unquote_plus(part[len(key) :]).strip()
    tex = unquote(query.replace("&space;", " ")).replace("&space;", " ")
    return _CODECOGS_PREFIX.sub("", tex).strip()


def parse_html(html: str) -> etree._Element | None:
    """The page as an lxml document, or None when there is no document to parse."""
    # lxml refuses str input that carries an XML encoding declaration; the text is decoded already.
    # etree.HTML uses lxml's per-thread default parser (safe in multi-threaded Beam workers) and
    # plain elements: lxml.html's element classes cost a Python lookup per node visited.
    html = _XML_DECLARATION.sub("", html, count=1)
    # libxml2 rejects C0 control characters (bar tab and newlines), which real pages do contain.
    return etree.HTML(_CONTROL_CHARS.sub("", html))


def rewrite_math(html: str) -> MathRewrite:
    """Replace every maths element of the page with its TeX as text (docs/stages/extract.md)."""
    doc = parse_html(html)
    if doc is None:
        return MathRewrite(html, (), 0)
    rewriter = _Rewriter(doc, html)
    rewriter.run()
    if not rewriter.count and not rewriter.formats - {"tex_delimiters"}:
        # Nothing rewritten: hand back the page untouched, not lxml's re-serialisation of it.
        return MathRewrite(html, tuple(sorted(rewriter.formats)), 0)
    out = etree.tostring(doc, encoding="unicode", method="html")
    return MathRewrite(out, tuple(sorted(rewriter.formats)), rewriter.count)
