"""End-to-end tests of `mathcorpus pool` on the generated sample crawl and the real WARC files."""

from __future__ import annotations

import gzip
import itertools
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mathcorpus.sample_crawl import SampleCrawl, write_sample_crawl
from pipeline.core.run_output import OutputConflict
from pipeline.pool.config import PoolConfig
from pipeline.pool.pipeline import main as pool_main
from pipeline.pool.pipeline import run_pool
from tests.helpers import require_shared


def read_rows(folder: Path) -> list[dict]:
    files = sorted(folder.glob("pool-*.parquet"))
    assert files, f"no pool files in {folder}"
    rows: list[dict] = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def read_dead_letters(folder: Path) -> list[dict]:
    lines: list[dict] = []
    for f in sorted((folder / "dead_letter").glob("*.jsonl")):
        lines.extend(json.loads(line) for line in f.read_text().splitlines() if line.strip())
    return lines


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleCrawl:
    return write_sample_crawl(tmp_path_factory.mktemp("sample"), seed=7, scale=0.15)


@pytest.fixture(scope="module")
def pooled(sample: SampleCrawl, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pool") / "pool"
    stats = run_pool(PoolConfig(output=str(out), inputs=tuple(sample.warc_files)))
    return out, stats


def test_every_record_is_accounted_for(pooled: tuple[Path, dict]) -> None:
    out, stats = pooled
    stages = stats["stages"]
    assert stats["all_balanced"], json.dumps(stages, indent=1)
    for s in stages.values():
        assert s["in"] == s["kept"] + sum(s["dropped"].values()) + sum(s["dead_lettered"].values())
    # Each stage's kept records are the next stage's input.
    chain = [
        "read",
        "url",
        "decode",
        "extract",
        "language",
        "url_dedup",
        "exact_dedup",
        "near_dedup",
    ]
    for before, after in itertools.pairwise(chain):
        assert stages[before]["kept"] == stages[after]["in"], (before, after)
    rows = read_rows(out)
    assert len(rows) == stages["near_dedup"]["kept"] == stats["pages_written"]
    # Only key records cross a shuffle: bytes per page (measured as Beam encodes them) stay
    # under 1 KB whatever the pages' size (their mean text alone is larger).
    shuffle = stats["shuffle_bytes_per_page"]
    assert set(shuffle) >= {"Url", "TextHash", "Bands", "Nodes", "Decisions", "total"}
    assert shuffle["total"] < 1024, shuffle
    assert shuffle["total"] < sum(len(r["text"].encode()) for r in rows) / len(rows)
    dead = read_dead_letters(out)
    total_dead = sum(sum(s["dead_lettered"].values()) for s in stages.values())
    assert len(dead) == total_dead


def test_pool_is_deduplicated_and_duplicates_are_kept_aside(
    pooled: tuple[Path, dict], sample: SampleCrawl
) -> None:
    out, stats = pooled
    rows = read_rows(out)
    duplicates: list[dict] = []
    for f in sorted((out / "duplicates").glob("*.parquet")):
        duplicates.extend(pq.read_table(f).to_pylist())
    # Nothing vanishes: kept + duplicates + older captures of a URL = pages that left language
    # id (URL dedup decides among extracted pages: an empty newest capture never wins).
    older_captures = stats["stages"]["url_dedup"]["dropped"]["duplicate_url"]
    assert older_captures > 0
    assert len(rows) + len(duplicates) + older_captures == stats["stages"]["language"]["kept"]
    kinds = {d["duplicate_kind"] for d in duplicates}
    assert kinds == {"exact", "near"}, kinds
    kept_ids = {r["doc_id"] for r in rows}
    assert all(d["kept_id"] in kept_ids for d in duplicates)
    # The planted mirrors (mirror-mathqa) and syndicated copies (syndicate-news) each pair
    # with a page still in the pool; no pair of kept pages has identical normalised text.
    domains = {d["domain"] for d in duplicates} | {
        r["domain"] for r in rows if r["doc_id"] in {d["kept_id"] for d in duplicates}
    }
    assert {"syndicate-news.example", "reelreview.example"} <= domains
    assert "mirror-mathqa.example" in domains
    report = json.loads((out / "dedup_report.json").read_text())
    assert report["counts"]["clusters"]["near"] >= 1
    assert report["threshold"] == pytest.approx(0.7191, abs=1e-3)
    index = pq.read_table(out / "band_index").to_pylist()
    assert {r["doc_id"] for r in index} == kept_ids


def test_sample_crawl_faults_and_drops_are_reported(pooled: tuple[Path, dict]) -> None:
    out, stats = pooled
    read = stats["stages"]["read"]
    assert read["dropped"]["not_response"] > 0  # warcinfo, request and metadata records
    assert read["dropped"]["not_html"] >= 3  # robots.txt, png, pdf
    assert read["dropped"]["http_status"] >= 2  # the 301 and the 404
    assert read["dropped"]["too_large"] == 1
    assert sum(read["dead_lettered"].values()) == 2  # the truncated file, the broken headers
    assert stats["stages"]["files"]["kept"] == 6
    assert stats["stages"]["files"]["notes"]["ended_by_fault"] == 2
    dead = read_dead_letters(out)
    faulted = {Path(d["source"]).name for d in dead if d["stage"] == "read"}
    assert faulted == {"sample-00004-truncated.warc.gz", "sample-00005-badheaders.warc"}
    assert all(d["offset"] >= 0 for d in dead if d["stage"] == "read")
    assert any(d["reason"] == "invalid_url" for d in dead)
    assert stats["stages"]["decode"]["notes"]["bad_bytes_replaced"] >= 2


def test_stats_count_the_math_before_and_after_main_content(pooled: tuple[Path, dict]) -> None:
    notes = pooled[1]["stages"]["extract"]["notes"]
    # The sample's math pages carry TeX; the main text keeps it (counted on the pages kept).
    assert notes["pages_with_math"] > 0
    assert notes["tex_in_page"] > 0
    assert 0 < notes["tex_in_main_text"] <= notes["tex_in_page"]


def test_url_dedup_keeps_newest_capture(pooled: tuple[Path, dict], sample: SampleCrawl) -> None:
    out, stats = pooled
    rows = read_rows(out)
    urls = [r["url"] for r in rows]
    assert len(urls) == len(set(urls)), "a normalised URL appears twice"
    assert len({r["doc_id"] for r in rows}) == len(rows)
    dups = stats["stages"]["url_dedup"]["dropped"]["duplicate_url"]
    assert dups > 0
    # Recaptures were written 30 days after the first capture: the kept one is the later.
    recaptured = [r for r in rows if r["fetch_time"].month >= 3 and r["fetch_time"].day > 20]
    assert recaptured, "no recaptured page kept"
    assert all("utm_" not in u and "#" not in u for u in urls)


def test_math_is_kept_as_latex(pooled: tuple[Path, dict], sample: SampleCrawl) -> None:
    out, _ = pooled
    rows = {r["url"]: r for r in read_rows(out)}
    math_rows = [rows[u] for u in sample.math_urls if u in rows]
    assert len(math_rows) >= 0.9 * len(sample.math_urls)
    assert all(r["has_math"] for r in math_rows)
    by_site: dict[str, list[dict]] = {}
    for r in math_rows:
        by_site.setdefault(r["domain"], []).append(r)
    # Every markup of the sample turns into $...$ LaTeX in the text.
    for domain, site_rows in by_site.items():
        with_tex = [r for r in site_rows if "$" in r["text"] and "\\" in r["text"]]
        assert len(with_tex) >= 0.9 * len(site_rows), domain
    katex = by_site["katex-blog.example"][0]["text"]
    assert "katex" not in katex.lower()
    not_math = [r for r in rows.values() if r["domain"] == "dailyplate.example"]
    assert not_math and not any(r["has_math"] for r in not_math)
    # Boilerplate (navigation, footer) is dropped by the extractor.
    assert sum("All rights reserved" in r["text"] for r in rows.values()) < 0.1 * len(rows)
    assert {r["language"] for r in rows.values()} >= {"en"}


def test_rerun_skips_finished_work_and_conflicts_are_refused(
    pooled: tuple[Path, dict], sample: SampleCrawl
) -> None:
    out, stats = pooled
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_pool(PoolConfig(output=str(out), inputs=tuple(sample.warc_files)))
    assert again == stats
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(OutputConflict, match="--overwrite"):
        run_pool(PoolConfig(output=str(out), inputs=tuple(sample.warc_files), min_text_chars=5))


def test_killed_run_leftovers_are_cleaned(sample: SampleCrawl, tmp_path: Path) -> None:
    out = tmp_path / "pool"
    (out / "_staging" / "junk").mkdir(parents=True)
    (out / "pool-00000-of-00009.parquet").write_bytes(b"half written")
    stats = run_pool(PoolConfig(output=str(out), inputs=tuple(sample.warc_files[:1])))
    assert not (out / "_staging").exists()
    assert [p.name for p in out.glob("pool-*.parquet")] == ["pool-00000-of-00001.parquet"]
    assert len(read_rows(out)) == stats["pages_written"] > 0


def test_language_allow_list(sample: SampleCrawl, tmp_path: Path) -> None:
    stats = run_pool(
        PoolConfig(
            output=str(tmp_path / "p"), inputs=tuple(sample.warc_files[:1]), languages=("zh",)
        )
    )
    lang = stats["stages"]["language"]
    assert lang["kept"] == 0 and lang["dropped"]["language_not_allowed"] == lang["in"] > 0


def test_config_errors_list_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        PoolConfig(output="", extractor="lynx", min_text_chars=-1)
    message = str(info.value)
    for fragment in ("output", "inputs", "extractor", "min_text_chars"):
        assert fragment in message


def test_cli_reports_unmatched_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = pool_main(["--input", str(tmp_path / "nothing*.warc.gz"), "--output", str(tmp_path)])
    assert code == 2
    assert "matches no file" in capsys.readouterr().err


@pytest.mark.slow
def test_same_rows_in_one_process_and_with_two_workers(
    sample: SampleCrawl, pooled: tuple[Path, dict], tmp_path: Path
) -> None:
    out, stats = pooled
    multi = tmp_path / "multi"
    multi_stats = run_pool(
        PoolConfig(output=str(multi), inputs=tuple(sample.warc_files)),
        [
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
            "--runner=DirectRunner",
        ],
    )

    def key(r: dict) -> str:
        return r["doc_id"]

    assert sorted(read_rows(multi), key=key) == sorted(read_rows(out), key=key)
    assert multi_stats["stages"] == stats["stages"]


def test_every_real_warc_file_is_read(tmp_path: Path) -> None:
    warc_dir = require_shared("warc")
    files = sorted(str(p) for p in warc_dir.rglob("*") if p.is_file() and p.suffix != ".md")
    stats = run_pool(
        PoolConfig(output=str(tmp_path / "real"), inputs=tuple(files), min_text_chars=1)
    )
    assert stats["all_balanced"]
    assert stats["stages"]["files"]["in"] == len(files)
    # Every file was opened and read to its end or to its fault; none failed to open.
    assert stats["stages"]["files"]["kept"] == len(files)
    assert stats["stages"]["read"]["kept"] > 0
    assert stats["pages_written"] > 0


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("keep_fetched", [False, True])
def test_common_crawl_listing_over_http(tmp_path: Path, keep_fetched: bool) -> None:
    warc_dir = require_shared("warc")
    names = ["dolma/sample-0000.warc.gz", "warcio/example.warc.gz", "resiliparse/clipped.warc.gz"]
    listing = tmp_path / "warc.paths.gz"
    with gzip.open(listing, "wt") as fh:
        fh.write("\n".join([*names, "missing/not-there.warc.gz"]) + "\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(warc_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        stats = run_pool(
            PoolConfig(
                output=str(tmp_path / "out"),
                paths_listing=str(listing),
                base_url=base,
                fetch_attempts=2,
                min_text_chars=1,
                keep_fetched=keep_fetched,
            )
        )
    finally:
        server.shutdown()
    files = stats["stages"]["files"]
    assert files["in"] == 4
    assert files["kept"] == 3
    assert files["dead_lettered"] == {"fetch_failed": 1}
    assert stats["pages_written"] > 0
    # A downloaded file is deleted once read (a Common Crawl file is ~1 GB), unless kept.
    cached = sorted(p.name for p in (tmp_path / "out" / "_fetch_cache").iterdir())
    assert len([n for n in cached if not n.endswith(".part")]) == (3 if keep_fetched else 0)
