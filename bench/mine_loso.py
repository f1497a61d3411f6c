"""Leave-one-site-out measurement of the mining loop on the real labelled pages.

Input: the pages of ../shared/data/html and their labels (labels.csv: math / not-math), text
extracted with resiliparse (nothing copied into the repository). For each held-out group S the
real loop (`run_mining`: Beam training sample, fastText with the paper's settings, Beam scoring
and the keep-by-token-budget cut, domain discovery, expansion, convergence) is seeded with the
math pages of the other groups and run over a pool that holds no seed page:

    positives  the math pages of every other group
    negatives  a seeded random sample of the other groups' not-math pages, as many as the
               positives (`negatives_per_positive` 1.0: what the loop draws from a pool)
    pool       every page of S (math and not-math) + the other groups' not-math pages that were
               not drawn as negatives
    budget     the tokens of S's math pages (characters / 4, the loop's estimate): a perfect
               ranking collects exactly S's math pages (the R-precision of a token budget)

Groups: a labels.csv folder (html/<folder>/...) is a site, except the pages SAME_SITE assigns to
the site they come from; a site with at least `--min-site-math` (3) math pages is held out alone
(distill, lilianweng, mathjax_demos); the math pages of the other folders (collections of pages
from many sites: readability, trafilatura, magic_html) form the group "other", held out
together. Figures per group: recall (S's math pages collected / S's
math pages) and precision (math pages among the collected), for the loop's final collection and
for its first iteration (before any expansion), and the recall and precision at probability
0.5 from the same scores. Method and figures: docs/stages/mine.md, "Leave one site out".

    .venv/bin/python bench/mine_loso.py [--bucket 2000000] [--seed 0] [--groups distill,other]
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.extract.config import DEFAULT_MIN_TEXT_CHARS  # noqa: E402
from pipeline.mine.classifier import (  # noqa: E402
    ClassifierConfig,
    ranking_metrics,
    seeded_fraction,
)
from pipeline.mine.config import MiningConfig  # noqa: E402
from pipeline.mine.loop import run_mining  # noqa: E402
from pipeline.mine.transforms import estimate_tokens  # noqa: E402
from pipeline.pool.schema import POOL_SCHEMA, pool_row  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
OTHER = "other"
# Pages of a collection folder that come from one of the sites held out alone: they are held
# out with that site, or the seed would hold a near-copy of it. readability/mathjax.html is the
# MathJax v3 demo page (the same equations as mathjax_demos/page__tex-chtml.html).
SAME_SITE = {"html/readability/mathjax.html": "mathjax_demos"}
GOALS = {"recall": 0.9, "precision": 0.8}


@dataclass(frozen=True)
class Page:
    """One labelled real page: key (its labels.csv filename), folder, label and text."""

    key: str
    folder: str
    is_math: bool
    text: str

    @property
    def site(self) -> str:
        """The site it comes from: its folder, unless SAME_SITE says otherwise."""
        return SAME_SITE.get(self.key, self.folder)

    @property
    def url(self) -> str:
        # html/<folder>/<rest>: one made-up host per site, the path kept (the files carry no
        # reliable URL of their own; see docs/stages/mine.md).
        rest = self.key.split("/", 2)[2]
        return f"https://{self.domain}/{rest}"

    @property
    def domain(self) -> str:
        return f"{self.site.replace('_', '-')}.example"


def load_pages(data_dir: Path = SHARED, min_text_chars: int = DEFAULT_MIN_TEXT_CHARS) -> list[Page]:
    """The pages of labels.csv that a pool would hold: extracted as the pool extracts them
    (resiliparse), those with less text than the pool's `min_text_chars` (100) left out, as the
    pool stage drops them (`too_short`, `empty_text`). Such a page would otherwise cost no
    budget (0 tokens) and be collected whenever its empty line scores high."""
    from pipeline.extract.extractors import extract_page, get_extractor

    extractor = get_extractor("resiliparse")
    pages = []
    with (data_dir / "html" / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        data = (data_dir / row["filename"]).read_bytes()
        if row["filename"].endswith(".gz"):
            data = gzip.decompress(data)
        text = extract_page(data.decode("utf-8", errors="replace"), extractor).text
        if len(text) < min_text_chars:
            continue
        folder = row["filename"].split("/")[1]
        pages.append(Page(row["filename"], folder, row["label"] == "math", text))
    return pages


def site_groups(pages: Sequence[Page], min_site_math: int = 3) -> dict[str, str]:
    """site -> held-out group: a site with at least `min_site_math` math pages is its own group;
    the math pages of every other site form the group "other"."""
    math_per_site: dict[str, int] = {}
    for page in pages:
        math_per_site[page.site] = math_per_site.get(page.site, 0) + page.is_math
    return {
        site: site if count >= min_site_math else OTHER
        for site, count in sorted(math_per_site.items())
    }


@dataclass(frozen=True)
class Split:
    """One held-out group's seed and pool (pages, by key)."""

    group: str
    positives: list[Page]
    negatives: list[Page]
    pool: list[Page]

    @property
    def held_out_math(self) -> list[Page]:
        return [p for p in self.pool if p.is_math]

    @property
    def budget_tokens(self) -> int:
        return sum(estimate_tokens(p.text) for p in self.held_out_math)


