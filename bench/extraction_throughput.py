"""Extraction throughput: pages/s/core for both backends, with and without the maths pre-pass.

Input: every page under ../shared/data/html (531 real pages, 89 MB of HTML; read in place,
nothing copied into the repository). Single process, after one warm-up pass; each figure is the
best of --repeat passes, in CPU seconds of this process (so pages/s here is pages/s per core,
and other load on the machine skews it less than wall time would). The machines are noisy, so
every line is also printed as a ratio against `trafilatura.extract` with its defaults, measured
in the same run.

    .venv/bin/python bench/extraction_throughput.py [--repeat 3] [--json out.json]

Lines:
  markers only           has_math_markers on every page (the cost every page pays)
  pre-pass               has_math_markers + rewrite_math where it fires (no backend)
  <backend> backend      the backend alone on the raw page (no maths handling)
  <backend> extract_page what the pipeline runs: pre-pass + backend
  trafilatura default    trafilatura.extract(html) as shipped: the baseline
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract.extractors import EXTRACTOR_NAMES, extract_page, get_extractor  # noqa: E402
from pipeline.extract.math_markup import has_math_markers, rewrite_math  # noqa: E402

SHARED_HTML = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "html"
)


def real_pages() -> list[str]:
    """Decoded HTML of every page under ../shared/data/html, in a stable order."""
    pages = []
    for path in sorted(SHARED_HTML.rglob("*")):
        if path.name.endswith(".html.gz"):
            data = gzip.decompress(path.read_bytes())
        elif path.suffix == ".html":
            data = path.read_bytes()
        else:
            continue
        pages.append(data.decode("utf-8", errors="replace"))
    return pages


def best_pages_per_second(run: Callable[[str], object], pages: list[str], repeat: int) -> float:
    """Pages per CPU second of this process: best of `repeat` passes after one warm-up."""
    for html in pages[:20]:
        run(html)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for html in pages:
            run(html)
        best = min(best, time.process_time() - start)
    return len(pages) / best


def _prepass(html: str) -> object:
    return rewrite_math(html) if has_math_markers(html) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes per line; best is kept")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    if not SHARED_HTML.is_dir():
        print(f"real pages not available: {SHARED_HTML} is absent", file=sys.stderr)
        return 2
    import trafilatura

    pages = real_pages()
    n_flagged = sum(has_math_markers(html) for html in pages)
    mean_kb = sum(len(html) for html in pages) / len(pages) / 1000
    print(f"{len(pages)} pages, mean {mean_kb:.0f} k characters; {n_flagged} pass the marker test")

    lines: dict[str, Callable[[str], object]] = {
        "trafilatura default": lambda html: trafilatura.extract(html),
        "markers only": has_math_markers,
        "pre-pass": _prepass,
    }
    for name in EXTRACTOR_NAMES:
        extractor = get_extractor(name)
        lines[f"{name} backend"] = extractor.extract
        lines[f"{name} extract_page"] = lambda html, e=extractor: extract_page(html, e)

    results: dict[str, float] = {}
    for label, run in lines.items():
        results[label] = best_pages_per_second(run, pages, args.repeat)
    baseline = results["trafilatura default"]
    print(f"{'line':28s} {'pages/s/core':>13s} {'ms/page':>9s} {'x traf default':>15s}")
    for label, rate in results.items():
        print(f"{label:28s} {rate:13.1f} {1000 / rate:9.3f} {rate / baseline:15.2f}")
    for name in EXTRACTOR_NAMES:
        overhead = results[f"{name} backend"] / results[f"{name} extract_page"] - 1
        print(f"maths pre-pass overhead on {name}: {overhead:+.1%} of its time per page")
    if args.json:
        args.json.write_text(json.dumps({"pages": len(pages), "pages_per_s": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
