"""`mathcorpus extract` on real HTML files: one pool row per page, math kept, bad files counted."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.extract.pipeline import MAX_FILE_BYTES, file_url, main
from tests.helpers import require_shared


def read_rows(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("pool-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_extract_real_pages_of_one_site(tmp_path: Path) -> None:
    html = require_shared("html")
    with (html / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["filename"].startswith("html/mathjax_demos/")]
    math = {Path(r["filename"]).name for r in rows if r["label"] == "math"}
    pages = tmp_path / "pages"
    pages.mkdir()
    for row in rows:
        shutil.copy(html.parent / row["filename"], pages / Path(row["filename"]).name)
    (pages / "huge.html").write_bytes(b"<p>x</p>" * (MAX_FILE_BYTES // 8 + 1))
    with gzip.open(pages / "packed.html.gz", "wt", encoding="utf-8") as fh:
        fh.write(
            "<html><body><p>" + "A packed page about prime numbers. " * 10 + "</p></body></html>"
        )

    out = tmp_path / "out"
    assert main(["--input", str(pages / "*"), "--output", str(out), "--min-text-chars", "50"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    files = stats["stages"]["files"]
    assert files["in"] == len(rows) + 2 and files["dropped"] == {"too_large": 1}
    assert all(s["balanced"] for s in stats["stages"].values())
    written = read_rows(out)
    assert len(written) == stats["pages_written"] == stats["stages"]["language"]["kept"]
    by_file = {Path(r["warc_file"]).name: r for r in written}
    assert "prime numbers" in by_file["packed.html.gz"]["text"]
    # Every labelled math page of the site comes out with its math (TeX in the text, or MathML
    # rewritten to TeX), and with the format it was found in.
    for name in math:
        row = by_file[name]
        assert row["math_formats"] and "\\" in row["text"], name
        assert ("mathml" in row["math_formats"]) == (row["n_math"] > 0), name
    assert all(r["url"] == file_url(r["warc_file"]) for r in written)

    # The same command again finds the finished output and writes nothing.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["--input", str(pages / "*"), "--output", str(out), "--min-text-chars", "50"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_extract_refuses_bad_flags_with_every_problem(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "--input",
            str(tmp_path / "none-*.html"),
            "--output",
            str(tmp_path / "o"),
            "--min-text-chars",
            "-1",
            "--languages",
            "EN",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "min_text_chars" in err and "languages" in err
