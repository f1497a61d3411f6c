"""The math-aware main-content decision, shared by both extractors.

Main-content heuristics take short formula blocks between widgets, figures, tabs or cards for
boilerplate: whole derivations vanished on distill.pub while the prose around them stayed
(issue 15). The extractor makes a second, whole-page pass on pages whose text carries TeX, and
`restore_math_lines` puts back, in page order, the lines of that pass which carry TeX that the
main-content pass dropped, inside the main content's span (a formula in a header or footer,
before the first or after the last main-content line, stays out). The selectors below remove
what is clearly not the article before either pass. Design and figures: docs/stages/extract.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

from pipeline.extract.math_markup import count_tex, has_tex_delimiters, tex_spans

# Elements skipped by the main-content pass. Chosen by greedy forward selection on half of the
# scrapinghub ground truth and checked on the other half (2-fold: held-out F1 0.922 / 0.954;
# bench/extraction_quality.py prints it); selectors that helped one half only are left out.
BOILERPLATE_SELECTORS: tuple[str, ...] = (
    "header",  # page and article headers: title, byline, date, share bar
    '[class*="caption"]',  # image and video captions, credits
    "figcaption",
    '[class*="newsletter"]',
    '[class*="consent"]',  # cookie banners
    '[class*="cookie"]',
)
# Elements skipped by the whole-page pass: navigation and site chrome, never the article's
# maths. Kept short on purpose: what this pass keeps is only restored when it carries TeX.
CHROME_SELECTORS: tuple[str, ...] = (
    "nav",
    "footer",
    '[role="navigation"]',
    '[class*="cookie"]',
    '[class*="consent"]',
)

# `alt` attributes of images, areas and inputs. resiliparse's `alt_texts=False` drops every
# <figure> with its whole subtree, so an unclosed <figure> swallowed the rest of a page (a
# lilianweng article lost 37% of its formulas); removing the attributes and keeping figures
# drops the alt text alone. TeX images were turned into text by the maths pre-pass already.
_ALT_ATTRIBUTE = re.compile(
    r"""(<(?:img|area|input)\b[^>]*?)\salt\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE
)
# Pages with more non-blank lines are not aligned (their main text is kept as it is): the
# alignment costs about 1 ms per 1,000 lines, and such pages are listings, not articles.
MAX_ALIGNED_LINES = 20_000
_SPACE = re.compile(r"\s+")
# List bullets and numbers differ between backends ("  • item", "1. item", "- item").
_BULLET = re.compile(r"^(?:[•◦▪\-*]|\d{1,3}[.)])\s+")


def strip_alt_attributes(html: str) -> str:
    """The page with the `alt` attributes of <img>, <area> and <input> removed."""
    if " alt" not in html and "\talt" not in html and "\nalt" not in html:
        return html
    return _ALT_ATTRIBUTE.sub(r"\1", html)


@dataclass(frozen=True, slots=True)
class MainContent:
    text: str
    """Main text with the dropped maths lines restored."""
    tex_in_page: int
    """TeX expressions in the whole page's text, before the main-content decision."""
    tex_in_main: int
    """TeX expressions in `text`, after it."""
    restored_lines: int
    """Lines the whole-page pass gave back because they carry TeX."""


def _key(line: str) -> str:
    return _BULLET.sub("", _SPACE.sub(" ", line).strip())


def restore_math_lines(main: str, page: str, span_only: bool = True) -> MainContent:
    """`main` with the TeX-carrying lines of `page` (the same page's whole text) that `main`
    dropped put back where they stood, between the first and last lines the two share
    (anywhere with `span_only=False`, which bench/extraction_quality.py weighs against it)."""
    main_lines = main.split("\n")
    page_lines = page.split("\n")
    # Aligned on non-blank lines: blank lines repeat, and would make the alignment quadratic.
    main_at = [i for i, line in enumerate(main_lines) if line.strip()]
    page_at = [i for i, line in enumerate(page_lines) if line.strip()]
    if len(page_at) > MAX_ALIGNED_LINES:
        return MainContent(main, count_tex(page), count_tex(main), 0)
    matcher = SequenceMatcher(
        None,
        [_key(page_lines[i]) for i in page_at],
        [_key(main_lines[i]) for i in main_at],
        autojunk=False,
    )
    ops = matcher.get_opcodes()
    # A line is restored only when some of its TeX is missing from the main text: backends
    # break lines differently, so a formula the main text kept may sit on an unmatched line.
    in_main = _SPACE.sub("", main)

    def missing(line: str) -> bool:
        return any(_SPACE.sub("", span) not in in_main for span in tex_spans(line))

    insert_before: dict[int, list[str]] = {}
    restored = 0
    # A first or last run lies outside the main span: headers, footers.
    for tag, p0, p1, _m0, m1 in ops[1:-1] if span_only else ops:
        if tag not in ("delete", "replace"):
            continue
        lines = [page_lines[i] for i in page_at[p0:p1] if missing(page_lines[i])]
        if lines:
            at = main_at[m1] if m1 < len(main_at) else len(main_lines)
            insert_before.setdefault(at, []).extend(lines)
            restored += len(lines)
    if not restored:
        return MainContent(main, count_tex(page), count_tex(main), 0)
    out: list[str] = []
    for i, line in enumerate(main_lines):
        out.extend(insert_before.get(i, ()))
        out.append(line)
    out.extend(insert_before.get(len(main_lines), ()))
    text = "\n".join(out)
    return MainContent(text, count_tex(page), count_tex(text), restored)


def decide_main_content(main: str, page_text: Callable[[], str], html: str) -> MainContent:
    """The main-content decision for one page: `main` with the maths that main-content
    selection dropped restored from `page_text()`, the whole page's text (a cheap pass: about
    0.5 ms a page with resiliparse, a third of the main pass). Pages whose HTML has no `$`,
    `\\(` or `\\[` cannot hold delimited TeX and skip it."""
    if "$" not in html and "\\(" not in html and "\\[" not in html:
        return MainContent(main, 0, 0, 0)
    page = page_text()
    if not has_tex_delimiters(page):
        return MainContent(main, 0, count_tex(main), 0)
    return restore_math_lines(main, page)
