"""The mining loop end to end on the generated sample crawl (DeepSeekMath section 2.1).

The first seed is LaTeX problem sets (sample_crawl's seed/positives.jsonl). Two sites talk about
math in forum words the seed does not cover: homework-help.example (some threads carry a TeX
reply) and the math boards of the forum talk.example (no TeX at all). The loop must find
homework-help in iteration 1, learn the forum vocabulary from its uncollected threads, find
talk.example in iteration 2 (recall of its math boards rising), accept only its math boards,
and stop when the collection no longer changes.
"""

from __future__ import annotations

import csv
import glob
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mathcorpus.sample_crawl import SampleCrawl, write_sample_crawl
from pipeline.core.config_errors import ConfigError
from pipeline.mine.classifier import ClassifierConfig
from pipeline.mine.config import MiningConfig
from pipeline.mine.loop import run_mining
from pipeline.mine.pipeline import EXIT_PAUSED
from pipeline.mine.pipeline import main as mine_main
from pipeline.pool.config import PoolConfig
from pipeline.pool.pipeline import run_pool
from pipeline.pool.schema import POOL_SCHEMA
from tests.pipeline.mine import scheme_filesystem

FORUM = "talk.example"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleCrawl:
    return write_sample_crawl(tmp_path_factory.mktemp("sample"), seed=1234, scale=0.3)