def split_for(
    pages: Sequence[Page],
    groups: dict[str, str],
    group: str,
    seed: int = 0,
    negatives_per_positive: float = 1.0,
) -> Split:
    """The seed and pool for holding out `group` (module docstring). For "other", only the math
    pages of its folders are held out; their not-math pages are like any other not-math page."""

    def held_out(p: Page) -> bool:
        if group == OTHER:
            return groups[p.site] == OTHER and p.is_math
        return p.site == group

    positives = [p for p in pages if p.is_math and not held_out(p)]
    others = [p for p in pages if not p.is_math and not held_out(p)]
    others.sort(key=lambda p: seeded_fraction(seed, "loso_negative", p.key))
    n_negatives = round(negatives_per_positive * len(positives))
    negatives, rest = others[:n_negatives], others[n_negatives:]
    pool = [p for p in pages if held_out(p)] + rest
    return Split(group, positives, negatives, sorted(pool, key=lambda p: p.key))


def write_pool(folder: Path, pages: Sequence[Page]) -> None:
    """A pool-format folder (one Parquet file, FORMAT.md "Pool") of the pages."""
    folder.mkdir(parents=True, exist_ok=True)
    when = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        pool_row(
            doc_id=p.key,
            url=p.url,
            domain=p.domain,
            warc_file=p.key,
            warc_offset=0,
            fetch_time=when,
            language="en",
            language_score=1.0,
            text=p.text,
            math_formats=(),
            n_math=0,
            encoding="utf-8",
            extractor="resiliparse",
            extractor_version="",
        )
        for p in pages
    ]
    table = pa.Table.from_pylist(rows, schema=POOL_SCHEMA)
    pq.write_table(table, folder / "pool-00000-of-00001.parquet")


