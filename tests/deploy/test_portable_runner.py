"""The portable path that Flink, Spark and Dataflow use, exercised on this machine.

No Flink, Spark or Dataflow job server can be reached from here, but Beam's own portable job
service can: this module starts `local_job_service_main` (the Job API a Flink or Spark job server
also serves) and `worker_pool_main` (the EXTERNAL worker pool that deploy/flink and deploy/spark
run as a container) as real processes on the loopback interface, submits each pipeline with
`--runner=PortableRunner --environment_type=EXTERNAL`, and checks that every row, dead letter and
stage count equals what the in-process FnApiRunner writes for the same input.

Adding a pipeline is one more `PortableCase` in `CASES`: a function that runs it on the shared
inputs with the given Beam args and returns (stats, rows).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mathcorpus.sample_crawl import SampleCrawl, write_sample_crawl
from pipeline.core.run_output import STATS_FILE, read_json
from pipeline.decontaminate.config import DecontaminateConfig
from pipeline.decontaminate.pipeline import run_decontaminate
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.pipeline import run_dedup
from pipeline.mine.pipeline import main as mine_main
from pipeline.pool.config import PoolConfig
from pipeline.pool.pipeline import main as pool_main
from pipeline.pool.pipeline import run_pool
from pipeline.shards.config import ShardsConfig
from pipeline.shards.pipeline import run_shards
from tests.helpers import REPO_ROOT, write_tiny_tokenizer

# Seconds to wait for a service to report its port (importing Beam takes a few seconds on a
# loaded 2-core machine).
SERVICE_START_TIMEOUT_S = 90.0
# Seconds a service gets to exit after SIGTERM before its process group is killed.
SERVICE_STOP_TIMEOUT_S = 10.0
WORKER_POOL_PORT = re.compile(r"Started worker pool servicer at port: [\w.\[\]:]*:(\d+)")


@dataclass(frozen=True)
class PortableServices:
    """Addresses of the running job service and worker pool."""

    job_endpoint: str
    worker_pool: str
    worker_pool_log: Path
    """The pool's log: it names every SDK worker the runner asked it to start."""

    def workers_started(self) -> int:
        return self.worker_pool_log.read_text(errors="replace").count("Starting worker")

    def beam_args(self) -> list[str]:
        """The options a user passes to submit to a Flink or Spark job server the same way."""
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.worker_pool}",
        ]


def service_env() -> dict[str, str]:
    """The environment for the services: the worker pool starts each SDK worker as `python`
    (the first on PATH), so this interpreter's folder goes first, and the repository on
    PYTHONPATH so that the workers import the same pipeline code as the test."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def start_service(args: list[str], log: Path) -> subprocess.Popen:
    # Own session (process group): stopping it also stops the SDK workers the pool spawned.
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=service_env(),
            start_new_session=True,
        )


def stop_service(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=SERVICE_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def wait_for(what: str, proc: subprocess.Popen, log: Path, probe: Callable[[], str | None]) -> str:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{what} did not start (exit code {proc.poll()}); its log:\n{tail}")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortableServices]:
    folder = tmp_path_factory.mktemp("services")
    port_file = folder / "job.port"
    job_log, pool_log = folder / "job_service.log", folder / "worker_pool.log"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            start_service(
                [
                    "apache_beam.runners.portability.local_job_service_main",
                    "--port=0",
                    f"--port_file={port_file}",
                    f"--staging_dir={folder / 'staging'}",
                ],
                job_log,
            )
        )
        # Port 0: the pool picks a free port and logs it, so there is no race for a port.
        procs.append(
            start_service(
                ["apache_beam.runners.worker.worker_pool_main", "--service_port=0"], pool_log
            )
        )
        job_port = wait_for(
            "job service",
            procs[0],
            job_log,
            lambda: port_file.read_text().strip() if port_file.exists() else None,
        )
        pool_port = wait_for(
            "worker pool",
            procs[1],
            pool_log,
            lambda: m.group(1) if (m := WORKER_POOL_PORT.search(pool_log.read_text())) else None,
        )
        yield PortableServices(f"127.0.0.1:{job_port}", f"127.0.0.1:{pool_port}", pool_log)
    finally:
        for proc in procs:
            stop_service(proc)


# --- the pipelines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What every case may read: the sample crawl, a pool of it written by FnApiRunner without
    dedup, and a tokenizer."""

    sample: SampleCrawl
    pool: Path
    tokenizer: Path


