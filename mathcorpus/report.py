"""`mathcorpus report DIR`: one self-contained report.html (inline SVG, no scripts) for a run
folder, built from the files the stages leave behind anywhere under DIR (FORMAT.md): funnels,
dedup clusters, mining iterations, contamination, tokens by domain, training curves. A section
whose files are absent is left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from mathcorpus.report_svg import histogram, horizontal_bars, line_chart
from pipeline.core.run_output import STATS_FILE
from pipeline.decontaminate.config import REPORT_FILE as CONTAMINATION_FILE
from pipeline.dedup.schema import REPORT_FILE as DEDUP_REPORT_FILE
from pipeline.mine.config import (
    ANNOTATIONS_FILE,
    CUT_FILE,
    DOMAINS_FILE,
    HISTOGRAM_FILE,
    RECALL_DIR,
    SUMMARY_FILE,
)
from tokenizer.manifest import MANIFEST_FILE
from trainer.run_files import BENCHMARK_RESULTS_FILE, COMPARISON_FILE, EVAL_CSV, TRAIN_LOG

DEMO_SUMMARY_FILE = "demo_summary.json"
"""What `mathcorpus demo` ran and how long each step took (in the demo's workdir)."""

REPORT_FILE = "report.html"
# Stage names (stats.json "stage") in pipeline order, for the funnel sections.
FUNNEL_ORDER = (
    "pool",
    "dedup",
    "negatives",
    "training_sample",
    "recall",
    "expansion",
    "mining_final",
    "decontaminate",
    "shards",
)
SKIP_DIRS = {"_staging", "_fetch_cache", "dead_letter", "duplicates", "band_index", "__pycache__"}


@dataclass(frozen=True)
class Section:
    """One block of the report."""

    title: str
    body: str
    kind: str
    rank: int = 0
    """Order among sections of one kind (the funnel follows the pipeline)."""


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _rel(root: Path, path: Path) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else rel


def _walk(root: Path) -> Iterator[Path]:
    """Every folder under root (root included), sorted, skipping bulky output sub-folders."""
    yield root
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for d in dirnames:
            yield Path(dirpath) / d


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = " class='num'" if i >= numeric_from and isinstance(v, int | float) else ""
            text = f"{v:,}" if isinstance(v, int) else (f"{v:.4g}" if isinstance(v, float) else v)
            cells.append(f"<td{cls}>{escape(str(text))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# --- sections -----------------------------------------------------------------------------


def funnel_section(root: Path, folder: Path) -> Section | None:
    path = folder / STATS_FILE
    if not path.is_file():
        return None
    stats = _read_json(path)
    if "stages" not in stats:
        return None  # a summary that is not a stage's stats (e.g. a mining iteration's)
    stages = stats["stages"]
    funnel = stats.get("funnel") or [
        {"stage": k, "in": v["in"], "kept": v["kept"]} for k, v in stages.items()
    ]
    rows = []
    for step in funnel:
        s = stages.get(step["stage"], {})
        losses = [f"{k}: {v:,}" for k, v in s.get("dropped", {}).items()]
        losses += [f"dead-letter {k}: {v:,}" for k, v in s.get("dead_lettered", {}).items()]
        rows.append(
            [
                step["stage"],
                step["in"],
                step["kept"],
                "; ".join(losses) or "-",
                "yes" if s.get("balanced", True) else "NO",
            ]
        )
    chart = horizontal_bars(
        [(f"{r[0]} in", float(r[1])) for r in rows[:1]] + [(r[0], float(r[2])) for r in rows],
        f"records kept per stage ({stats.get('stage', folder.name)})",
    )
    balanced = stats.get("all_balanced", True)
    status = (
        "<p class='ok'>every stage balances: in = kept + dropped + dead-lettered</p>"
        if balanced
        else "<p class='bad'>UNBALANCED: some records are not accounted for</p>"
    )
    extra = {
        k: v
        for k, v in stats.items()
        if k not in {"stages", "funnel", "all_balanced", "schema_version"}
        and isinstance(v, int | float | str)
    }
    facts = ", ".join(f"{k} = {v}" for k, v in extra.items())
    body = f"{status}<p class='muted'>{escape(facts)}</p>{chart}" + _table(
        ["stage", "in", "kept", "dropped / dead-lettered (reason: count)", "balanced"], rows
    )
    rank = FUNNEL_ORDER.index(stats.get("stage")) if stats.get("stage") in FUNNEL_ORDER else 99
    return Section(f"Funnel: {_rel(root, folder)}", body, "funnel", rank)


def dedup_section(root: Path, folder: Path) -> Section | None:
    path = folder / DEDUP_REPORT_FILE
    if not path.is_file():
        return None
    report = _read_json(path)
    parts = [
        f"<p>MinHash {report['minhash']['bands']} bands x {report['minhash']['rows']} rows on "
        f"{report['minhash']['n']}-{report['minhash']['shingle']} shingles: threshold "
        f"{report['threshold']} (P(candidate) at similarity "
        + ", ".join(f"{s}: {p}" for s, p in report["s_curve"].items())
        + ").</p>"
    ]
    for kind, sizes in report.get("cluster_sizes", {}).items():
        if sizes:
            parts.append(
                horizontal_bars(
                    [(f"size {s['size']}", float(s["clusters"])) for s in sizes[:20]],
                    f"{kind} duplicate clusters by size",
                )
            )
    sample = report.get("pair_sample", {})
    hist = sample.get("similarity_histogram", [])
    if hist:
        edges = [i / 20 for i in range(21)]
        counts = [0.0] * 20
        for b in hist:
            counts[min(19, round(b["from"] * 20))] += b["pairs"]
        parts.append(
            histogram(
                edges,
                counts,
                f"true Jaccard of sampled duplicate pairs (1 cluster in {sample.get('rate')})",
                marker=report["threshold"],
                marker_label="LSH threshold",
                x_label="Jaccard similarity",
            )
        )
    closest = sample.get("closest_to_threshold", [])
    if closest:
        parts.append("<h4>Pairs closest to the threshold</h4>")
        parts.append(
            _table(
                ["Jaccard", "kept", "duplicate", "duplicate text (start)"],
                [
                    [p["jaccard"], p["kept_url"], p["duplicate_url"], p["duplicate_snippet"][:160]]
                    for p in closest[:8]
                ],
                numeric_from=0,
            )
        )
    return Section(f"Deduplication: {_rel(root, folder)}", "".join(parts), "dedup")


def manifest_section(root: Path, folder: Path) -> Section | None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest = _read_json(path)
    totals = manifest.get("totals", {})
    by_source = totals.get("by_source", {})
    rows = [
        [name, info.get("domain", ""), info["shards"], info["rows"], info["tokens"], info["bytes"]]
        for name, info in sorted(by_source.items())
    ]
    tokenizer = manifest.get("tokenizer", {})
    body = (
        f"<p>tokenizer {escape(str(tokenizer.get('fingerprint', ''))[:16])}..., vocabulary "
        f"{tokenizer.get('vocab_size', '?'):,}; {totals.get('tokens', 0):,} tokens in "
        f"{totals.get('shards', 0)} shards</p>"
        + horizontal_bars(
            [(f"{r[0]} ({r[1]})", float(r[4])) for r in rows], "tokens by source", color="#109618"
        )
        + _table(["source", "domain", "shards", "documents", "tokens", "bytes"], rows, 2)
    )
    return Section(f"Tokens: {_rel(root, folder)}", body, "tokens")


def contamination_section(root: Path, folder: Path) -> Section | None:
    path = folder / CONTAMINATION_FILE
    if not path.is_file():
        return None
    report = _read_json(path)
    benchmarks = report.get("benchmarks", report.get("per_benchmark", {}))
    rows = []
    if isinstance(benchmarks, dict):
        for name, info in sorted(benchmarks.items()):
            leaked = info.get("leaked_items", info.get("items", []))
            rows.append(
                [
                    name,
                    info.get("items_indexed", info.get("items_total", "")),
                    info.get("pages_removed", info.get("pages", 0)),
                    len(leaked) if isinstance(leaked, list) else leaked,
                    ", ".join(str(x) for x in (leaked[:8] if isinstance(leaked, list) else [])),
                ]
            )
    summary = {
        k: v
        for k, v in report.items()
        if isinstance(v, int | float | str) and k != "schema_version"
    }
    body = f"<p class='muted'>{escape(', '.join(f'{k} = {v}' for k, v in summary.items()))}</p>"
    body += _table(["benchmark", "items", "pages removed", "items leaked", "leaked item ids"], rows)
    return Section(f"Contamination: {_rel(root, folder)}", body, "contamination")


def _iteration_dirs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.glob("iter_*") if p.is_dir() and p.name[5:].isdigit()),
        key=lambda p: int(p.name[5:]),
    )


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _score_histogram(iteration: Path) -> str:
    """The recall step's token-weighted logit histogram (sparse bins, FORMAT.md "Mining work
    folder"), regrouped into 40 bars over its non-empty range, with the cut marked."""
    hist_path, cut_path = iteration / RECALL_DIR / HISTOGRAM_FILE, iteration / RECALL_DIR / CUT_FILE
    if not hist_path.is_file():
        return ""
    hist = _read_json(hist_path)
    cut = _read_json(cut_path) if cut_path.is_file() else {}
    nonempty = hist.get("nonempty", [])
    if not nonempty:
        return ""
    per_unit, limit = hist["bins_per_unit"], hist["t_limit"]

    def logit(b: float) -> float:
        return b / per_unit - limit

    lo, hi = logit(nonempty[0][0]), logit(nonempty[-1][0] + 1)
    if cut.get("cut_logit") is not None:
        lo, hi = min(lo, cut["cut_logit"]), max(hi, cut["cut_logit"])
    bars = 40
    width = (hi - lo) / bars or 1.0
    counts = [0.0] * bars
    for b, _pages, tokens in nonempty:
        counts[min(bars - 1, max(0, int((logit(b) - lo) / width)))] += tokens
    edges = [lo + i * width for i in range(bars + 1)]
    return histogram(
        edges,
        counts,
        f"{iteration.name}: classifier score (log-odds of math), weighted by tokens",
        marker=cut.get("cut_logit"),
        marker_label=f"cut ({cut.get('rule', '')}): {cut.get('pages', '?')} pages",
        x_label="logit P(math)",
    )


