"""Math-preserving main-text extraction: one maths pre-pass, two interchangeable backends.

`extract_page(html, get_extractor(name), url=url)` rewrites maths markup into TeX
(math_markup.py), then extracts the main text with `resiliparse` (default, about 10x faster) or
`trafilatura`, each with the math-aware main-content decision (main_content.py). The backends
and their figures: docs/stages/extract.md.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.extract.main_content import (
    BOILERPLATE_SELECTORS,
    CHROME_SELECTORS,
    MainContent,
    decide_main_content,
    strip_alt_attributes,
)
from pipeline.extract.math_markup import has_math_markers, rewrite_math

# Bump when math_markup, mathml_to_latex or main_content change what text a page yields.
# 2: math-aware main-content decision, figures kept, comments and bylines dropped (issue 15).
MATH_PREPASS_REVISION = 2


class Extractor(Protocol):
    """A main-content text extractor with the math-aware decision (main_content.py)."""

    name: str
    version: str

    def extract(self, html: str, url: str | None = None) -> MainContent:
        """The page's main text ("" when none), maths markup already rewritten as TeX."""
        ...


_FIGURE_TAG = re.compile(r"<(/?)figure\b", re.IGNORECASE)


def _version(package: str) -> str:
    return f"{importlib.metadata.version(package)}+math{MATH_PREPASS_REVISION}"


class ResiliparseText:
    """resiliparse's html2text with our settings: the main-content pass (skipping
    `main_skip`) and the whole-page pass (skipping `page_skip`)."""

    def __init__(
        self,
        main_skip: tuple[str, ...] = BOILERPLATE_SELECTORS,
        page_skip: tuple[str, ...] = CHROME_SELECTORS,
    ) -> None:
        self._skip = {True: list(main_skip) or None, False: list(page_skip) or None}
        # Imported here so that choosing one backend never requires the other to be installed.
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        self._extract_plain_text = extract_plain_text
        self._parse = HTMLTree.parse

    def parse(self, html: str) -> Any:
        return self._parse(strip_alt_attributes(html))

    def text(self, tree: Any, main_content: bool) -> str:
        return self._extract_plain_text(
            tree,
            main_content=main_content,
            preserve_formatting=True,  # paragraphs and list items on their own lines
            list_bullets=True,
            # Collapsed sections (class="hidden" toggles: proofs, technical details) are
            # content on maths pages; explicit hidden attributes and display:none still go.
            hidden_elements=True,
            # alt attributes are removed before parsing (strip_alt_attributes says why), so
            # this keeps <figure> elements without adding alt texts.
            alt_texts=True,
            links=False,
            form_fields=False,
            noscript=False,
            comments=False,  # reader comments are not the article
            post_meta=False,  # bylines, dates, tags
            skip_elements=self._skip[main_content],
        )


class ResiliparseExtractor:
    """resiliparse's html2text with its main-content heuristics, made math-aware."""

    name = "resiliparse"

    def __init__(self) -> None:
        self._html2text = ResiliparseText()
        self.version = _version("resiliparse")

    def extract(self, html: str, url: str | None = None) -> MainContent:
        del url  # the heuristics are per page, not per site
        tree = self._html2text.parse(html)
        main = self._html2text.text(tree, main_content=True)
        return decide_main_content(  # the whole-page pass reuses the parsed tree
            main, lambda: self._html2text.text(tree, main_content=False), html
        )


class TrafilaturaExtractor:
    """trafilatura.extract with its defaults plus `favor_recall`, plain-text output, made
    math-aware with resiliparse's whole-page text (trafilatura's own has no line breaks)."""

    name = "trafilatura"

    def __init__(self) -> None:
        import trafilatura

        self._extract = trafilatura.extract
        self._html2text = ResiliparseText()
        self.version = _version("trafilatura")

    def extract(self, html: str, url: str | None = None) -> MainContent:
        # favor_recall keeps the short formula-only blocks that the default precision/recall
        # balance drops (TeX recall 0.92 -> 0.99 on the real maths pages, scrapinghub F1 equal).
        # <figure> as <div>: trafilatura drops figures, and an unclosed one swallows the rest
        # of the page (a lilianweng article lost its second half, formulas included).
        main = (
            self._extract(
                _FIGURE_TAG.sub(r"<\1div", html), url=url, output_format="txt", favor_recall=True
            )
            or ""
        )
        return decide_main_content(
            main,
            lambda: self._html2text.text(self._html2text.parse(html), main_content=False),
            html,
        )


_EXTRACTORS: dict[str, type[ResiliparseExtractor] | type[TrafilaturaExtractor]] = {
    "resiliparse": ResiliparseExtractor,
    "trafilatura": TrafilaturaExtractor,
}
EXTRACTOR_NAMES: tuple[str, ...] = tuple(_EXTRACTORS)
DEFAULT_EXTRACTOR = "resiliparse"


def get_extractor(name: str) -> Extractor:
    """A fresh extractor by name; ValueError naming the valid ones otherwise."""
    try:
        cls = _EXTRACTORS[name]
    except KeyError:
        valid = ", ".join(EXTRACTOR_NAMES)
        raise ValueError(f"unknown extractor {name!r}: choose one of {valid}") from None
    return cls()


@dataclass(frozen=True, slots=True)
class Extraction:
    text: str
    """Main text of the page, maths as `$...$` / `$$...$$` TeX."""
    math_formats: tuple[str, ...]
    """Sorted maths markup kinds seen (vocabulary: `math_markup.MATH_FORMATS`)."""
    n_math: int
    """Maths expressions converted from markup (TeX already in the text is not counted)."""
    tex_in_page: int = 0
    """TeX expressions in the whole page's text, before the main-content decision."""
    tex_in_main: int = 0
    """TeX expressions in `text`."""
    restored_lines: int = 0
    """Lines carrying TeX that main-content selection dropped and the decision put back."""


def extract_page(html: str, extractor: Extractor, url: str | None = None) -> Extraction:
    """Maths pre-pass (only on pages with markers), then the backend's main-text extraction
    with the math-aware main-content decision."""
    if has_math_markers(html):
        rewrite = rewrite_math(html)
        content = extractor.extract(rewrite.html, url=url)
        formats = rewrite.formats
        n_math = rewrite.n_expressions
    else:
        content = extractor.extract(html, url=url)
        # No markup to rewrite, so any TeX delimiters in the text are the page's own.
        formats = ("tex_delimiters",) if content.tex_in_main else ()
        n_math = 0
    return Extraction(
        content.text,
        formats,
        n_math,
        content.tex_in_page,
        content.tex_in_main,
        content.restored_lines,
    )
