"""`mathcorpus pool` killed with SIGKILL mid-run, then the same command again: the output equals
an uninterrupted run's and every stage still balances."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from mathcorpus.sample_crawl import write_sample_crawl
from pipeline.core.run_output import STAGING_DIR, STATS_FILE
from tests.helpers import REPO_ROOT


def pool_command(crawl: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "mathcorpus", "pool",
        "--input", str(crawl / "*.warc*"), "--output", str(output),
    ]  # fmt: skip


def rows(folder: Path, pattern: str = "pool-*.parquet") -> list[dict]:
    """The rows of the Parquet files matching `pattern`, in doc_id order."""
    found = [r for f in sorted(folder.glob(pattern)) for r in pq.read_table(f).to_pylist()]
    return sorted(found, key=lambda r: r["doc_id"])


def test_sigkill_then_the_same_command_gives_the_uninterrupted_output(tmp_path: Path) -> None:
    crawl = Path(write_sample_crawl(tmp_path / "sample", seed=7, scale=0.5).warc_files[0]).parent
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    reference = tmp_path / "reference"
    subprocess.run(pool_command(crawl, reference), env=env, check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        pool_command(crawl, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (killed / STAGING_DIR).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the Beam run: workers are reading and extracting
    assert proc.poll() is None, "the run ended before it could be killed: give it more input"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / STATS_FILE).exists()  # not finished: a rerun must not skip it

    again = subprocess.run(pool_command(crawl, killed), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (killed / STAGING_DIR).exists()
    first = json.loads((reference / STATS_FILE).read_text())
    second = json.loads((killed / STATS_FILE).read_text())
    assert second["all_balanced"] and second["stages"] == first["stages"]
    assert rows(killed) == rows(reference) and len(rows(killed)) == first["pages_written"]
    dups = "duplicates/*.parquet"
    assert rows(killed, dups) == rows(reference, dups) and rows(reference, dups)