def mining_section(root: Path, folder: Path) -> Section | None:
    iterations = _iteration_dirs(folder)
    if not iterations:
        return None
    parts: list[str] = []
    summary_rows = []
    for it in iterations:
        stats = _read_json(it / STATS_FILE) if (it / STATS_FILE).is_file() else {}
        accepted = stats.get("prefixes_accepted", [])
        summary_rows.append(
            [
                it.name,
                stats.get("seed_positives", ""),
                stats.get("pages_collected", ""),
                stats.get("tokens_collected", ""),
                stats.get("overlap_with_previous") if stats.get("overlap_with_previous") else "-",
                len(stats.get("math_domains", [])),
                len(accepted) if isinstance(accepted, list) else accepted,
            ]
        )
        parts.append(f"<h3>{it.name}</h3>")
        parts.append(_score_histogram(it))
        domains = it / RECALL_DIR / DOMAINS_FILE
        if domains.is_file():
            table = _csv_rows(domains)
            if table:
                parts.append(
                    "<h4>Domains by collected fraction (math: above the threshold)</h4>"
                    + _table(table[0], table[1:16])
                )
        annotations = it / ANNOTATIONS_FILE
        if annotations.is_file():
            table = _csv_rows(annotations)
            if table:
                header = table[0]
                d = header.index("decision") if "decision" in header else None
                accepted_rows = [r for r in table[1:] if d is None or r[d] == "accept"]
                parts.append(
                    f"<h4>URL prefixes accepted ({len(accepted_rows)} of {len(table) - 1} "
                    "listed); their uncollected pages join the next seed</h4>"
                    + _table(header, accepted_rows[:20])
                )
    head = _table(
        ["iteration", "seed positives", "pages", "tokens", "overlap", "math domains", "prefixes"],
        summary_rows,
    )
    final = folder / SUMMARY_FILE
    note = ""
    if final.is_file():
        summary = _read_json(final)
        note = (
            f"<p>status {escape(str(summary.get('status')))}; stopped because "
            f"{escape(str(summary.get('stopped_because')))} after iteration "
            f"{summary.get('final_iteration')}</p>"
        )
    return Section(f"Mining loop: {_rel(root, folder)}", note + head + "".join(parts), "mining")


