"""Side by side: DataTrove (WarcReader -> Trafilatura -> MinHash) against our pool + dedup.

    .venv/bin/python bench/compare_datatrove.py [--repeat 1] [--json out.json]

The input (written to a temp folder, never into the repository; see compare_datatrove_inputs.py):
one gzip WARC of the 531 labelled real pages of ../shared/data/html (HTTP 200 text/html
responses with made-up stable URLs) plus the real WARC/ARC files of ../shared/data/warc, malformed
ones included. Files that crash DataTrove's WarcReader (an exception ends the whole task and no
output is written) are found first by reading every file with DataTrove's own reader, and are
then left out of the input of BOTH tools; they are listed in the output.

What runs, each as one subprocess measured from launch to exit:

- DataTrove, in its own virtual environment (.bench-venvs/datatrove, created on first use with
  `pip install -r bench/datatrove-requirements.txt`: datatrove 0.10.1, trafilatura 1.11, lxml,
  lxml_html_clean, spaCy and every dependency pinned exactly, so a fresh machine gets the
  environment these figures came from; an existing environment that differs from the pins is
  brought back to them). Before anything runs, DataTrove's own Trafilatura step extracts one
  small page in that environment; if it cannot (trafilatura not importable, e.g. lxml without
  lxml.html.clean, which DataTrove's sandbox would count as a timeout on every page), the bench
  stops at once with the error. Five
  LocalPipelineExecutor runs in one Python process, 1 task and 1 worker each, as in DataTrove's
  MinHash example: (1) WarcReader -> Trafilatura() -> JsonlWriter, (2) JsonlReader ->
  MinhashDedupSignature, (3) MinhashDedupBuckets (DataTrove requires tasks to be a multiple of
  the 14 buckets: 14 tasks, run one after another by 1 worker), (4) MinhashDedupCluster,
  (5) JsonlReader -> MinhashDedupFilter -> JsonlWriter. Extraction happens once; the
  dedup stages re-read its JSONL, as FineWeb does.
- ours: `.venv/bin/mathcorpus pool --input FILES --output DIR` with its defaults (resiliparse
  extractor, URL dedup, language id, exact + MinHash near dedup, Beam's in-process
  FnApiRunner), and the same with `--extractor trafilatura` (the like-for-like extractor).

Figures per tool: pages in (HTML records that tool's reader passed on), pages out (documents
written), whole-process pages/s = pages in / wall seconds, and peak memory of the whole
process tree: the summed RSS of the process and all its descendants, sampled every 0.1 s, or
the largest single process's max RSS from wait4 (what `/usr/bin/time -v` reports, exact but
per process) where that is higher. RSS counts pages shared by forked processes once per
process, so the summed PSS (which splits them) is shown beside it. Then the ratios
ours / DataTrove (pages/s: higher is faster; memory, on peak RSS: lower is leaner).

TeX recall on the math pages (labels.csv label "math"): for each math page whose URL is in a
tool's output, the share of the TeX expressions in the page source that appear in the
extracted text, white space ignored; the metric (source_tex, tex_recall, squeeze) is imported
from tests/pipeline/extract/test_extractors_real_pages.py, so it is the one the extractor tests use.
Mean over the kept math pages that have TeX in their source; how many math pages each tool
kept is reported beside it, as is the mean over the math pages every tool kept. Pages whose
maths is MathML only (no TeX anywhere in the source) have no expressions to recall, so our
MathML-to-LaTeX conversion earns nothing here.

Caveats:
- Whole-process timing includes start-up (imports, Beam's pipeline construction, fastText's
  language model load for us; imports and five executor start-ups for DataTrove), which
  weighs heavily on an input this small (~600 pages); this is what a user waits for, not
  steady-state pages/s/core (bench/pool_throughput.py measures that).
- The machine this was written on is 2 cores shared with other jobs: wall time is noisy (run
  with --repeat 3; the fastest run of each tool is kept). CPU seconds (user + system of the
  whole tree, from wait4) are printed too: they move much less with other jobs' load.
- DataTrove's Trafilatura step uses its defaults: favour_precision=True, deduplicate=True,
  include_comments=False, a 1 s timeout per page (in a sandbox subprocess; a page that takes
  longer is dropped and counted as `timeout`), with the trafilatura version DataTrove pins
  (older than ours). DataTrove has no maths handling, so formulas rendered by MathJax/MathML/
  KaTeX are not converted to TeX: its recall measures what plain Trafilatura keeps.
- MinHash: both use 14 bands x 8 rows = 112 hashes, 5-gram word shingles, seed 1 (DataTrove's
  MinhashConfig defaults; ours copies them), but tokenisation, normalisation and hash functions
  differ, and ours also removes exact duplicates first and URL duplicates before extraction.
  DataTrove does neither (its filters, language id etc. are not in this pipeline); ours runs
  language id but keeps all languages by default.
- The readers differ: DataTrove keeps records by WARC-Identified-Payload-Type (or a libmagic
  sniff), ours by the HTTP Content-Type; ours dead-letters malformed records instead of
  failing, so "pages in" can differ slightly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
DATATROVE_VENV = REPO / ".bench-venvs" / "datatrove"
DATATROVE_PYTHON = DATATROVE_VENV / "bin" / "python"
# Every package of DataTrove's environment, pinned exactly (why each matters: the file's header).
DATATROVE_REQUIREMENTS_FILE = Path(__file__).resolve().parent / "datatrove-requirements.txt"
OURS_CLI = REPO / ".venv" / "bin" / "mathcorpus"
SAMPLE_INTERVAL_S = 0.1  # memory sampling period; a /proc scan costs ~2.5 ms
MIB = 1024 * 1024


# --- whole-process measurement ---------------------------------------------------------------


@dataclass
class Measurement:
    """One subprocess run: wall time, CPU, memory of its whole process tree."""

    command: list[str]
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the process and every descendant it waited for
    peak_tree_pss_mib: float  # max over samples of the summed PSS of the process tree
    peak_tree_rss_mib: float  # same with RSS (counts shared pages once per process)
    max_rss_largest_mib: float  # wait4 ru_maxrss: the largest single process (GNU time's figure)
    peak_rss_mib: float  # the headline: max(peak_tree_rss_mib, max_rss_largest_mib)
    peak_processes: int  # most processes alive in the tree at one sample
    log: str  # stdout + stderr of the run
    killed_over_limit: bool = False  # the tree passed rss_limit_mib and was killed


def _ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4; the name may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    children = _ppid_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _rss_pss_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:  # the process ended between the scan and the read
        pass
    return rss, pss


def run_measured(
    command: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    interval_s: float = SAMPLE_INTERVAL_S,
    rss_limit_mib: float | None = None,
) -> Measurement:
    """Run `command` (cwd = the repository), sampling its process tree until it exits.

    The command runs in a session of its own so that, if its tree's summed RSS passes
    `rss_limit_mib` (a guard for shared machines) or this process is interrupted, the whole
    tree is killed, not only its first process.
    """
    peak_rss = peak_pss = peak_procs = 0
    killed = False
    with log_path.open("wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    wall = time.perf_counter() - start
                    break
                pids = _tree(proc.pid)
                totals = [_rss_pss_kib(p) for p in pids]
                peak_rss = max(peak_rss, sum(t[0] for t in totals))
                peak_pss = max(peak_pss, sum(t[1] for t in totals))
                peak_procs = max(peak_procs, len(pids))
                if rss_limit_mib is not None and peak_rss / 1024 > rss_limit_mib and not killed:
                    killed = True
                    os.killpg(proc.pid, signal.SIGKILL)
                time.sleep(interval_s)
        except BaseException:  # interrupted: leave no orphaned pipeline behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if killed:  # the first process is gone; its orphans may not be yet
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        command=command,
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_tree_pss_mib=peak_pss / 1024,
        peak_tree_rss_mib=peak_rss / 1024,
        max_rss_largest_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
        # Sampling can miss a spike shorter than the period; ru_maxrss cannot, but is per process.
        peak_rss_mib=max(peak_rss, usage.ru_maxrss) / 1024,
        peak_processes=peak_procs,
        log=str(log_path),
        killed_over_limit=killed,
    )


# --- the DataTrove side (these functions run inside DataTrove's virtual environment) ---------


def datatrove_probe(paths: list[str]) -> int:
    """Read every file with DataTrove's WarcReader; print one JSON line per file."""
    from datatrove.pipeline.readers import WarcReader

    for path in paths:
        reader = WarcReader(os.path.dirname(path), glob_pattern=os.path.basename(path))
        try:
            docs = sum(1 for _ in reader.read_file(os.path.basename(path)))
            result = {"file": path, "ok": True, "docs": docs}
        except Exception as exc:  # any failure: the point is to see what it raises
            first_line = (str(exc).strip().splitlines() or [""])[0]
            result = {"file": path, "ok": False, "error": f"{type(exc).__name__}: {first_line}"}
        print("PROBE " + json.dumps(result), flush=True)
    return 0


