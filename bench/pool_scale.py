"""Pool scaling: does `mathcorpus pool` keep flat memory and linear cost as the input grows?

    .venv/bin/python bench/pool_scale.py [--sizes 4000 12000 40000] [--records-per-file 2000]
                                         [--datatrove] [--out bench/results/pool_scale.json]

For each size N, N real-size pages are written as gzip WARC files (several files per size, as a
crawl comes in files; a Common Crawl WARC file holds ~40k responses) into a temp folder, never
into the repository: the labelled real pages of ../shared/data/html (labels.csv; ~100-170 KB of
HTML each) cycled, every copy with its own URL (`https://host.example/c<cycle>/<path>`) and its
own fetch time (WARC-Date one second after the previous record). Then the installed console
script runs on them exactly as a user would:

    .venv/bin/mathcorpus pool --input DIR/*.warc.gz --output OUT

measured from launch to exit: wall time, pages/s (pages read / wall s, start-up included), and
the peak RSS of the whole process tree (the RSS of the process and all its descendants, summed,
sampled from /proc every 0.2 s; bench/compare_datatrove.py's sampler), plus what its stats.json
says (pages read and written, and the `shuffle_bytes_per_page` figures where the pool records
them). The ratios are against the smallest size measured in the same run:

- peak RSS at N / peak RSS at the smallest size: flat memory means ~1 (goal: <= 1.5x, and under
  3 GiB at 40k pages);
- pages/s at N / pages/s at the smallest size: linear cost means ~1 (start-up, ~8 s here, weighs
  more on the smallest size, so a ratio above 1 is expected); the marginal pages/s (extra pages
  over the smallest size / extra wall seconds) cancels the start-up and stays level when the
  cost is linear.

The copies of a page are exact duplicates of its text, so exact dedup removes all but one copy
of each page and pages written stay near the number of distinct pages; every page is still read,
URL-deduplicated, extracted and hashed, and its keys cross the dedup shuffle.

With --datatrove the same WARC folder also goes through DataTrove (WarcReader -> Trafilatura ->
its four MinHash stages -> JsonlWriter, in the pinned environment of
bench/datatrove-requirements.txt that bench/compare_datatrove.py builds), and the ratios
ours / DataTrove of pages/s and peak RSS are printed per size. DataTrove extracts with
Trafilatura (12-16 pages/s on this 2-core machine), so 12k pages take it ~16 minutes.

Measured here (2026-12-06, 2 shared cores): before the keys-only shuffles (65c1035) peak RSS
3.4 GiB at 4k pages and 11.4 GiB at 12k (3.4x); after them (9149f7f) 596 / 596 / 638 MiB at
4k / 12k / 40k (1.07x), marginal rate 135-139 pages/s. After the smaller graph and the cached
Unicode tables (43b90ec, idle machine): 531 / 584 MiB at 4k / 40k (1.10x), 185 / 198 pages/s,
marginal 200; with --workers 2, 1.39x / 1.70x.

A run whose tree exceeds --rss-limit-gib is killed (the machines here are shared) and reported
as such. The JSON (--out; bench/results/ is git-ignored) holds every figure and the versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_datatrove import (  # noqa: E402
    DATATROVE_PYTHON,
    OURS_CLI,
    Measurement,
    ensure_datatrove_venv,
    run_measured,
)
from compare_datatrove_inputs import LabelledPage, read_labelled_pages  # noqa: E402

SHARED_DATA = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "bench" / "results" / "pool_scale.json"
SAMPLE_INTERVAL_S = 0.2  # tree RSS sampling period; a /proc scan of a few processes is ~ms
FIRST_FETCH = datetime(2024, 3, 1, tzinfo=UTC)  # WARC-Date of the first record
MIB = 1024 * 1024
GIB_IN_MIB = 1024
GOAL_RSS_RATIO = 1.5  # peak RSS at any size / at the smallest
GOAL_RSS_MIB_AT_40K = 3 * GIB_IN_MIB


def copy_url(page: LabelledPage, cycle: int) -> str:
    """`https://host.example/path` -> `https://host.example/c<cycle>/path` (distinct per copy)."""
    scheme_host, _, path = page.url.partition(".example/")
    return f"{scheme_host}.example/c{cycle}/{path}"


def write_warcs(pages: list[LabelledPage], n: int, records_per_file: int, folder: Path) -> int:
    """Write `n` response records cycling over `pages` into `folder`; returns the bytes written.

    File k holds records k*records_per_file .. (k+1)*records_per_file - 1, so the files of a
    size are the same whatever else runs; WARC-Date advances one second per record.
    """
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for first in range(0, n, records_per_file):
        path = folder / f"scale-{first // records_per_file:05d}.warc.gz"
        with path.open("wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            for i in range(first, min(n, first + records_per_file)):
                page = pages[i % len(pages)]
                http_headers = StatusAndHeaders(
                    "200 OK",
                    [
                        ("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Length", str(len(page.html))),
                    ],
                    protocol="HTTP/1.1",
                )
                fetched = FIRST_FETCH + timedelta(seconds=i)
                record = writer.create_warc_record(
                    copy_url(page, i // len(pages)),
                    "response",
                    payload=io.BytesIO(page.html),
                    http_headers=http_headers,
                    warc_headers_dict={
                        "WARC-Date": fetched.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        # As Common Crawl's records carry it; DataTrove's reader keys on it.
                        "WARC-Identified-Payload-Type": "text/html",
                    },
                )
                writer.write_record(record)
        written += path.stat().st_size
    return written


@dataclass
class SizeRun:
    """One tool on one input size."""

    tool: str  # "ours" or "DataTrove"
    size: int  # pages written into the WARC files
    returncode: int
    killed_over_limit: bool
    wall_s: float
    cpu_s: float  # user + system of the whole tree
    pages_in: int  # pages the tool's reader passed on
    pages_out: int  # documents written
    pages_per_s: float  # pages_in / wall_s, start-up included
    peak_rss_mib: float  # summed RSS of the tree (or the largest process's max RSS if higher)
    peak_pss_mib: float  # summed PSS (shared pages split between the processes)
    peak_processes: int
    stats: dict[str, Any]  # ours: stats.json without the per-stage detail; DataTrove: counts
    log: str


def _from_measurement(
    tool: str, size: int, m: Measurement, pages_in: int, pages_out: int, stats: dict[str, Any]
) -> SizeRun:
    return SizeRun(
        tool=tool,
        size=size,
        returncode=m.returncode,
        killed_over_limit=m.killed_over_limit,
        wall_s=round(m.wall_s, 2),
        cpu_s=round(m.cpu_s, 2),
        pages_in=pages_in,
        pages_out=pages_out,
        pages_per_s=round(pages_in / m.wall_s, 2) if m.wall_s else 0.0,
        peak_rss_mib=round(m.peak_rss_mib, 1),
        peak_pss_mib=round(m.peak_tree_pss_mib, 1),
        peak_processes=m.peak_processes,
        stats=stats,
        log=m.log,
    )


def source_env(source: Path | None) -> dict[str, str] | None:
    """The environment that makes the console script import `source`'s packages, or None.

    The project is installed editable; its import finder comes after PYTHONPATH, so a checkout
    named here (a `git worktree` of some commit) is what the same console script runs.
    """
    if source is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    return env


def git_state(folder: Path) -> dict[str, Any]:
    """Commit and whether tracked files differ from it (what a figure was measured on)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True)
        return out.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "pipeline", "mathcorpus")
    return {"folder": str(folder), "commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)}


def run_ours(
    files: list[Path],
    size: int,
    work: Path,
    rss_limit_mib: float | None,
    source: Path | None = None,
    beam_args: tuple[str, ...] = (),
) -> SizeRun:
    """`mathcorpus pool --input FILES --output work/pool [BEAM ARGS]` as a user types it."""
    output = work / "pool"
    command = [
        str(OURS_CLI),
        "pool",
        *("--input", *map(str, files)),
        *("--output", str(output)),
        *beam_args,
    ]
    m = run_measured(
        command,
        work / "ours.log",
        env=source_env(source),
        interval_s=SAMPLE_INTERVAL_S,
        rss_limit_mib=rss_limit_mib,
    )
    stats: dict[str, Any] = {}
    pages_in = pages_out = 0
    stats_path = output / "stats.json"
    if m.returncode == 0 and stats_path.exists():
        doc = json.loads(stats_path.read_text())
        stages = doc.get("stages", {})
        pages_in = int(stages.get("read", {}).get("kept", 0))
        pages_out = int(doc.get("pages_written", 0))
        stats = {
            "funnel": doc.get("funnel"),
            "all_balanced": doc.get("all_balanced"),
            "pages_written": pages_out,
            # Bytes per page (Beam's coder) that crossed each shuffle; pools from before the
            # keys-only shuffles (fe558d2) do not record it.
            "shuffle": doc.get("shuffle_bytes_per_page"),
            "elapsed_s": doc.get("elapsed_s"),
        }
    return _from_measurement("ours", size, m, pages_in, pages_out, stats)


def run_datatrove(folder: Path, size: int, work: Path, rss_limit_mib: float | None) -> SizeRun:
    """DataTrove's five executor runs (compare_datatrove.datatrove_run) on the same folder."""
    dt_work = work / "datatrove"
    dt_work.mkdir(parents=True)
    script = Path(__file__).resolve().parent / "compare_datatrove.py"
    command = [str(DATATROVE_PYTHON), str(script), "_datatrove_run", str(folder), str(dt_work)]
    m = run_measured(
        command,
        work / "datatrove.log",
        interval_s=SAMPLE_INTERVAL_S,
        rss_limit_mib=rss_limit_mib,
    )
    pages_in = pages_out = 0
    stats: dict[str, Any] = {}
    if m.returncode == 0:
        extract = json.loads((dt_work / "logs" / "extract" / "stats.json").read_text())
        for step in extract:
            step_stats = step.get("stats", {})
            if "Warc" in str(step.get("name", "")):
                docs = step_stats.get("documents", 0)
                pages_in = int(docs.get("total", 0) if isinstance(docs, dict) else docs)
            if "Trafilatura" in str(step.get("name", "")):
                stats["trafilatura"] = step_stats
        for path in (dt_work / "output").glob("*.jsonl*"):
            import gzip

            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as fh:
                pages_out += sum(1 for line in fh if line.strip())
    return _from_measurement("DataTrove", size, m, pages_in, pages_out, stats)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarise(runs: list[SizeRun], datatrove: list[SizeRun]) -> list[dict[str, Any]]:
    """One row per size: our figures, ratios to the smallest size, ratios to DataTrove."""
    ok = [r for r in runs if r.returncode == 0]
    base = min(ok, key=lambda r: r.size) if ok else None
    by_size = {r.size: r for r in datatrove}
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "size": r.size,
            "ok": r.returncode == 0,
            "killed_over_limit": r.killed_over_limit,
            "pages_in": r.pages_in,
            "pages_out": r.pages_out,
            "wall_s": r.wall_s,
            "pages_per_s": r.pages_per_s,
            "peak_rss_mib": r.peak_rss_mib,
            "peak_pss_mib": r.peak_pss_mib,
            "rss_per_page_kib": round(r.peak_rss_mib * 1024 / r.size, 1),
            "rss_ratio_vs_smallest": None,
            "pages_per_s_ratio_vs_smallest": None,
            # (pages - smallest's pages) / (wall - smallest's wall): the rate with the fixed
            # start-up cancelled out; linear cost keeps it level from size to size.
            "marginal_pages_per_s": None,
        }
        if base is not None and r.returncode == 0:
            row["rss_ratio_vs_smallest"] = _ratio(r.peak_rss_mib, base.peak_rss_mib)
            row["pages_per_s_ratio_vs_smallest"] = _ratio(r.pages_per_s, base.pages_per_s)
            if r.size > base.size and r.wall_s > base.wall_s:
                marginal = (r.pages_in - base.pages_in) / (r.wall_s - base.wall_s)
                row["marginal_pages_per_s"] = round(marginal, 2)
        dt = by_size.get(r.size)
        if dt is not None:
            row["datatrove"] = {
                "ok": dt.returncode == 0,
                "pages_in": dt.pages_in,
                "pages_out": dt.pages_out,
                "wall_s": dt.wall_s,
                "pages_per_s": dt.pages_per_s,
                "peak_rss_mib": dt.peak_rss_mib,
            }
            if dt.returncode == 0 and r.returncode == 0:
                row["pages_per_s_ratio_vs_datatrove"] = _ratio(r.pages_per_s, dt.pages_per_s)
                row["rss_ratio_vs_datatrove"] = _ratio(r.peak_rss_mib, dt.peak_rss_mib)
        rows.append(row)
    return rows


