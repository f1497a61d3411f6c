"""Extraction quality measured the held-out way: per math site left out, and on half of the
scrapinghub ground truth kept out of the selector choice.

Input: the labelled real pages of ../shared/data/html (read in place). Three parts:

1. Leave one math site out. The decision has three choices (restore dropped maths lines or
   not; restore only inside the main span or anywhere; skip the boilerplate selectors or not).
   For each math site S, the choice is made on the other sites (mean per-site TeX recall, plus
   the scrapinghub F1 so that recall is not bought with boilerplate) and S's TeX recall is
   reported with it: mean and worst page, per site; beside it, "before" (no restoring) and
   the shipped choices (restore inside the span, selectors skipped).
2. The skipped selectors, 2-fold: greedy forward selection from CANDIDATE_SELECTORS on one half
   of the scrapinghub pages (split by the first byte of the page key), F1 reported on the
   other half, and the reverse. Then the shipped BOILERPLATE_SELECTORS on each half and on all.
3. Cost: CPU ms a page of what the pipeline runs (`extract_page`, resiliparse) against the
   previous main-content-only settings, in the same run.

    .venv/bin/python bench/extraction_quality.py [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract.evaluation import (  # noqa: E402
    read_page,
    site_of,
    tex_recall,
    token_prf,
)
from pipeline.extract.extractors import ResiliparseText, extract_page, get_extractor  # noqa: E402
from pipeline.extract.main_content import (  # noqa: E402
    BOILERPLATE_SELECTORS,
    CHROME_SELECTORS,
    MainContent,
    restore_math_lines,
)
from pipeline.extract.math_markup import has_math_markers, rewrite_math  # noqa: E402

SHARED = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))

# Class and element selectors that boilerplate removers commonly use (readability's and
# trafilatura's lists name the same kinds), offered to the greedy selection.
CANDIDATE_SELECTORS = (
    "nav", "aside", "footer", "header", '[role="navigation"]', "figcaption", "time",
    '[class*="share"]', '[class*="social"]', '[class*="related"]', '[class*="cookie"]',
    '[class*="consent"]', '[class*="newsletter"]', '[class*="subscribe"]', '[class*="signup"]',
    '[class*="breadcrumb"]', '[class*="advert"]', '[class*="promo"]', '[class*="sidebar"]',
    '[class*="caption"]', '[class*="byline"]', '[class*="author"]', '[class*="meta"]',
    '[class*="tags"]', '[class*="menu"]', '[class*="banner"]', '[class*="popup"]',
    '[class*="modal"]', '[class*="credit"]', '[class*="recommend"]', '[class*="more"]',
    '[class*="disclaimer"]', '[class*="widget"]', '[class*="trending"]', '[class*="date"]',
    '[class*="rating"]', '[class*="follow"]', '[class*="print"]',
)  # fmt: skip


@dataclass(frozen=True)
class Page:
    filename: str
    label: str
    html: str  # maths markup already rewritten as TeX (the pre-pass is not what is measured)
    source: str  # the page as stored: where the TeX to find is counted


def load_pages() -> list[Page]:
    pages = []
    with (SHARED / "html" / "labels.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            source = read_page(SHARED / row["filename"])
            html = rewrite_math(source).html if has_math_markers(source) else source
            pages.append(Page(row["filename"], row["label"], html, source))
    return pages


def decision(restore: bool, span_only: bool, skip: bool) -> Callable[[str], str]:
    """The main-content decision with one set of choices, as html -> text."""
    html2text = ResiliparseText(main_skip=BOILERPLATE_SELECTORS if skip else ())

    def run(html: str) -> str:
        tree = html2text.parse(html)
        main = html2text.text(tree, main_content=True)
        if not restore:
            return main
        content: MainContent = restore_math_lines(
            main, html2text.text(tree, main_content=False), span_only
        )
        return content.text

    return run


def site_recall(pages: list[Page], run: Callable[[str], str]) -> dict[str, list[float]]:
    """Math site -> TeX recall of each of its pages with TeX in the source."""
    out: dict[str, list[float]] = {}
    for page in pages:
        if page.label == "math":
            hit, total = tex_recall(page.source, run(page.html))
            if total:
                out.setdefault(site_of(page.filename), []).append(hit / total)
    return out


def scrapinghub_f1(pages: dict[str, Page], keys: list[str], run: Callable[[str], str]) -> float:
    truth = json.loads((SHARED / "html" / "scrapinghub" / "ground-truth.json").read_text())
    scores = [
        token_prf(run(pages[f"html/scrapinghub/{k}.html.gz"].html), truth[k]["articleBody"])[2]
        for k in keys
    ]
    return sum(scores) / len(scores)


# The shipped choices: restore, inside the main span only, boilerplate selectors skipped.
SHIPPED = (True, True, True)


def leave_one_site_out(pages: list[Page], sh_keys: list[str]) -> list[dict[str, object]]:
    by_name = {p.filename: p for p in pages}
    choices = list(itertools.product((False, True), repeat=3))
    recall = {c: site_recall(pages, decision(*c)) for c in choices}
    f1 = {c: scrapinghub_f1(by_name, sh_keys, decision(*c)) for c in choices}
    rows = []
    for site in sorted(recall[choices[0]]):

        def score(c: tuple[bool, bool, bool], site: str = site) -> float:
            others = [sum(v) / len(v) for s, v in recall[c].items() if s != site]
            return sum(others) / len(others) + f1[c]

        best = max(choices, key=score)
        fracs = recall[best][site]
        rows.append(
            {
                "site": site,
                "pages": len(fracs),
                "chosen": dict(zip(("restore", "span_only", "skip"), best, strict=True)),
                "mean": sum(fracs) / len(fracs),
                "min": min(fracs),
                "without_decision": sum(recall[(False, True, True)][site]) / len(fracs),
                "shipped": sum(recall[SHIPPED][site]) / len(fracs),
                "shipped_min": min(recall[SHIPPED][site]),
            }
        )
    return rows


def greedy_selectors(by_name: dict[str, Page], keys: list[str]) -> list[str]:
    """Forward selection: add the selector that lifts F1 most, while it lifts it >= 0.001."""

    def f1_with(skip: list[str]) -> float:
        html2text = ResiliparseText(main_skip=tuple(skip), page_skip=CHROME_SELECTORS)
        return scrapinghub_f1(
            by_name, keys, lambda h: html2text.text(html2text.parse(h), main_content=True)
        )

    chosen: list[str] = []
    best = f1_with(chosen)
    while True:
        gains = [(f1_with([*chosen, c]), c) for c in CANDIDATE_SELECTORS if c not in chosen]
        f1, selector = max(gains)
        if f1 - best < 0.001:
            return chosen
        chosen.append(selector)
        best = f1


def cpu_ms(run: Callable[[str], object], htmls: list[str], repeat: int = 3) -> float:
    for html in htmls[:20]:
        run(html)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for html in htmls:
            run(html)
        best = min(best, time.process_time() - start)
    return 1000 * best / len(htmls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (SHARED / "html" / "labels.csv").exists():
        sys.exit(f"{SHARED}/html is absent: this bench reads the real labelled pages")
    pages = load_pages()
    by_name = {p.filename: p for p in pages}
    keys = sorted(
        p.filename.split("/")[-1].removesuffix(".html.gz")
        for p in pages
        if p.filename.startswith("html/scrapinghub/") and p.filename.endswith(".html.gz")
    )
    truth = json.loads((SHARED / "html" / "scrapinghub" / "ground-truth.json").read_text())
    keys = [k for k in keys if k in truth]
    halves = ([k for k in keys if int(k[:2], 16) % 2 == 0], [k for k in keys if int(k[:2], 16) % 2])
    figures: dict[str, object] = {}

    print("1. TeX recall, leave one math site out (choices made on the other sites)")
    loso = leave_one_site_out(pages, keys)
    print(
        f"  {'site':14s} {'pages':>5s} {'mean':>6s} {'min':>6s} {'before':>7s} "
        f"{'shipped':>8s} {'min':>6s}  chosen"
    )
    for row in loso:
        print(
            f"  {row['site']:14s} {row['pages']:5d} {row['mean']:6.3f} {row['min']:6.3f} "
            f"{row['without_decision']:7.3f} {row['shipped']:8.3f} {row['shipped_min']:6.3f}  "
            f"{row['chosen']}"
        )
    means = [float(r["mean"]) for r in loso]  # type: ignore[arg-type]
    print(f"  sites: min {min(means):.3f}, mean {sum(means) / len(means):.3f}")
    figures["leave_one_site_out"] = loso

    print("\n2. scrapinghub F1, skipped selectors chosen on one half, measured on the other")
    folds = []
    for tune, test in ((0, 1), (1, 0)):
        chosen = greedy_selectors(by_name, halves[tune])
        html2text = ResiliparseText(main_skip=tuple(chosen))

        def run(h: str, t: ResiliparseText = html2text) -> str:
            return t.text(t.parse(h), main_content=True)

        held_out = scrapinghub_f1(by_name, halves[test], run)
        folds.append({"tuned_on": tune, "chosen": chosen, "held_out_f1": held_out})
        print(f"  tuned on half {tune}: held-out F1 {held_out:.3f}  {chosen}")
    shipped = get_extractor("resiliparse")

    def shipped_text(h: str) -> str:
        return shipped.extract(h).text

    for name, part in (("half 0", halves[0]), ("half 1", halves[1]), (f"all {len(keys)}", keys)):
        f1 = scrapinghub_f1(by_name, part, shipped_text)
        print(f"  shipped selectors, {name}: F1 {f1:.3f}")
    figures["scrapinghub_folds"] = folds

    print("\n3. cost, CPU ms a page over all labelled pages (pre-pass included)")
    raw = [read_page(SHARED / p.filename) for p in pages]
    old = ResiliparseText(main_skip=(), page_skip=())
    old_ms = cpu_ms(lambda h: extract_page(h, _MainOnly(old)), raw)
    new_ms = cpu_ms(lambda h: extract_page(h, shipped), raw)
    print(f"  main-content pass only: {old_ms:.2f} ms; with the decision: {new_ms:.2f} ms")
    print(f"  ratio {new_ms / old_ms:.2f}x")
    figures["cost_ms"] = {"main_only": old_ms, "with_decision": new_ms}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


class _MainOnly:
    """The main-content pass alone (the settings before the decision), as an Extractor."""

    name = "resiliparse"
    version = "main-only"

    def __init__(self, html2text: ResiliparseText) -> None:
        self._html2text = html2text

    def extract(self, html: str, url: str | None = None) -> MainContent:
        text = self._html2text.text(self._html2text.parse(html), main_content=True)
        return MainContent(text, 0, 0, 0)


if __name__ == "__main__":
    main()