def datatrove_run(input_folder: str, work: str) -> int:
    """The five LocalPipelineExecutor runs (see the module docstring), 1 task / 1 worker."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    out = Path(work)
    config = MinhashConfig()  # defaults: 5-grams, 14 buckets x 8 hashes, seed 1
    print("DATATROVE_MINHASH " + json.dumps(str(config)), flush=True)
    stages = [
        (
            "extract",
            [WarcReader(input_folder), Trafilatura(), JsonlWriter(str(out / "extracted"))],
            1,
        ),
        (
            "signatures",
            [
                JsonlReader(str(out / "extracted")),
                MinhashDedupSignature(output_folder=str(out / "signatures"), config=config),
            ],
            1,
        ),
        (
            "buckets",
            [
                MinhashDedupBuckets(
                    input_folder=str(out / "signatures"),
                    output_folder=str(out / "buckets"),
                    config=config,
                )
            ],
            config.num_buckets,
        ),
        (
            "cluster",
            [
                MinhashDedupCluster(
                    input_folder=str(out / "buckets"),
                    output_folder=str(out / "remove_ids"),
                    config=config,
                )
            ],
            1,
        ),
        (
            "filter",
            [
                JsonlReader(str(out / "extracted")),
                MinhashDedupFilter(
                    input_folder=str(out / "remove_ids"),
                    exclusion_writer=JsonlWriter(str(out / "removed")),
                ),
                JsonlWriter(str(out / "output")),
            ],
            1,
        ),
    ]
    for name, pipeline, tasks in stages:
        executor = LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(out / "logs" / name)
        )
        executor.run()
    return 0


# --- orchestration (runs in the project's .venv) ---------------------------------------------


def datatrove_check() -> int:
    """Run DataTrove's Trafilatura step on one small page; exit 1 with the reason if it fails.

    DataTrove extracts in a sandbox subprocess and counts any failure there, an ImportError
    included, as a per-page `timeout`; importing and extracting here first turns a broken
    environment into one clear message instead of a long run of timeouts.
    """
    try:
        import lxml.html.clean  # noqa: F401  (trafilatura needs it; lxml >= 5.2 lacks it)
        import trafilatura  # noqa: F401
        from datatrove.data import Document
        from datatrove.pipeline.extractors import Trafilatura
    except ImportError as exc:
        print(f"DATATROVE_CHECK import failed: {type(exc).__name__}: {exc}", flush=True)
        return 1
    words = " ".join(f"word{i}" for i in range(200))
    html = f"<html><body><article><h1>Check</h1><p>{words}</p></article></body></html>"
    step = Trafilatura(timeout=30)  # generous: the sandbox's first call imports trafilatura
    docs = list(step.run(iter([Document(text=html, id="check")])))
    stats = step.stats.to_dict() if hasattr(step.stats, "to_dict") else str(step.stats)
    if len(docs) != 1 or "word199" not in docs[0].text:
        print(f"DATATROVE_CHECK extraction failed: {docs!r}; step stats {stats}", flush=True)
        return 1
    print("DATATROVE_CHECK ok", flush=True)
    return 0


def _pinned_requirements() -> dict[str, str]:
    """name (lower case, - for _) -> version, from bench/datatrove-requirements.txt."""
    pins = {}
    for line in DATATROVE_REQUIREMENTS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _installed(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version"
        " for d in m.distributions()}))"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_datatrove_venv() -> dict[str, str]:
    """Create or repair the pinned DataTrove venv, check it works; return the versions that matter.

    Exits (SystemExit with the reason) when the environment cannot extract a page.
    """
    pins = _pinned_requirements()
    if not DATATROVE_PYTHON.exists():
        print(f"creating {DATATROVE_VENV} from {DATATROVE_REQUIREMENTS_FILE.name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DATATROVE_VENV)], check=True)
    installed = _installed(DATATROVE_PYTHON)
    wrong = {name: installed.get(name) for name, v in pins.items() if installed.get(name) != v}
    if wrong:
        print(
            f"installing the pinned DataTrove environment ({len(wrong)} to change) ...", flush=True
        )
        pip = [str(DATATROVE_PYTHON), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(DATATROVE_REQUIREMENTS_FILE)], check=True)
        installed = _installed(DATATROVE_PYTHON)
        still = {n: installed.get(n) for n, v in pins.items() if installed.get(n) != v}
        if still:
            raise SystemExit(f"DataTrove venv does not match the pins after pip install: {still}")
    check = subprocess.run(
        [str(DATATROVE_PYTHON), str(Path(__file__).resolve()), "_datatrove_check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    if check.returncode or "DATATROVE_CHECK ok" not in check.stdout:
        raise SystemExit(
            f"DataTrove's environment {DATATROVE_VENV} cannot extract a page, so every record "
            "would time out. Delete the folder to rebuild it from "
            f"{DATATROVE_REQUIREMENTS_FILE}.\n{check.stdout[-2000:]}{check.stderr[-2000:]}"
        )
    wanted = ("datatrove", "trafilatura", "lxml", "lxml-html-clean", "spacy", "warcio", "numpy")
    return {p: installed.get(p, "absent") for p in wanted} | {
        "python": subprocess.run(
            [str(DATATROVE_PYTHON), "-c", "import sys; print(sys.version.split()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    }


def probe_datatrove(files: list[Path], log_path: Path) -> list[dict[str, object]]:
    command = [str(DATATROVE_PYTHON), str(Path(__file__).resolve()), "_datatrove_probe"]
    proc = subprocess.run(
        [*command, *map(str, files)], cwd=REPO, capture_output=True, text=True, check=False
    )
    log_path.write_text(proc.stdout + proc.stderr)
    results = [
        json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("PROBE ")
    ]
    if len(results) != len(files):
        raise RuntimeError(f"DataTrove probe failed (exit {proc.returncode}); see {log_path}")
    return results


@dataclass
class ToolRun:
    """One tool's run and what it wrote: texts by URL, counts."""

    tool: str
    measurement: Measurement
    pages_in: int
    pages_out: int
    texts: dict[str, str]  # output URL (as the tool wrote it) -> extracted text
    removed_urls: set[str]  # pages its dedup removed
    details: dict[str, object] = field(default_factory=dict)