def scores_of(workdir: Path, iteration: int) -> dict[str, dict[str, Any]]:
    """doc_id -> score row (score, n_tokens, collected) of one iteration's recall."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(glob.glob(str(workdir / f"iter_{iteration}" / "recall" / "scores-*.parquet"))):
        for row in pq.read_table(f).to_pylist():
            out[row["doc_id"]] = row
    return out


def recall_precision(math_keys: set[str], collected: set[str]) -> dict[str, float | None]:
    """Recall (math collected / math) and precision (math among collected) of a collection."""
    hit = len(math_keys & collected)
    return {
        "recall": hit / len(math_keys) if math_keys else None,
        "precision": hit / len(collected) if collected else None,
        "collected": len(collected),
        "math_collected": hit,
    }


def run_group(
    split: Split, workdir: Path, classifier: ClassifierConfig, beam_args: Sequence[str] = ()
) -> dict[str, Any]:
    """Run the loop for one held-out group; its figures."""
    seed_keys = {p.key for p in split.positives} | {p.key for p in split.negatives}
    pool_keys = {p.key for p in split.pool}
    if seed_keys & pool_keys:  # the measurement is only honest if no scored page was seeded
        raise AssertionError(
            f"{split.group}: seed pages in the pool: {sorted(seed_keys & pool_keys)}"
        )
    for name, pages in (
        ("positives", split.positives),
        ("negatives", split.negatives),
        ("pool", split.pool),
    ):
        write_pool(workdir / name, pages)
    config = MiningConfig(
        pool=str(workdir / "pool"),
        positives=(str(workdir / "positives"),),
        negatives=(str(workdir / "negatives"),),
        workdir=str(workdir / "mine"),
        budget_tokens=split.budget_tokens,
        classifier=classifier,
    )
    started = time.monotonic()
    summary = run_mining(config, beam_args)
    elapsed = time.monotonic() - started
    math_keys = {p.key for p in split.held_out_math}
    last = summary["final_iteration"]
    final_rows = scores_of(workdir / "mine", last)
    first_rows = scores_of(workdir / "mine", 1)
    if set(final_rows) != pool_keys or set(first_rows) != pool_keys:
        raise AssertionError(f"{split.group}: not every pool page was scored")
    final = recall_precision(math_keys, {k for k, r in final_rows.items() if r["collected"]})
    first = recall_precision(math_keys, {k for k, r in first_rows.items() if r["collected"]})
    at_half = recall_precision(math_keys, {k for k, r in final_rows.items() if r["score"] >= 0.5})
    collected_tokens = sum(r["n_tokens"] for r in final_rows.values() if r["collected"])
    math_tokens = sum(
        r["n_tokens"] for k, r in final_rows.items() if r["collected"] and k in math_keys
    )
    # The ranking alone (no budget): R-precision and ROC AUC of the final model's logits.
    ranking = ranking_metrics([(k in math_keys, r["logit"]) for k, r in final_rows.items()])
    return {
        "group": split.group,
        "positives": len(split.positives),
        "negatives": len(split.negatives),
        "pool_pages": len(split.pool),
        "pool_math": len(math_keys),
        "budget_tokens": split.budget_tokens,
        "iterations": last,
        "stopped_because": summary["stopped_because"],
        "expansion_pages": sum(it["expansion_pages"] for it in summary["iterations"]),
        "final": final,
        "iteration_1": first,
        "at_probability_0.5": at_half,
        "collected_tokens": collected_tokens,
        "token_precision": math_tokens / collected_tokens if collected_tokens else None,
        "ranking": ranking,
        "elapsed_s": round(elapsed, 1),
    }


def summarise(results: Sequence[dict[str, Any]], key: str = "final") -> dict[str, float]:
    """min and mean of recall and precision over groups (a group that collected nothing has
    precision 0 here: it found none of its math)."""
    recalls = [r[key]["recall"] or 0.0 for r in results]
    precisions = [r[key]["precision"] or 0.0 for r in results]
    return {
        "recall_min": min(recalls),
        "recall_mean": sum(recalls) / len(recalls),
        "precision_min": min(precisions),
        "precision_mean": sum(precisions) / len(precisions),
    }


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| held out | seed +/- | pool (math) | budget tok | iters | collected | recall | "
        "precision | token P | R-prec / AUC | iter 1 R / P | p>=0.5 R / P | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, i, h = r["final"], r["iteration_1"], r["at_probability_0.5"]
        lines.append(
            f"| {r['group']} | {r['positives']} / {r['negatives']} | {r['pool_pages']} "
            f"({r['pool_math']}) | {r['budget_tokens']:,} | {r['iterations']} | "
            f"{f['collected']} | {_f(f['recall'])} | {_f(f['precision'])} | "
            f"{_f(r['token_precision'])} | {_f(r['ranking']['r_precision'])} / "
            f"{_f(r['ranking']['roc_auc'])} | "
            f"{_f(i['recall'])} / {_f(i['precision'])} | {_f(h['recall'])} / "
            f"{_f(h['precision'])} | {r['elapsed_s']} |"
        )
    for key, name in (
        ("final", "loop"),
        ("iteration_1", "iter 1"),
        ("at_probability_0.5", "p>=0.5"),
    ):
        s = summarise(results, key)
        lines.append(
            f"\n{name}: recall min {s['recall_min']:.2f} mean {s['recall_mean']:.2f}; "
            f"precision min {s['precision_min']:.2f} mean {s['precision_mean']:.2f} "
            f"(goal: recall {GOALS['recall']}, precision {GOALS['precision']})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--bucket", type=int, default=2_000_000, help="fastText n-gram buckets")
    parser.add_argument("--seed", type=int, default=0, help="classifier and negative-draw seed")
    parser.add_argument("--epoch", type=int, default=3, help="fastText epochs (paper: 3)")
    parser.add_argument(
        "--max-chars", type=int, default=4000, help="characters the classifier sees (4,000)"
    )
    parser.add_argument("--min-site-math", type=int, default=3)
    parser.add_argument("--groups", default="", help="comma-separated groups (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, help="keep the work folders here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not (args.data / "html" / "labels.csv").exists():
        print(f"no {args.data}/html/labels.csv: nothing to measure", file=sys.stderr)
        return 2
    started = time.monotonic()
    with (args.data / "html" / "labels.csv").open(newline="", encoding="utf-8") as fh:
        labelled = len(list(csv.DictReader(fh)))
    pages = load_pages(args.data)
    groups = site_groups(pages, args.min_site_math)
    names = [*sorted(set(groups.values()) - {OTHER}), OTHER]
    if args.groups:
        names = [g for g in names if g in args.groups.split(",")]
    classifier = ClassifierConfig(
        bucket=args.bucket, seed=args.seed, epoch=args.epoch, max_chars=args.max_chars
    )
    print(
        f"{len(pages)} of {labelled} labelled pages ({sum(p.is_math for p in pages)} math) "
        f"have >= {DEFAULT_MIN_TEXT_CHARS} characters of text, extracted in "
        f"{time.monotonic() - started:.1f} s; groups: "
        + ", ".join(f"{f}->{g}" for f, g in groups.items())
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="mine-loso-") as tmp:
        root = args.workdir or Path(tmp)
        for name in names:
            split = split_for(pages, groups, name, seed=args.seed)
            result = run_group(split, root / name, classifier)
            results.append(result)
            print(json.dumps(result), flush=True)
    print()
    print(table(results))
    print(
        f"\ntotal {time.monotonic() - started:.0f} s; fastText bucket {args.bucket:,}, epoch "
        f"{args.epoch}, max_chars {args.max_chars:,}, seed {args.seed}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