def _cell(value: Any, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else format(value, spec) + suffix


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ["pages", "in", "out", "wall s", "pages/s", "peak RSS MiB", "KiB/page"]
    head += ["RSS x", "rate x", "marginal pages/s"]
    with_dt = any("datatrove" in r for r in rows)
    if with_dt:
        head += ["DT pages/s", "DT RSS MiB", "pages/s vs DT", "RSS vs DT"]
    body = []
    for r in rows:
        status = "" if r["ok"] else (" KILLED" if r["killed_over_limit"] else " FAILED")
        cells = [
            f"{r['size']}{status}",
            str(r["pages_in"]),
            str(r["pages_out"]),
            f"{r['wall_s']:.1f}",
            f"{r['pages_per_s']:.1f}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['rss_per_page_kib']:.0f}",
            _cell(r["rss_ratio_vs_smallest"], ".2f", "x"),
            _cell(r["pages_per_s_ratio_vs_smallest"], ".2f", "x"),
            _cell(r["marginal_pages_per_s"], ".1f"),
        ]
        if with_dt:
            dt = r.get("datatrove", {})
            cells += [
                _cell(dt.get("pages_per_s"), ".1f"),
                _cell(dt.get("peak_rss_mib"), ".0f"),
                _cell(r.get("pages_per_s_ratio_vs_datatrove"), ".2f", "x"),
                _cell(r.get("rss_ratio_vs_datatrove"), ".2f", "x"),
            ]
        body.append(cells)
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for cells in body:
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    print(
        "RSS x / rate x: peak RSS and pages/s against the smallest size of this run "
        f"(goals: RSS x <= {GOAL_RSS_RATIO}, under {GOAL_RSS_MIB_AT_40K / GIB_IN_MIB:.0f} GiB "
        "at 40k pages; rate x ~1). Marginal pages/s: the extra pages over the smallest size / "
        "the extra wall s, start-up cancelled out (level from size to size when cost is linear)"
    )


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the memory goals hold on this run's successful sizes."""
    ok = [r for r in rows if r["ok"]]
    if len(ok) < 2:
        return {"checked": False}
    worst = max(r["rss_ratio_vs_smallest"] for r in ok)
    at_40k = [r["peak_rss_mib"] for r in ok if r["size"] >= 40_000]
    return {
        "checked": True,
        "worst_rss_ratio": worst,
        "rss_ratio_goal_met": worst <= GOAL_RSS_RATIO,
        "rss_under_3gib_at_40k": (max(at_40k) < GOAL_RSS_MIB_AT_40K) if at_40k else None,
        "all_sizes_completed": len(ok) == len(rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[4000, 12000, 40000], help="pages per run"
    )
    parser.add_argument(
        "--records-per-file", type=int, default=2000, help="WARC records per .warc.gz file"
    )
    parser.add_argument(
        "--datatrove", action="store_true", help="also run DataTrove on the same files"
    )
    parser.add_argument(
        "--rss-limit-gib",
        type=float,
        default=16.0,
        help="kill a run whose process tree's summed RSS exceeds this (GiB); 0: no limit",
    )
    parser.add_argument(
        "--source",
        type=Path,
        help="run the console script on this checkout's packages (e.g. a git worktree of a "
        "commit) instead of the working tree's",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also run ours with this many local worker processes (Beam's multi_processing "
        "mode) at each size and print the speed-up over one",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result path")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    if not (SHARED_DATA / "html" / "labels.csv").exists():
        print(f"skipped: {SHARED_DATA / 'html' / 'labels.csv'} not found (real pages needed)")
        return 0
    if any(n <= 0 for n in args.sizes) or args.records_per_file <= 0:
        parser.error("--sizes and --records-per-file must be positive")
    sizes = sorted(set(args.sizes))
    rss_limit_mib = args.rss_limit_gib * GIB_IN_MIB if args.rss_limit_gib > 0 else None

    versions: dict[str, Any] = {
        "ours": {p: md.version(p) for p in ("apache-beam", "resiliparse", "warcio")}
    }
    if args.datatrove:
        versions["datatrove"] = ensure_datatrove_venv()  # fails fast if the env is broken
    pages = read_labelled_pages(SHARED_DATA)
    mean_kb = sum(len(p.html) for p in pages) / len(pages) / 1000
    print(f"{len(pages)} real pages, mean {mean_kb:.0f} KB of HTML; sizes {sizes}", flush=True)
    code = git_state(args.source.resolve() if args.source else REPO)
    print(f"code: {code['folder']} at {code['commit'][:10]}{' (modified)' * code['dirty']}")

    tmp = Path(tempfile.mkdtemp(prefix="mathcorpus-pool-scale-"))
    ours: list[SizeRun] = []
    theirs: list[SizeRun] = []
    inputs: dict[int, dict[str, Any]] = {}
    try:
        for size in sizes:
            folder = tmp / f"warc-{size}"
            start = time.perf_counter()
            nbytes = write_warcs(pages, size, args.records_per_file, folder)
            files = sorted(folder.glob("*.warc.gz"))
            inputs[size] = {
                "files": len(files),
                "gzip_mib": round(nbytes / MIB, 1),
                "write_s": round(time.perf_counter() - start, 1),
            }
            print(
                f"{size} pages: {len(files)} files, {nbytes / MIB:.0f} MiB gzip "
                f"(written in {inputs[size]['write_s']} s)",
                flush=True,
            )
            work = tmp / f"run-{size}"
            work.mkdir()
            run = run_ours(files, size, work, rss_limit_mib, args.source)
            ours.append(run)
            print(
                f"  ours:      rc {run.returncode}  {run.wall_s:7.1f} s  "
                f"{run.pages_per_s:6.1f} pages/s  peak RSS {run.peak_rss_mib:6.0f} MiB  "
                f"({run.pages_in} in, {run.pages_out} out)",
                flush=True,
            )
            if run.returncode:
                print(f"  ours failed; log: {run.log}", flush=True)
                print("  " + "\n  ".join(Path(run.log).read_text().splitlines()[-15:]))
            if args.workers > 1:
                parallel_work = tmp / f"run-{size}-workers-{args.workers}"
                parallel_work.mkdir()
                parallel = run_ours(
                    files,
                    size,
                    parallel_work,
                    rss_limit_mib,
                    args.source,
                    (
                        f"--direct_num_workers={args.workers}",
                        "--direct_running_mode=multi_processing",
                    ),
                )
                speedup = _ratio(parallel.pages_per_s, run.pages_per_s)
                inputs[size]["workers"] = {
                    "workers": args.workers,
                    "returncode": parallel.returncode,
                    "wall_s": parallel.wall_s,
                    "pages_per_s": parallel.pages_per_s,
                    "peak_rss_mib": parallel.peak_rss_mib,
                    "speedup_vs_one": speedup,
                }
                print(
                    f"  ours x{args.workers} workers: rc {parallel.returncode}  "
                    f"{parallel.wall_s:7.1f} s  {parallel.pages_per_s:6.1f} pages/s  peak RSS "
                    f"{parallel.peak_rss_mib:6.0f} MiB  speed-up {speedup}",
                    flush=True,
                )
            if args.datatrove:
                dt = run_datatrove(folder, size, work, rss_limit_mib)
                theirs.append(dt)
                print(
                    f"  DataTrove: rc {dt.returncode}  {dt.wall_s:7.1f} s  "
                    f"{dt.pages_per_s:6.1f} pages/s  peak RSS {dt.peak_rss_mib:6.0f} MiB  "
                    f"({dt.pages_in} in, {dt.pages_out} out)",
                    flush=True,
                )
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)  # ~0.1 GB of gzip per 1k pages
        rows = summarise(ours, theirs)
        print()
        print_table(rows)
        shuffle = {r.size: r.stats.get("shuffle") for r in ours if r.stats.get("shuffle")}
        if shuffle:
            print("shuffle figures from stats.json: " + json.dumps(shuffle))
        result = {
            "machine": {"cpus": os.cpu_count()},
            "code": git_state(args.source.resolve() if args.source else REPO),
            "versions": versions,
            "distinct_pages": len(pages),
            "mean_html_kb": round(mean_kb, 1),
            "records_per_file": args.records_per_file,
            "inputs": inputs,
            "rows": rows,
            "goals": goals(rows),
            "runs": [asdict(r) for r in ours + theirs],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.out}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r.returncode == 0 for r in ours + theirs) else 1


if __name__ == "__main__":
    sys.exit(main())
