"""report.html: sections built from real stage outputs, and rendering in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mathcorpus.report import collect_sections, main, write_report
from mathcorpus.report_svg import histogram, horizontal_bars, line_chart
from mathcorpus.sample_crawl import write_sample_crawl
from pipeline.pool.config import PoolConfig
from pipeline.pool.pipeline import run_pool

CONSOLE_LINE = re.compile(r"CONSOLE[^\]]*\]\s*(.*)")


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    sample = write_sample_crawl(root / "sample", seed=3, scale=0.15)
    run_pool(PoolConfig(output=str(root / "pool"), inputs=tuple(sample.warc_files)))
    return root


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")


def render(page: Path, screenshot: Path) -> list[str]:
    """Open a page in headless Chromium; return its console messages; write a screenshot."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,1600",
            f"--screenshot={screenshot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.is_file() and screenshot.stat().st_size > 1000, result.stderr[-2000:]
    return [m.group(1) for m in CONSOLE_LINE.finditer(result.stderr)]


def test_report_has_the_funnel_and_dedup_of_a_real_run(pool_run: Path) -> None:
    kinds = [s.kind for s in collect_sections(pool_run)]
    assert kinds[:2] == ["funnel", "dedup"]
    path = write_report(pool_run)
    html = path.read_text()
    assert path == pool_run / "report.html"
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    for stage in ("read", "url_dedup", "extract", "language", "exact_dedup", "near_dedup"):
        assert f"<td>{stage}</td>" in html
    assert "not_response" in html and "truncated" in html  # drop and dead-letter reasons
    assert "every stage balances" in html
    assert "LSH threshold" in html and "<svg" in html


def test_report_renders_in_headless_chromium_without_console_errors(
    pool_run: Path, tmp_path: Path
) -> None:
    # The check itself works: a page with errors is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    messages = render(bad, tmp_path / "bad.png")
    assert any("boom" in m for m in messages) and any("nope" in m for m in messages)

    report = write_report(pool_run)
    shot = tmp_path / "report.png"
    assert render(report, shot) == []
    assert shot.stat().st_size > 20_000  # a page with tables and charts, not a blank one


def test_cli_writes_elsewhere_and_refuses_a_missing_folder(
    pool_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "r.html"
    assert main([str(pool_run / "pool"), "--output", str(out)]) == 0
    assert "Funnel: ." in out.read_text()
    assert main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_charts_scale_and_mark() -> None:
    bars = horizontal_bars([("a", 10.0), ("b", 5.0)], "t")
    widths = [float(w) for w in re.findall(r"<rect [^>]*width='([\d.]+)'", bars)]
    assert widths[0] == pytest.approx(2 * widths[1])
    hist = histogram([0, 0.5, 1.0], [3, 1], "h", marker=0.72, marker_label="cut")
    assert "cut" in hist and "stroke-dasharray" in hist
    with pytest.raises(ValueError):
        histogram([0, 1], [1, 2], "bad")
    lines = line_chart({"math": [(0, 3.0), (10, 2.0)], "code": [(0, 2.5), (10, 2.6)]}, "loss")
    assert lines.count("<polyline") == 2 and "math" in lines
    assert line_chart({}, "empty") == ""


def test_summary_opens_the_report_with_the_funnel(pool_run: Path) -> None:
    html = write_report(pool_run).read_text()
    summary = html[html.index("<section id='summary'>") :]
    assert html.index("<section id='summary'>") < html.index("<nav>")  # read first
    summary = summary[: summary.index("</section>")]
    assert "<td>pool</td>" in summary and "pages in" in summary


def _experiment(root: Path) -> None:
    """An experiment folder as run_experiment and `mathcorpus eval` leave it (two arms)."""
    import json

    from trainer.run_files import BENCHMARK_RESULTS_FILE, COMPARISON_FILE, EVAL_CSV

    comparison = {"math_stage_starts_at_step": 2, "runs": {"two_stage": {}, "one_stage": {}}}
    root.mkdir(parents=True)
    (root / COMPARISON_FILE).write_text(json.dumps(comparison))
    for arm, code in (("two_stage", (5.0, 4.0, 4.6)), ("one_stage", (5.0, 4.2, 4.1))):
        rows = ["step,tokens,stage,domain,loss,target_tokens"]
        for step, loss in enumerate(code):
            stage = 0 if step < 2 or arm == "one_stage" else 1
            rows.append(f"{step * 2},{step * 2048},{stage},code,{loss},100")
            rows.append(f"{step * 2},{step * 2048},{stage},math,{6.0 - step * 0.5},100")
        (root / arm).mkdir()
        (root / arm / EVAL_CSV).write_text("\n".join(rows) + "\n")
        for stage, acc in (("stage-0", 0.0), ("end", 0.125)):
            folder = root / arm / "benchmarks" / stage
            folder.mkdir(parents=True)
            results = {"benchmarks": {"gsm8k": {"accuracy": acc, "gold_nll": 3.5}}}
            (folder / BENCHMARK_RESULTS_FILE).write_text(json.dumps(results))


def test_summary_shows_the_experiment_answer_in_one_chart(tmp_path: Path) -> None:
    _experiment(tmp_path / "train")
    html = write_report(tmp_path).read_text()
    summary = html[html.index("<section id='summary'>") :]
    summary = summary[: summary.index("</section>")]
    chart = summary[summary.index("<svg") : summary.index("</svg>")]
    # Both arms' code and math loss on the same axes, the stage switch marked.
    assert chart.count("<polyline") == 4
    for name in ("two_stage: code", "two_stage: math", "one_stage: code", "one_stage: math"):
        assert name in chart
    assert "math stage starts" in chart and "stroke-dasharray" in chart
    # The benchmark table beside it: per arm, per stage.
    assert summary.count("<td>gsm8k</td>") == 4 and "<td>end</td>" in summary