RunResult = tuple[dict[str, Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class PortableCase:
    name: str
    run: Callable[[Inputs, Path, list[str]], RunResult]
    """(inputs, output folder, Beam args) -> (stats, every output record incl. dead letters)."""


# Written next to every output but not by the workers (the resolved config, the funnel: the
# funnel is compared separately, without its timing).
DRIVER_FILES = {"config.json", "stats.json"}


def without_timing(data: Any) -> Any:
    """JSON data less wall-clock fields (`elapsed_s`, ...), which differ between any two runs."""
    if isinstance(data, dict):
        return {k: without_timing(v) for k, v in data.items() if not k.startswith("elapsed")}
    if isinstance(data, list):
        return [without_timing(v) for v in data]
    return data


def folder_records(out: Path) -> list[dict[str, Any]]:
    """Every record the run wrote under `out`, tagged with its sub-folder: Parquet rows, JSONL
    lines (dead letters, duplicates) and JSON documents (reports, manifests). File names and
    the number of files are left out: runners choose how many files a sink writes."""
    records: list[dict[str, Any]] = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out)
        if rel.name in DRIVER_FILES or rel.parts[0].startswith("_"):
            continue
        where = {"_in": str(rel.parent)}
        if path.suffix == ".parquet":
            records.extend({**where, **row} for row in pq.read_table(path).to_pylist())
        elif path.suffix == ".jsonl":
            lines = path.read_text().splitlines()
            values = [json.loads(line) for line in lines if line.strip()]
            # A line is an object (rows, dead letters) or another JSON value (count pairs).
            records.extend(
                {**where, **(v if isinstance(v, dict) else {"value": v})} for v in values
            )
        elif path.suffix == ".json":
            records.append(
                {**where, "_file": rel.name, **without_timing(json.loads(path.read_text()))}
            )
        elif path.suffix in (".npz", ".bin"):  # indexes and models, written by the driver
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            records.append({**where, "_file": rel.name, "sha256": digest})
        elif path.suffix == ".txt":  # id lists, training samples: one record per line
            records.extend({**where, "line": line} for line in path.read_text().splitlines())
        elif path.suffix == ".csv":
            with path.open(newline="") as fh:
                records.extend({**where, "_file": rel.name, **row} for row in csv.DictReader(fh))
        elif path.suffix == ".md":
            records.append({**where, "_file": rel.name, "text": path.read_text()})
        else:
            raise AssertionError(f"unexpected output file {rel}: teach folder_records to read it")
    return records


def by_identity(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in a runner-independent order (runners shard and order outputs differently)."""
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def run_pool_case(inputs: Inputs, out: Path, beam_args: list[str]) -> RunResult:
    # Through the CLI entry point, as a user would: `mathcorpus pool ... --runner=PortableRunner`
    # (with the pool's own dedup step, on by default).
    argv = ["--input", *inputs.sample.warc_files, "--output", str(out), *beam_args]
    assert pool_main(argv) == 0
    return read_json(str(out / STATS_FILE)), folder_records(out)


def run_dedup_case(inputs: Inputs, out: Path, beam_args: list[str]) -> RunResult:
    # The pool written without dedup still holds the sample crawl's mirrors and near copies.
    stats = run_dedup(DedupConfig(input=str(inputs.pool), output=str(out)), beam_args)
    return stats, folder_records(out)


def run_shards_case(inputs: Inputs, out: Path, beam_args: list[str]) -> RunResult:
    config = ShardsConfig(
        output=str(out),
        inputs=(str(inputs.pool),),
        source="sample",
        domain="math",
        tokenizer=str(inputs.tokenizer),
        num_shards=2,
    )
    stats = run_shards(config, beam_args)
    records = folder_records(out)
    # Rows are sorted within a shard and shard assignment hashes doc_id, so the manifest (every
    # shard's sha256) must be the same whichever runner wrote it; only its folder differs.
    for record in records:
        record.pop("folder", None)
    return stats, records


def run_decontaminate_case(inputs: Inputs, out: Path, beam_args: list[str]) -> RunResult:
    # The sample crawl plants some of its own benchmark's problems in its pages.
    config = DecontaminateConfig(
        output=str(out), inputs=(str(inputs.pool),), benchmarks=(inputs.sample.benchmark_file,)
    )
    stats = run_decontaminate(config, beam_args)
    records = folder_records(out)
    assert any(r["_in"] == "removed" for r in records), "no planted page was removed"
    return stats, records


def run_mine_case(inputs: Inputs, out: Path, beam_args: list[str]) -> RunResult:
    # `mathcorpus mine` through its CLI: every Beam step of the loop (negatives, training
    # sample, recall, expansion, final) is submitted with the same Beam args; fastText trains on
    # the driver from the sample the workers wrote. Two iterations; the budget (~1/3 of the
    # pool's math tokens) leaves uncollected math pages, so the second one's seed holds the
    # first one's expansion.
    argv = [
        "--pool", str(inputs.pool), "--positives", inputs.sample.seed_positives,
        "--workdir", str(out), "--budget-tokens", "15000", "--iterations", "2",
        "--bucket", "100000", *beam_args,
    ]  # fmt: skip
    assert mine_main(argv) == 0
    summary = read_json(str(out / "summary.json"))
    assert summary["iterations"][0]["expansion_pages"] > 0, summary
    # Every run folder's funnel and every iteration's summary; the two work folders differ only
    # in their path, which the driver writes into mining.json, model.json and summary.json.
    folders = {
        str(path.parent.relative_to(out)): read_json(str(path))
        for path in sorted(out.rglob(STATS_FILE))
        if "_staging" not in path.parts
    }
    stats = {
        "all_balanced": all(s.get("all_balanced", True) for s in folders.values()),
        "folders": folders,
    }
    assert any("iter_2" in folder for folder in folders), sorted(folders)

    def relative(data: Any) -> Any:
        return json.loads(json.dumps(data, default=str).replace(str(out), "<workdir>"))

    return relative(stats), relative(folder_records(out))


CASES = [
    PortableCase("pool", run_pool_case),
    PortableCase("dedup", run_dedup_case),
    PortableCase("decontaminate", run_decontaminate_case),
    PortableCase("shards", run_shards_case),
    PortableCase("mine", run_mine_case),
]


def comparable_stats(stats: dict[str, Any]) -> dict[str, Any]:
    return without_timing(stats)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    sample = write_sample_crawl(tmp_path_factory.mktemp("sample"), seed=11, scale=0.15)
    pool = tmp_path_factory.mktemp("pool") / "pool"
    run_pool(PoolConfig(output=str(pool), inputs=tuple(sample.warc_files), dedup=False))
    tokenizer = write_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    return Inputs(sample=sample, pool=pool, tokenizer=tokenizer)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_portable_runner_writes_what_fn_api_runner_writes(
    case: PortableCase, inputs: Inputs, services: PortableServices, tmp_path: Path
) -> None:
    local_stats, local_rows = case.run(inputs, tmp_path / "fn_api", ["--runner=FnApiRunner"])
    workers_before = services.workers_started()
    portable_stats, portable_rows = case.run(inputs, tmp_path / "portable", services.beam_args())
    # The job really ran in the external pool's SDK workers, not in the submitting process.
    assert services.workers_started() > workers_before
    assert local_rows, f"{case.name}: the local run wrote nothing; the comparison would be empty"
    assert portable_stats["all_balanced"], json.dumps(portable_stats["stages"], indent=1)
    # Counters come back from the workers through the Job API's metrics: the funnel must match.
    assert comparable_stats(portable_stats) == comparable_stats(local_stats)
    assert len(portable_rows) == len(local_rows)
    assert by_identity(portable_rows) == by_identity(local_rows)


def test_services_are_stopped_with_their_workers(tmp_path: Path) -> None:
    """The fixture's cleanup really ends a worker pool together with the SDK workers it spawns."""
    log = tmp_path / "pool.log"
    proc = start_service(["apache_beam.runners.worker.worker_pool_main", "--service_port=0"], log)
    try:
        port = wait_for(
            "worker pool",
            proc,
            log,
            lambda: m.group(1) if (m := WORKER_POOL_PORT.search(log.read_text())) else None,
        )
        assert int(port) > 0
    finally:
        stop_service(proc)
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