@pytest.fixture(scope="module")
def pool(sample: SampleCrawl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pool") / "pool"
    run_pool(PoolConfig(output=str(out), inputs=tuple(sample.warc_files)))
    return out


def config(pool: Path, sample: SampleCrawl, workdir: Path, **kw: object) -> MiningConfig:
    return MiningConfig(
        pool=str(pool),
        positives=(sample.seed_positives,),
        workdir=str(workdir),
        min_score=0.5,
        # 200k n-gram buckets instead of the paper's 2M (a 2 GB matrix per model): faster tests.
        classifier=ClassifierConfig(bucket=200_000),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def mined(pool: Path, sample: SampleCrawl, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("mine") / "w"
    return workdir, run_mining(config(pool, sample, workdir))


def collected_urls(workdir: Path, k: int) -> set[str]:
    urls: set[str] = set()
    for f in glob.glob(str(workdir / f"iter_{k}" / "recall" / "scores-*.parquet")):
        for row in pq.read_table(f, columns=["url", "collected"]).to_pylist():
            if row["collected"]:
                urls.add(row["url"])
    return urls


def annotations(workdir: Path, k: int) -> dict[str, str]:
    with (workdir / f"iter_{k}" / "annotations.csv").open() as fh:
        return {r["prefix"]: r["decision"] for r in csv.DictReader(fh)}


def test_forum_domain_is_discovered_in_iteration_2(mined, sample: SampleCrawl) -> None:
    workdir, result = mined
    its = result["iterations"]
    assert result["status"] == "finished"
    assert FORUM not in its[0]["math_domains"]
    assert "homework-help.example" in its[0]["math_domains"]
    assert "homework-help.example/ask" in its[0]["prefixes_accepted"]
    assert its[0]["expansion_pages"] > 0
    assert FORUM in its[1]["math_domains"]
    decisions = annotations(workdir, 2)
    assert decisions[f"{FORUM}/t/algebra"] == decisions[f"{FORUM}/t/calculus"] == "accept"
    for board in ("cooking", "football", "gadgets", "cinema"):
        assert decisions[f"{FORUM}/t/{board}"] == "reject"
    assert decisions[f"{FORUM}/t"] == "reject"
    # Recall of the forum's math boards rises from iteration 1 to iteration 2.
    forum_math = {u for u in sample.forum_math_urls if f"://{FORUM}/" in u}
    recall = [len(collected_urls(workdir, k) & forum_math) / len(forum_math) for k in (1, 2)]
    assert recall[0] < 0.2 and recall[1] > 0.8, recall
    # No non-math board page was collected.
    boards = ("cooking", "football", "gadgets", "cinema")
    assert not {u for u in collected_urls(workdir, 2) for b in boards if f"{FORUM}/t/{b}/" in u}


def test_stopping_rule_fires_and_final_collection_is_a_pool(mined) -> None:
    workdir, result = mined
    assert result["stopped_because"] == "converged"
    last = result["iterations"][-1]
    assert last["overlap_with_previous"] >= 0.98
    assert result["final_iteration"] == len(result["iterations"]) < 4
    files = sorted((workdir / "final").glob("pool-*.parquet"))
    table = pq.read_table(files[0])
    assert table.schema.remove_metadata().equals(POOL_SCHEMA.remove_metadata())
    rows = sum(pq.read_table(f).num_rows for f in files)
    assert rows == result["final"]["pages"] == last["pages_collected"]
    urls = {u for f in files for u in pq.read_table(f, columns=["url"]).column("url").to_pylist()}
    assert urls == collected_urls(workdir, result["final_iteration"])
    stats = json.loads((workdir / "iter_1" / "recall" / "stats.json").read_text())
    assert stats["all_balanced"] and stats["stages"]["score"]["dead_lettered"] == {}
    assert "| iter |" in (workdir / "summary.md").read_text()


@pytest.mark.slow
def test_killed_run_continues_with_the_same_result(mined, pool, sample, tmp_path: Path) -> None:
    workdir, result = mined
    copy = tmp_path / "w"
    shutil.copytree(workdir, copy)
    # As if killed during iteration 2's recall (no stats.json, staging left behind) and before
    # anything after it was written.
    recall = copy / "iter_2" / "recall"
    (recall / "stats.json").unlink()
    (recall / "_staging").mkdir()
    for later in ("iter_3", "final"):
        shutil.rmtree(copy / later, ignore_errors=True)
    (copy / "iter_2" / "annotations.csv").unlink()
    again = run_mining(config(pool, sample, copy))
    assert again["iterations"] == result["iterations"]
    assert again["final"]["pages"] == result["final"]["pages"]
    assert collected_urls(copy, 3) == collected_urls(workdir, 3)


@pytest.mark.slow
def test_pause_for_annotation_and_resume(pool, sample, tmp_path: Path, capsys) -> None:
    workdir = tmp_path / "w"
    argv = [
        "--pool", str(pool), "--positives", sample.seed_positives, "--workdir", str(workdir),
        "--min-score", "0.5", "--iterations", "2", "--pause-for-annotation", "--bucket", "200000",
    ]  # fmt: skip
    assert mine_main(argv) == EXIT_PAUSED
    path = workdir / "iter_1" / "annotations.csv"
    assert "paused for annotation" in capsys.readouterr().out
    rows = list(csv.DictReader(path.open()))
    assert rows and all(r["decision"] == "" for r in rows)
    # A person accepts only the homework site's prefix.
    for r in rows:
        r["decision"] = "accept" if r["prefix"] == "homework-help.example/ask" else "reject"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert mine_main(argv) == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["iterations"][0]["prefixes_accepted"] == ["homework-help.example/ask"]
    assert summary["stopped_because"] == "max_iterations" and summary["final_iteration"] == 2


def test_workdir_and_inputs_on_a_non_local_file_system(
    mined, pool: Path, sample: SampleCrawl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool, positives and work folder as `mctest://` paths (a Beam file system over a local
    folder): only code that goes through FileSystems can run, and the result is the local one."""
    workdir, result = mined
    root = tmp_path / "store"
    scheme_filesystem.use_root(str(root))
    shutil.copytree(pool, root / "pool")
    (root / "seed").mkdir()
    shutil.copy(sample.seed_positives, root / "seed" / "positives.jsonl")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a path used as a local one would land here
    remote = MiningConfig(
        pool="mctest://pool",
        positives=("mctest://seed/positives.jsonl",),
        workdir="mctest://w",
        min_score=0.5,
        classifier=ClassifierConfig(bucket=200_000),
    )
    again = run_mining(remote)
    assert again["iterations"] == result["iterations"]
    assert again["final"] == {"path": "mctest://w/final", "pages": result["final"]["pages"]}
    assert list(elsewhere.iterdir()) == []
    k = result["final_iteration"]
    assert collected_urls(root / "w", k) == collected_urls(workdir, k)
    for name in ("model.bin", "scoring_table.npz", "model.json"):
        assert (root / "w" / "iter_1" / "model" / name).is_file()
    assert sorted(p.name for p in (root / "w" / "iter_1" / "sample").glob("train-*.txt"))
    # Killed during the last recall: rerun over the same paths continues to the same result.
    (root / "w" / f"iter_{k}" / "recall" / "stats.json").unlink()
    (root / "w" / "summary.json").unlink()
    assert run_mining(remote)["iterations"] == result["iterations"]


def test_config_problems_are_listed(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError) as info:
        MiningConfig(pool="", positives=(), workdir="", min_score=2.0, converged=3)
    for fragment in ("pool", "positives", "workdir", "min_score", "converged"):
        assert fragment in str(info.value)
    code = mine_main(
        ["--pool", str(tmp_path), "--positives", str(tmp_path), "--workdir", str(tmp_path / "w"),
         "--budget-tokens", "100"]
    )  # fmt: skip
    assert code == 2 and "holds no files" in capsys.readouterr().err
    positives = tmp_path / "positives.jsonl"
    positives.write_text('{"text": "$x^2$"}\n')
    code = mine_main(
        ["--pool", str(tmp_path), "--positives", str(positives), "--workdir", str(tmp_path / "w"),
         "--budget-tokens", "100"]
    )  # fmt: skip
    assert code == 2 and "pool-*.parquet" in capsys.readouterr().err