def _read_jsonl_folder(folder: Path) -> list[dict[str, object]]:
    import gzip

    rows = []
    for path in sorted(folder.glob("*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def _datatrove_stats(logs: Path, stage: str) -> list[dict[str, object]]:
    return json.loads((logs / stage / "stats.json").read_text())


def _step_stats(steps: list[dict[str, object]], name_part: str) -> dict[str, object]:
    for step in steps:
        if name_part in str(step.get("name", "")):
            return dict(step.get("stats", {}))
    return {}


def _count(stats: dict[str, object], key: str) -> int:
    value = stats.get(key, 0)
    if isinstance(value, dict):  # DataTrove stores some counters as {"total": n, ...}
        value = value.get("total", 0)
    return int(value or 0)


def run_datatrove(input_folder: Path, work: Path) -> ToolRun:
    command = [
        str(DATATROVE_PYTHON),
        str(Path(__file__).resolve()),
        "_datatrove_run",
        str(input_folder),
        str(work),
    ]
    work.mkdir(parents=True)
    measurement = run_measured(command, work.parent / f"{work.name}.log")
    if measurement.returncode:
        raise RuntimeError(f"DataTrove failed (exit {measurement.returncode}): {measurement.log}")
    logs = work / "logs"
    extract = _datatrove_stats(logs, "extract")
    reader = _step_stats(extract, "Warc")
    trafilatura = _step_stats(extract, "Trafilatura")
    dedup_filter = _step_stats(_datatrove_stats(logs, "filter"), "stage 4")
    output = _read_jsonl_folder(work / "output")
    removed = _read_jsonl_folder(work / "removed")
    return ToolRun(
        tool="DataTrove",
        measurement=measurement,
        pages_in=_count(reader, "documents"),
        pages_out=len(output),
        texts={str(r["metadata"]["url"]): str(r["text"]) for r in output},
        removed_urls={str(r["metadata"]["url"]) for r in removed},
        details={
            "reader": reader,
            "trafilatura": trafilatura,
            "minhash_filter": dedup_filter,
            "near_duplicates_removed": len(removed),
        },
    )


def run_ours(files: list[Path], work: Path, extractor: str | None) -> ToolRun:
    import pyarrow.parquet as pq

    command = [str(OURS_CLI), "pool", "--input", *map(str, files), "--output", str(work)]
    if extractor:
        command += ["--extractor", extractor]
    measurement = run_measured(command, work.parent / f"{work.name}.log")
    if measurement.returncode:
        raise RuntimeError(
            f"mathcorpus pool failed (exit {measurement.returncode}): {measurement.log}"
        )
    stats = json.loads((work / "stats.json").read_text())
    stages = stats["stages"]
    texts: dict[str, str] = {}
    for path in sorted(work.glob("pool-*.parquet")):
        table = pq.read_table(path, columns=["url", "text"])
        urls, bodies = table.column("url").to_pylist(), table.column("text").to_pylist()
        texts.update(zip(urls, bodies, strict=True))
    removed: set[str] = set()
    for path in sorted((work / "duplicates").glob("*.parquet")):
        removed.update(pq.read_table(path, columns=["url"]).column("url").to_pylist())
    return ToolRun(
        tool=f"ours ({extractor or 'resiliparse'})",
        measurement=measurement,
        pages_in=int(stages["read"]["kept"]),
        pages_out=int(stats["pages_written"]),
        texts=texts,
        removed_urls=removed,
        details={
            name: {k: stages[name][k] for k in ("in", "kept", "dropped", "dead_lettered")}
            for name in ("read", "url_dedup", "extract", "exact_dedup", "near_dedup")
            if name in stages
        },
    )


def math_recall(run: ToolRun, pages: list, to_output_url) -> dict[str, object]:
    """TeX recall on the math pages present in `run`'s output (metric from the extractor tests)."""
    sys.path.insert(0, str(REPO))
    from pipeline.extract.evaluation import tex_recall

    per_page: dict[str, dict[str, object]] = {}
    for page in pages:
        if page.label != "math":
            continue
        url = to_output_url(page.url)
        if url in run.texts:
            hit, total = tex_recall(page.html.decode("utf-8", errors="replace"), run.texts[url])
            per_page[page.filename] = {"status": "kept", "hit": hit, "total": total}
        else:
            status = "removed_by_dedup" if url in run.removed_urls else "not_in_output"
            per_page[page.filename] = {"status": status}
    return per_page


def recall_mean(
    per_page: dict[str, dict[str, object]], only: set[str] | None = None
) -> float | None:
    fractions = [
        int(v["hit"]) / int(v["total"])
        for name, v in per_page.items()
        if v["status"] == "kept" and int(v["total"]) and (only is None or name in only)
    ]
    return statistics.fmean(fractions) if fractions else None


def summarise(runs: list[ToolRun], pages: list, to_output_url) -> list[dict[str, object]]:
    recalls = {r.tool: math_recall(r, pages, to_output_url[r.tool]) for r in runs}
    kept_by_all = set.intersection(
        *({n for n, v in per.items() if v["status"] == "kept"} for per in recalls.values())
    )
    baseline = runs[0]
    rows = []
    for run in runs:
        m = run.measurement
        per = recalls[run.tool]
        pages_per_s = run.pages_in / m.wall_s
        base_rate = baseline.pages_in / baseline.measurement.wall_s
        rows.append(
            {
                "tool": run.tool,
                "pages_in": run.pages_in,
                "pages_out": run.pages_out,
                "wall_s": round(m.wall_s, 2),
                "cpu_s": round(m.cpu_s, 2),
                "cpu_percent": round(100 * m.cpu_s / m.wall_s),
                "pages_per_s": round(pages_per_s, 2),
                "peak_rss_mib": round(m.peak_rss_mib, 1),
                "peak_pss_mib": round(m.peak_tree_pss_mib, 1),
                "peak_tree_rss_sampled_mib": round(m.peak_tree_rss_mib, 1),
                "max_rss_largest_process_mib": round(m.max_rss_largest_mib, 1),
                "peak_processes": m.peak_processes,
                "speed_ratio_vs_datatrove": round(pages_per_s / base_rate, 2),
                # pages per CPU-second: less sensitive than wall time to other jobs' load
                "cpu_efficiency_ratio_vs_datatrove": round(
                    (run.pages_in / m.cpu_s) / (baseline.pages_in / baseline.measurement.cpu_s),
                    2,
                ),
                "memory_ratio_vs_datatrove": round(
                    m.peak_rss_mib / baseline.measurement.peak_rss_mib, 2
                ),
                "pss_ratio_vs_datatrove": round(
                    m.peak_tree_pss_mib / baseline.measurement.peak_tree_pss_mib, 2
                ),
                "math_pages": len(per),
                "math_pages_kept": sum(v["status"] == "kept" for v in per.values()),
                "math_pages_with_tex_kept": sum(
                    v["status"] == "kept" and int(v["total"]) > 0 for v in per.values()
                ),
                "math_pages_removed_by_dedup": sum(
                    v["status"] == "removed_by_dedup" for v in per.values()
                ),
                "tex_recall": recall_mean(per),
                "tex_recall_on_common_pages": recall_mean(per, kept_by_all),
                "common_math_pages_with_tex": sum(
                    1 for n in kept_by_all if int(per[n].get("total", 0)) > 0
                ),
                "per_math_page": per,
                "details": run.details,
                "measurement": asdict(m),
            }
        )
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table_lines(rows: list[dict[str, object]], markdown: bool) -> list[str]:
    head = [
        "tool",
        "pages in",
        "pages out",
        "wall s",
        "CPU s",
        "pages/s",
        "peak RSS MiB",
        "peak PSS MiB",
        "pages/s ratio",
        "RSS ratio",
        "math pages kept",
        "TeX recall",
        "TeX recall (common)",
    ]
    body = [
        [
            str(r["tool"]),
            str(r["pages_in"]),
            str(r["pages_out"]),
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['pages_per_s']:.1f}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['peak_pss_mib']:.0f}",
            f"{r['speed_ratio_vs_datatrove']:.2f}x",
            f"{r['memory_ratio_vs_datatrove']:.2f}x",
            f"{r['math_pages_kept']}/{r['math_pages']}",
            _fmt(r["tex_recall"], ".3f"),
            _fmt(r["tex_recall_on_common_pages"], ".3f"),
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    return lines + [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in body
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_datatrove_probe":
        return datatrove_probe(argv[1:])
    if argv and argv[0] == "_datatrove_run":
        return datatrove_run(argv[1], argv[2])
    if argv and argv[0] == "_datatrove_check":
        return datatrove_check()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest is kept")
    parser.add_argument(
        "--ours-extractors",
        nargs="+",
        default=["resiliparse", "trafilatura"],
        choices=["resiliparse", "trafilatura"],
        help="our pool runs (default: both extractors)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args(argv)
    if not (SHARED_DATA / "html" / "labels.csv").exists() or not (SHARED_DATA / "warc").is_dir():
        print(f"skipped: {SHARED_DATA} lacks html/labels.csv or warc/ (real data is needed)")
        return 0
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_datatrove_inputs import build_input_folder, flat_name, real_warc_files

    from pipeline.pool.url_normalize import normalize_url

    versions = ensure_datatrove_venv()
    print("DataTrove venv: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    import importlib.metadata as md

    ours_versions = {p: md.version(p) for p in ("apache-beam", "resiliparse", "trafilatura")}
    print("ours:           " + ", ".join(f"{k} {v}" for k, v in ours_versions.items()))

    tmp = Path(tempfile.mkdtemp(prefix="mathcorpus-vs-datatrove-"))
    try:
        probe = probe_datatrove(real_warc_files(SHARED_DATA), tmp / "probe.log")
        choked = {
            flat_name(Path(str(p["file"])), SHARED_DATA): str(p["error"])
            for p in probe
            if not p["ok"]
        }
        for name, error in choked.items():
            print(f"left out of BOTH inputs (DataTrove's WarcReader raises): {name}: {error}")
        pages, files = build_input_folder(SHARED_DATA, tmp / "input", frozenset(choked))
        size = sum(f.stat().st_size for f in files)
        print(
            f"input: {len(files)} files, {size / MIB:.1f} MiB "
            f"({len(pages)} labelled pages in {files[0].name} + {len(files) - 1} real WARC/ARC)"
        )
        best: dict[str, ToolRun] = {}
        every_run: list[dict[str, object]] = []
        for attempt in range(args.repeat):
            jobs = [("DataTrove", None)] + [(f"ours ({e})", e) for e in args.ours_extractors]
            for tool, extractor in jobs:
                work = tmp / f"{tool.split()[0]}-{extractor or 'dt'}-{attempt}"
                if tool == "DataTrove":
                    run = run_datatrove(tmp / "input", work)
                else:
                    run = run_ours(files, work, extractor)
                m = run.measurement
                print(
                    f"  run {attempt + 1}: {tool:22s} {m.wall_s:6.1f} s  "
                    f"CPU {100 * m.cpu_s / m.wall_s:3.0f}%  peak RSS {m.peak_rss_mib:5.0f} MiB  "
                    f"PSS {m.peak_tree_pss_mib:5.0f} MiB  ({m.peak_processes} processes at most)",
                    flush=True,
                )
                every_run.append({"tool": tool, "attempt": attempt + 1} | asdict(m))
                if tool not in best or m.wall_s < best[tool].measurement.wall_s:
                    best[tool] = run
        runs = list(best.values())
        to_output_url = {r.tool: (lambda u: u) for r in runs}
        for r in runs[1:]:
            to_output_url[r.tool] = normalize_url
        rows = summarise(runs, pages, to_output_url)
        print()
        print("\n".join(table_lines(rows, markdown=False)))
        print()
        for r in rows:
            d = r["details"]
            if r["tool"] == "DataTrove":
                print(
                    f"DataTrove: trafilatura {json.dumps(d['trafilatura'])}; "
                    f"near duplicates removed {d['near_duplicates_removed']}"
                )
            else:
                print(f"{r['tool']}: " + json.dumps({k: v for k, v in d.items()}))
            print(
                f"  math pages: {r['math_pages_kept']}/{r['math_pages']} kept "
                f"({r['math_pages_with_tex_kept']} with TeX in their source), "
                f"{r['math_pages_removed_by_dedup']} removed by dedup; TeX recall "
                f"{_fmt(r['tex_recall'], '.3f')}, on the {r['common_math_pages_with_tex']} "
                "math pages with TeX that every tool kept "
                f"{_fmt(r['tex_recall_on_common_pages'], '.3f')}"
            )
        print("\nMarkdown:\n")
        print("\n".join(table_lines(rows, markdown=True)))
        if args.json:
            result = {
                "datatrove_versions": versions,
                "ours_versions": ours_versions,
                "datatrove_requirements": _pinned_requirements(),
                "left_out_of_input": choked,
                "probe": probe,
                "input_files": [f.name for f in files],
                "input_mib": round(size / MIB, 2),
                "repeat": args.repeat,
                "cpus": os.cpu_count(),
                "rows": rows,
                "every_run": every_run,
            }
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
            print(f"\nwrote {args.json}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
