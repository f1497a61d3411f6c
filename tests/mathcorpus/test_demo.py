"""`mathcorpus demo` end to end: every stage does real work on the generated crawl (~1 min)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathcorpus.demo import DEMO_BENCHMARKS, demo_benchmark_root, run_demo


@pytest.fixture(scope="module")
def benchmark_root() -> Path:
    root = demo_benchmark_root()
    if root is None:
        pytest.skip("../shared/data/benchmarks is absent: the demo's benchmarks cannot run")
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, benchmark_root: Path) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("demo")
    summary = run_demo(workdir, seed=1234, scale=1.0, beam_args=(), benchmark_root=benchmark_root)
    return workdir, summary


@pytest.mark.slow
def test_every_stage_did_real_work(demo: tuple[Path, dict]) -> None:
    workdir, summary = demo
    assert summary["pool"]["balanced"] and summary["pool"]["pages"] > 1000
    pool_stats = json.loads((workdir / "pool" / "stats.json").read_text())["stages"]
    assert pool_stats["near_dedup"]["dropped"]["near_duplicate"] > 0
    assert pool_stats["exact_dedup"]["dropped"]["exact_duplicate"] > 0

    # Mining: the forum is found in iteration 2 and its math boards accepted; then it stops.
    assert summary["mining"]["iterations"] >= 2
    assert summary["mining"]["stopped_because"] == "converged"
    iter1 = json.loads((workdir / "mine" / "iter_1" / "stats.json").read_text())
    iter2 = json.loads((workdir / "mine" / "iter_2" / "stats.json").read_text())
    assert "talk.example" not in iter1["math_domains"]
    assert "talk.example" in iter2["math_domains"]
    assert {"talk.example/t/algebra", "talk.example/t/calculus"} <= set(iter2["prefixes_accepted"])

    # Decontamination removes the planted benchmark problems, and names them.
    decon = summary["decontamination"]
    assert decon["pages_removed"] >= len(decon["planted_items"]) > 0
    assert set(decon["planted_items"]) <= set(decon["leaked_items"])

    # Shards and training.
    assert summary["shards"]["math_tokens"] > 50_000 and summary["shards"]["code_tokens"] > 50_000
    assert summary["shards"]["text_tokens"] > summary["shards"]["math_tokens"]  # the whole pool
    training = summary["training"]
    assert training["two_stage_forgets_code"], training
    assert (workdir / "train" / "two_stage" / "eval.csv").is_file()

    # Benchmarks on each arm after each stage: the two-stage arm after its code stage and at
    # the end, the one-stage arm at the end; every benchmark scored with a finite gold NLL.
    benchmarks = training["benchmarks"]
    assert set(benchmarks["two_stage"]) == {"stage-0", "end"}
    assert set(benchmarks["one_stage"]) == {"end"}
    for points in benchmarks.values():
        for figures in points.values():
            assert set(figures) == set(DEMO_BENCHMARKS)
            for name, row in figures.items():
                assert row["status"] == "ok", (name, row)
                assert 0.0 <= row.get("pass@1", row.get("accuracy", -1)) <= 1.0
                assert 0.0 < row["gold_nll"] < 20.0


@pytest.mark.slow
def test_report_shows_every_stage(demo: tuple[Path, dict]) -> None:
    _, summary = demo
    html = Path(summary["report"]).read_text()
    for title in (
        "Funnel: pool",
        "Deduplication: pool",
        "Mining loop: mine",
        "Contamination: corpus",
        "Tokens: shards/math",
        "Tokens: shards/code",
        "Two-stage vs one-stage",
        "Training: train/two_stage",
    ):
        assert f"<h2>{title}" in html, title
    assert "talk.example/t/algebra" in html and "logit P(math)" in html
    # The one-screen summary comes first: the experiment chart and the benchmark table.
    summary_html = html[html.index("<section id='summary'>") :]
    assert html.index("<section id='summary'>") < html.index("<nav>")
    assert "math stage starts" in summary_html and "<td>humaneval</td>" in summary_html


@pytest.mark.slow
def test_rerun_skips_finished_stages(demo: tuple[Path, dict], benchmark_root: Path) -> None:
    workdir, first = demo
    pool_stats = (workdir / "pool" / "stats.json").stat().st_mtime_ns
    again = run_demo(workdir, seed=1234, scale=1.0, beam_args=(), benchmark_root=benchmark_root)
    assert (workdir / "pool" / "stats.json").stat().st_mtime_ns == pool_stats
    assert again["mining"] == first["mining"]
    assert again["shards"] == first["shards"]
    # Finished benchmark evaluations are read back, not run again.
    assert again["training"]["benchmarks"] == first["training"]["benchmarks"]
