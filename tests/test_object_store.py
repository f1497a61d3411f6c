"""The stages on an object store: every input and output on s3://, served by moto on 127.0.0.1.

`mathcorpus pool -> dedup -> decontaminate -> shards` runs twice on the generated sample crawl,
once on local paths and once with every path on s3:// (the crawl, the benchmark file and the
tokenizer uploaded with boto3 first), and the two runs must give the same rows, funnels, dead
letters, reports and shards. gs:// goes through the same Beam FileSystems calls (and pyarrow for
the tokenizer package); what this does not test is in docs/architecture.md ("Object stores").
"""

from __future__ import annotations

import json
import posixpath
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from mathcorpus.cli import main as mathcorpus
from mathcorpus.sample_crawl import SampleCrawl, write_sample_crawl
from pipeline.mine.config import SUMMARY_FILE
from tests.helpers import BEAM_TEST_ARGS, MotoS3, write_tiny_tokenizer

SEED = 7
# ~180 pages after the pool: every stage does real work (recaptures, near-copies, a planted
# benchmark page, broken files) while the two chains stay well under a minute together.
SCALE = 0.1
STAGES = ("pool", "dedup", "corpus", "shards")


def mathcorpus_process(*argv: str) -> subprocess.CompletedProcess:
    """`mathcorpus ARGV` in a process of its own, as a user runs it (no file system options
    left over from an earlier command in this process)."""
    return subprocess.run(
        [sys.executable, "-m", "mathcorpus", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_chain(root: str, crawl: str, benchmark: str, tokenizer: str, beam_args: Sequence[str]):
    """pool (no dedup) -> dedup -> decontaminate -> shards, each a `mathcorpus` command, with
    every output under `root` (a local folder or an s3:// prefix)."""

    def stage(*argv: str) -> None:
        code = mathcorpus([*argv, *beam_args])
        assert code == 0, f"mathcorpus {argv[0]} exited {code}"

    out = {name: posixpath.join(root, name) for name in STAGES}
    stage("pool", "--input", crawl, "--output", out["pool"], "--no-dedup")
    stage("dedup", "--input", out["pool"], "--output", out["dedup"])
    stage(
        "decontaminate",
        *("--input", out["dedup"], "--benchmarks", benchmark, "--output", out["corpus"]),
    )
    stage(
        "shards",
        *("--input", out["corpus"], "--tokenizer", tokenizer, "--output", out["shards"]),
        *("--source", "mathweb", "--domain", "math"),
    )


@pytest.fixture(scope="module")
def runs(moto_s3: MotoS3, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the local run's folder, a download of the S3 run's outputs)."""
    work = tmp_path_factory.mktemp("object_store")
    sample: SampleCrawl = write_sample_crawl(work / "sample", seed=SEED, scale=SCALE)
    tokenizer = write_tiny_tokenizer(work / "tokenizer")

    local = work / "local"
    run_chain(
        str(local),
        str(work / "sample" / "crawl" / "*"),
        sample.benchmark_file,
        str(tokenizer),
        beam_args=(),
    )

    for path in sample.warc_files:
        moto_s3.upload(path, f"in/crawl/{Path(path).name}")
    run_chain(
        moto_s3.url("out"),
        moto_s3.url("in/crawl/*"),
        moto_s3.upload(sample.benchmark_file, "in/benchmarks/demo_bench.jsonl"),
        moto_s3.upload(tokenizer, "in/tokenizer/tokenizer.json"),
        beam_args=moto_s3.beam_args,
    )
    moto_s3.upload(sample.seed_positives, "in/seed/positives.jsonl")
    return local, moto_s3.download("out", work / "from_s3")


# --- reading a run's outputs, the same way for both runs --------------------------------------


def rows(folder: Path, pattern: str) -> list[dict[str, Any]]:
    """Every row of the Parquet files matching `pattern`, by doc_id; a row's WARC file is its
    base name (the two runs read the same files from different places)."""
    out = []
    for path in sorted(folder.glob(pattern)):
        for row in pq.read_table(path).to_pylist():
            if "warc_file" in row:
                row["warc_file"] = posixpath.basename(row["warc_file"])
            out.append(row)
    return sorted(out, key=lambda r: (r["doc_id"], json.dumps(r, sort_keys=True, default=str)))


def dead_letters(folder: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted((folder / "dead_letter").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            record["source"] = posixpath.basename(record["source"])
            records.append(record)
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))


def funnel(folder: Path) -> dict[str, Any]:
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["all_balanced"], folder
    return stats["stages"]


def test_every_stage_gives_on_s3_what_it_gives_on_local_paths(runs: tuple[Path, Path]) -> None:
    local, s3 = runs
    for name in STAGES:
        assert funnel(s3 / name) == funnel(local / name), name
        assert dead_letters(s3 / name) == dead_letters(local / name), name

    pool = rows(local / "pool", "pool-*.parquet")
    assert len(pool) > 150
    assert rows(s3 / "pool", "pool-*.parquet") == pool
    # The broken files of the sample crawl are dead-lettered on S3 too, named by file.
    assert {r["reason"] for r in dead_letters(s3 / "pool")} >= {"truncated_gzip", "bad_headers"}

    kept = rows(local / "dedup", "pool-*.parquet")
    duplicates = rows(local / "dedup", "duplicates/*.parquet")
    assert duplicates and len(kept) < len(pool)
    assert rows(s3 / "dedup", "pool-*.parquet") == kept
    assert rows(s3 / "dedup", "duplicates/*.parquet") == duplicates
    bands = rows(local / "dedup", "band_index/*.parquet")
    assert rows(s3 / "dedup", "band_index/*.parquet") == bands
    report = json.loads((local / "dedup" / "dedup_report.json").read_text())
    assert json.loads((s3 / "dedup" / "dedup_report.json").read_text()) == report

    removed = rows(local / "corpus", "removed/*.parquet")
    assert removed, "the sample's planted benchmark page is removed"
    assert rows(s3 / "corpus", "removed/*.parquet") == removed
    assert rows(s3 / "corpus", "pool-*.parquet") == rows(local / "corpus", "pool-*.parquet")
    contamination = json.loads((local / "corpus" / "contamination.json").read_text())
    assert json.loads((s3 / "corpus" / "contamination.json").read_text()) == contamination

    # Shards: the same documents and tokens, so the same bytes and checksums in the manifest.
    assert rows(s3 / "shards", "shard-*.parquet") == rows(local / "shards", "shard-*.parquet")
    manifest = json.loads((local / "shards" / "manifest.json").read_text())
    assert json.loads((s3 / "shards" / "manifest.json").read_text()) == manifest
    assert manifest["totals"]["rows"] == len(rows(local / "corpus", "pool-*.parquet"))


def test_an_empty_output_is_written_to_s3(moto_s3: MotoS3) -> None:
    """Beam's S3 upload of an empty file used to fail (a multipart upload with no parts:
    MalformedXML); pipeline/core/s3_empty_files.py sends one empty part instead."""
    import pipeline.core.s3_empty_files  # noqa: F401  (as every stage does)

    options = PipelineOptions([*BEAM_TEST_ARGS, *moto_s3.beam_args])
    FileSystems.set_options(options)
    with FileSystems.create(moto_s3.url("empty/direct.txt")):
        pass
    # Beam's text sink writes one empty shard for an empty PCollection unless told to skip it.
    with beam.Pipeline(options=options) as p:
        _ = (
            p
            | beam.Create([]).with_output_types(str)
            | beam.io.WriteToText(moto_s3.url("empty/text/part"), file_name_suffix=".txt")
        )
    sizes = moto_s3.keys("empty/")
    assert sizes == {"empty/direct.txt": 0, "empty/text/part-00000-of-00001.txt": 0}


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_s3_output_holds_the_same_files_as_local(runs: tuple[Path, Path]) -> None:
    local, s3 = runs
    assert files(s3) == files(local)


def test_mine_on_s3(moto_s3: MotoS3, runs: tuple[Path, Path]) -> None:
    """The mining loop on the S3 chain's deduplicated pool, every path on s3://, gives the local
    loop's iterations and collected pages. A small hash table (--bucket) keeps the model at
    megabytes: the default's 2 GB model would be uploaded and copied through moto."""
    local, _ = runs
    # dim 32: at dim 256 with 20,000 buckets fastText stops with "Encountered NaN" on this pool.
    flags = ("--min-score", "0.5", "--dim", "32", "--bucket", "20000", "--threads", "1")
    positives = local.parent / "sample" / "seed" / "positives.jsonl"
    workdir = local.parent / "mine_local"
    done = mathcorpus_process(
        "mine",
        *("--pool", str(local / "dedup"), "--workdir", str(workdir)),
        *("--positives", str(positives), *flags),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = mathcorpus_process(
        "mine",
        *("--pool", moto_s3.url("out/dedup"), "--workdir", moto_s3.url("out/mine")),
        *("--positives", moto_s3.url("in/seed/positives.jsonl"), *flags),
        *moto_s3.beam_args,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from_s3 = moto_s3.download("out/mine", local.parent / "mine_from_s3")
    summary = json.loads((workdir / SUMMARY_FILE).read_text())
    assert json.loads((from_s3 / SUMMARY_FILE).read_text())["status"] == summary["status"]
    assert summary["iterations"], summary
    collected = rows(workdir / "final", "pool-*.parquet")
    assert collected, "the loop collected no page"
    assert rows(from_s3 / "final", "pool-*.parquet") == collected