def comparison_section(root: Path, folder: Path) -> Section | None:
    path = folder / COMPARISON_FILE
    if not path.is_file():
        return None
    data = _read_json(path)
    rows = []
    for name, run in data.get("runs", {}).items():
        rows.append(
            [
                name,
                run.get("before_math", {}).get("code", ""),
                run.get("end", {}).get("code", ""),
                run.get("code_loss_change_after_math", ""),
                run.get("end", {}).get("math", ""),
            ]
        )
    verdict = (
        "the two-stage run forgets code during its math stage"
        if data.get("two_stage_forgets_code")
        else "no forgetting measured at this scale"
    )
    body = (
        f"<p>DeepSeekMath sec. 5.1.1: {escape(verdict)}; math stage starts at step "
        f"{data.get('math_stage_starts_at_step')}; final code-loss gap (two-stage minus "
        f"one-stage) {data.get('final_code_loss_gap')} nats.</p>"
        + _table(
            [
                "run",
                "code loss when math starts",
                "code loss at the end",
                "change over the math stage",
                "math loss at the end",
            ],
            rows,
        )
    )
    return Section(f"Two-stage vs one-stage: {_rel(root, folder)}", body, "training", -1)


def _read_csv_series(path: Path) -> dict[str, list[tuple[float, float]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    x_key = next((k for k in ("tokens", "step") if k in rows[0]), None)
    if x_key is None:
        return {}
    series: dict[str, list[tuple[float, float]]] = {}
    if "domain" in rows[0] and "loss" in rows[0]:  # long format: step, domain, loss
        for r in rows:
            try:
                series.setdefault(r["domain"], []).append((float(r[x_key]), float(r["loss"])))
            except ValueError:
                continue
        return series
    for key in rows[0]:
        if key in {x_key, "step", "tokens", "time_s", "lr", "stage"}:
            continue
        points = []
        for r in rows:
            try:
                points.append((float(r[x_key]), float(r[key])))
            except (TypeError, ValueError):
                continue
        if points:
            series[key] = points
    return series


def training_section(root: Path, folder: Path) -> Section | None:
    charts = []
    for name, title in (
        (TRAIN_LOG, "training loss"),
        (EVAL_CSV, "held-out loss per domain (the forgetting curve)"),
    ):
        path = folder / name
        if path.is_file():
            series = _read_csv_series(path)
            if name == TRAIN_LOG:
                series = {k: v for k, v in series.items() if "loss" in k}
            chart = line_chart(series, title, x_label="tokens seen", y_label="loss")
            if chart:
                charts.append(chart)
    if not charts:
        return None
    return Section(f"Training: {_rel(root, folder)}", "".join(charts), "training")


# --- the one-screen summary at the top ----------------------------------------------------


def _stage_funnels(root: Path) -> list[tuple[str, str, int, int]]:
    """(stage, folder, pages in, pages out) of every stage's stats.json, in pipeline order."""
    rows = []
    for folder in _walk(root):
        path = folder / STATS_FILE
        if not path.is_file():
            continue
        stats = _read_json(path)
        stage = stats.get("stage")
        funnel = stats.get("funnel")
        if stage not in FUNNEL_ORDER or not funnel:
            continue
        rows.append((stage, _rel(root, folder), int(funnel[0]["in"]), int(funnel[-1]["kept"])))
    return sorted(rows, key=lambda r: (FUNNEL_ORDER.index(r[0]), r[1]))


def _tokens_by_domain(root: Path) -> dict[str, int]:
    tokens: dict[str, int] = {}
    for folder in _walk(root):
        path = folder / MANIFEST_FILE
        if path.is_file():
            for info in _read_json(path).get("totals", {}).get("by_source", {}).values():
                domain = str(info.get("domain", "?"))
                tokens[domain] = tokens.get(domain, 0) + int(info.get("tokens", 0))
    return tokens


def _leaks(root: Path) -> list[str]:
    """One line per contamination report: pages removed, benchmarks with leaked items."""
    lines = []
    for folder in _walk(root):
        path = folder / CONTAMINATION_FILE
        if not path.is_file():
            continue
        report = _read_json(path)
        benchmarks = report.get("benchmarks", report.get("per_benchmark", {}))
        leaked = []
        if isinstance(benchmarks, dict):
            for name, info in sorted(benchmarks.items()):
                items = info.get("leaked_items", info.get("items", []))
                count = len(items) if isinstance(items, list) else int(items or 0)
                if count:
                    leaked.append(f"{name}: {count} items")
        removed = report.get("pages_removed", report.get("removed", "?"))
        lines.append(
            f"{_rel(root, folder)}: {removed} pages removed"
            + (f" ({', '.join(leaked)})" if leaked else "")
        )
    return lines


def _experiment_chart(folder: Path, comparison: dict[str, Any]) -> str:
    """Each arm's code and math held-out loss on one pair of axes, the stage switch marked."""
    series: dict[str, list[tuple[float, float]]] = {}
    switch_tokens = None
    switch_step = comparison.get("math_stage_starts_at_step")
    for run in comparison.get("runs", {}):
        path = folder / run / EVAL_CSV
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("domain") not in ("code", "math"):
                    continue
                try:
                    point = (float(row["tokens"]), float(row["loss"]))
                except (KeyError, ValueError):
                    continue
                series.setdefault(f"{run}: {row['domain']}", []).append(point)
                if (
                    run == "two_stage"
                    and switch_tokens is None
                    and row.get("step") == str(switch_step)
                ):
                    switch_tokens = point[0]
    markers = [(switch_tokens, "math stage starts")] if switch_tokens is not None else []
    return line_chart(
        series,
        "held-out loss per arm (DeepSeekMath sec. 5.1.1)",
        x_label="tokens seen",
        y_label="loss (nats/token)",
        width=560,
        markers=markers,
    )


def _benchmark_table(folder: Path, comparison: dict[str, Any]) -> str:
    """Benchmark figures per arm and stage, from each arm's benchmark results (if evaluated)."""
    rows = []
    for run in comparison.get("runs", {}):
        for path in sorted((folder / run).glob(f"**/{BENCHMARK_RESULTS_FILE}")):
            results = _read_json(path)
            stage = path.parent.name
            for name, info in sorted(results.get("benchmarks", {}).items()):
                score = info.get("pass@1", info.get("accuracy"))
                rows.append([run, stage, name, score, info.get("gold_nll")])
    if not rows:
        return "<p class='muted'>no benchmark results under this experiment yet</p>"
    return _table(["arm", "after", "benchmark", "accuracy / pass@1", "gold NLL"], rows, 3)


def summary_html(root: Path) -> str:
    """The one-screen summary a person reads first; "" when the folder holds no stage output."""
    funnels = _stage_funnels(root)
    tokens = _tokens_by_domain(root)
    leaks = _leaks(root)
    parts = []
    if funnels:
        parts.append(
            _table(["stage", "folder", "pages in", "pages out"], [list(r) for r in funnels], 2)
        )
    facts = []
    if tokens:
        facts.append(
            "tokens by domain: " + ", ".join(f"{d} {n:,}" for d, n in sorted(tokens.items()))
        )
    if leaks:
        facts.append("leaked: " + "; ".join(leaks))
    if facts:
        parts.append("".join(f"<p>{escape(f)}</p>" for f in facts))
    for folder in _walk(root):
        path = folder / COMPARISON_FILE
        if path.is_file():
            comparison = _read_json(path)
            parts.append(
                "<div class='pair'><div>"
                + _experiment_chart(folder, comparison)
                + "</div><div>"
                + _benchmark_table(folder, comparison)
                + "</div></div>"
            )
            break
    if not parts:
        return ""
    return "<section id='summary'><h2>Summary</h2>" + "".join(parts) + "</section>"


SECTION_BUILDERS: tuple[Callable[[Path, Path], Section | None], ...] = (
    funnel_section,
    dedup_section,
    mining_section,
    contamination_section,
    manifest_section,
    comparison_section,
    training_section,
)


def collect_sections(root: Path) -> list[Section]:
    sections: list[Section] = []
    for folder in _walk(root):
        for build in SECTION_BUILDERS:
            section = build(root, folder)
            if section is not None:
                sections.append(section)
    order = {k: i for i, k in enumerate(("funnel", "dedup", "mining", "contamination", "tokens"))}
    return sorted(sections, key=lambda s: (order.get(s.kind, 99), s.rank))


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.ok{color:#107010}.bad{color:#b00000;font-weight:bold}.muted{color:#666;font-size:.9em}
nav a{margin-right:1em}svg{display:block;margin:.6em 0}pre{background:#f7f7f7;padding:.6em}
.pair{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}
"""


def render_report(root: Path, sections: Sequence[Section]) -> str:
    nav = "".join(f"<a href='#s{i}'>{escape(s.title)}</a>" for i, s in enumerate(sections))
    body = "".join(
        f"<section id='s{i}'><h2>{escape(s.title)}</h2>{s.body}</section>"
        for i, s in enumerate(sections)
    )
    summary = ""
    if (root / DEMO_SUMMARY_FILE).is_file():
        demo = _read_json(root / DEMO_SUMMARY_FILE)
        times = demo.get("elapsed_s", {})
        summary = (
            "<h2>Demo summary</h2>"
            + _table(["step", "seconds"], [[k, v] for k, v in times.items() if k != "total"])
            + f"<p>total {times.get('total', '?')} s</p><details><summary>demo_summary.json"
            f"</summary><pre>{escape(json.dumps(demo, indent=2))}</pre></details>"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    empty = "" if sections else "<p class='bad'>No stage outputs found under this folder.</p>"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>mathcorpus report: {escape(root.name)}</title><style>{STYLE}</style></head>"
        f"<body><h1>mathcorpus run report: {escape(str(root))}</h1>"
        f"<p class='muted'>generated {stamp}; {len(sections)} sections</p>"
        f"{summary_html(root)}<nav>{nav}</nav>{empty}{summary}{body}</body></html>"
    )


def write_report(root: Path, output: Path | None = None) -> Path:
    """Build the report for `root` and write it atomically (temp file, then rename)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    target = output or root / REPORT_FILE
    html = render_report(root, collect_sections(root))
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mathcorpus report", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="a run folder (e.g. runs/demo or runs/demo/pool)")
    parser.add_argument("--output", help=f"where to write (default FOLDER/{REPORT_FILE})")
    args = parser.parse_args(argv)
    try:
        path = write_report(Path(args.folder), Path(args.output) if args.output else None)
    except FileNotFoundError as exc:
        print(f"mathcorpus report: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
