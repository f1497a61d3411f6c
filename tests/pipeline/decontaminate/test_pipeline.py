"""`mathcorpus decontaminate` on real pages with real benchmark items planted in them.

Real GSM8K, MATH and CMATH items are planted in real not-math pages from ../shared/data/html
(as a whole, with changed spacing and case, and as a solution only); every planted page must be
removed, and no unplanted page may be, math or not (the evidence rule of ngram_index.py: a
formula or a numbered list that also occurs in a benchmark solution is no evidence).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.core.config_errors import ConfigError
from pipeline.core.dead_letters import DEAD_LETTER
from pipeline.decontaminate.benchmarks import BenchmarkItem, load_benchmarks
from pipeline.decontaminate.config import KEPT, REMOVED, DecontaminateConfig
from pipeline.decontaminate.ngram_index import BenchmarkIndex
from pipeline.decontaminate.pipeline import main, read_report, run_decontaminate
from pipeline.decontaminate.transforms import Decontaminate
from pipeline.pool.schema import POOL_SCHEMA
from tests.helpers import make_pool_row, require_shared


@pytest.fixture(scope="module")
def pages(real_page_texts: list[tuple[dict[str, str], str]]) -> list[dict[str, str]]:
    """Every labelled real page with its extracted text (resiliparse, maths as LaTeX; the
    `.html.gz` pages decompressed)."""
    return [{**row, "text": text} for row, text in real_page_texts]


def _jsonl(*parts: str) -> list[dict]:
    with require_shared("benchmarks", *parts).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _respace(text: str) -> str:
    """Changed spacing: doubled spaces, line breaks for spaces, none around `=`."""
    text = re.sub(r"\s*=\s*", "=", text)
    return re.sub(
        r"(\S) (\S)",
        lambda m: m.group(1) + ("  " if len(m.group(0)) % 2 else "\n") + m.group(2),
        text,
    )


def _recase_latex(text: str) -> str:
    """Changed case of a LaTeX text: upper-case words that are not TeX commands; braced
    one-character fraction arguments written brace-less (`\\frac{1}{2}` -> `\\frac 1 2`)."""
    text = re.sub(r"\\frac\{(\w)\}\{(\w)\}", r"\\frac \1 \2", text)
    return re.sub(r"(?<![\\A-Za-z])[a-z]+", lambda m: m.group(0).upper(), text)


def _rebrace(text: str) -> str:
    """Re-braced LaTeX: braced one-character arguments written bare and bare ones braced
    (`\\frac{1}{2}` -> `\\frac12`, `x^{2}` -> `x^2`, `x_n` -> `x_{n}`), no space after commas."""
    text = re.sub(r"\\frac\{(\w)\}\{(\w)\}", r"\\frac\1\2", text)
    text = re.sub(
        r"([\^_])(?:\{(\w)\}|(\w))",
        lambda m: m.group(1) + (m.group(2) or "{" + m.group(3) + "}"),
        text,
    )
    return text.replace(", ", ",")


def _first_with(records: list[dict], start: int, *needles: str) -> int:
    """The first record from `start` on whose solution has every needle (chosen by content)."""
    return next(
        i for i in range(start, len(records)) if all(n in records[i]["solution"] for n in needles)
    )


def _fullwidth_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def planted_texts() -> list[tuple[str, str, str, str]]:
    """(benchmark, item id, how, text to plant) for real GSM8K, MATH and CMATH items."""
    gsm = _jsonl("gsm8k", "test.jsonl")
    math = _jsonl("math_hendrycks", "test.jsonl")
    cmath = _jsonl("cmath", "test.jsonl")
    g1, g2, g3, g4 = gsm[21], gsm[402], gsm[1200], gsm[777]
    m1, m2, m3 = math[7], math[2345], math[4321]
    m4 = _first_with(math, 3000, "\\frac{", "^{")
    m5 = _first_with(math, 3500, "\\frac{", "^")
    c1, c2, c3 = cmath[30], cmath[640], cmath[1001]
    return [
        ("gsm8k", "21", "whole", f"{g1['question']}\n{g1['answer']}"),
        ("gsm8k", "777", "upper_case", f"{g4['question']}\n{g4['answer']}".upper()),
        ("gsm8k", "402", "spacing_case", _respace(g2["question"].upper())),
        ("gsm8k", "1200", "solution_only", g3["answer"].split("####")[0]),
        ("math_hendrycks", "7", "whole", f"Problem: {m1['problem']}\nSolution: {m1['solution']}"),
        ("math_hendrycks", "2345", "spacing_case", _respace(_recase_latex(m2["problem"]))),
        ("math_hendrycks", "4321", "solution_only", m3["solution"]),
        ("math_hendrycks", str(m4), "latex_rebraced", _rebrace(f"{math[m4]['problem']}")),
        (
            "math_hendrycks",
            str(m5),
            "latex_respaced_solution",
            _respace(_rebrace(math[m5]["solution"])),
        ),
        ("cmath", "30", "whole", f"{c1['question']} 答案：{c1['golden']}"),
        ("cmath", "640", "spacing_case", " ".join(_fullwidth_digits(c2["question"]))),
        # CMATH has no solution text (its answer is one number, under the 3-gram minimum): the
        # third plant is the question run into surrounding Chinese text without separators.
        ("cmath", "1001", "inline", f"老师说：{c3['question']}请大家想一想。"),
    ]


def _plant(text: str, insert: str) -> str:
    paragraphs = text.split("\n")
    middle = len(paragraphs) // 2
    return "\n".join([*paragraphs[:middle], insert, *paragraphs[middle:]])


def _row(i: int, filename: str, text: str) -> dict:
    url = f"https://real-pages.example/{filename}"
    return make_pool_row(f"{i:016x}", text, url, "real-pages.example", i, "real-pages")


def write_pool(folder: Path, rows: list[dict], files: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        part = rows[k::files]
        table = pa.Table.from_pylist(part, schema=POOL_SCHEMA)
        pq.write_table(table, folder / f"pool-{k:05d}-of-{files:05d}.parquet")


def read_rows(pattern: str, folder: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(folder.glob(pattern)):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


@pytest.fixture(scope="module")
def planted_run(pages: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(11)
    not_math = [i for i, p in enumerate(pages) if p["label"] == "not-math"]
    hosts = rng.sample(not_math, len(planted_texts()))
    rows, planted = [], {}
    for i, page in enumerate(pages):
        rows.append(_row(i, page["filename"], page["text"]))
    for host, (benchmark, item_id, how, text) in zip(hosts, planted_texts(), strict=True):
        rows[host] = _row(host, pages[host]["filename"], _plant(pages[host]["text"], text))
        planted[rows[host]["doc_id"]] = (benchmark, item_id, how)
    base = tmp_path_factory.mktemp("decontam")
    write_pool(base / "pool", rows)
    bench = require_shared("benchmarks")
    config = DecontaminateConfig(
        output=str(base / "out"),
        inputs=(str(base / "pool"),),
        benchmarks=(
            str(bench / "gsm8k"),
            f"math_hendrycks={bench / 'math_hendrycks' / 'test.jsonl'}",
            str(bench / "cmath"),
        ),
    )
    stats = run_decontaminate(config)
    return base / "out", stats, rows, planted


def test_every_planted_page_is_removed(planted_run) -> None:
    out, _, _, planted = planted_run
    removed = {r["doc_id"]: r for r in read_rows("removed/*.parquet", out)}
    for doc_id, (benchmark, item_id, how) in planted.items():
        assert doc_id in removed, f"{benchmark} {item_id} planted {how} was not removed"
        row = removed[doc_id]
        assert (row["benchmark"], row["item_id"]) == (benchmark, item_id), how
        assert row["matched_span"] and row["matched_span"] in row["text"]
        assert {"benchmark": benchmark, "item_id": item_id} in [
            {"benchmark": m["benchmark"], "item_id": m["item_id"]} for m in row["matched_items"]
        ]


def test_unplanted_pages_are_kept(planted_run, pages) -> None:
    out, _, rows, planted = planted_run
    removed = {r["doc_id"]: r for r in read_rows("removed/*.parquet", out)}
    false_positives = {
        pages[int(doc_id, 16)]["filename"]: (r["benchmark"], r["item_id"], r["matched_span"])
        for doc_id, r in removed.items()
        if doc_id not in planted
    }
    print(f"\nunplanted pages removed: {len(false_positives)} of {len(rows) - len(planted)}")
    for name, why in sorted(false_positives.items()):
        print(f"  {name}: {why}")
    assert not false_positives


def test_kept_plus_removed_is_input_and_kept_rows_are_unchanged(planted_run) -> None:
    out, stats, rows, planted = planted_run
    stage = stats["stages"]["decontaminate"]
    assert stats["all_balanced"]
    assert stage["in"] == len(rows) == stats["input_pages"]
    assert stats["kept_pages"] + stats["removed_pages"] == len(rows)
    assert stats["removed_pages"] == len(planted)
    assert stage["dropped"] == {"contaminated": stats["removed_pages"]}
    kept = read_rows("pool-*.parquet", out)
    assert len(kept) == stats["kept_pages"]
    by_id = {r["doc_id"]: r for r in read_rows("pool-*.parquet", out.parent / "pool")}
    for row in kept:
        assert row == by_id[row["doc_id"]]
    schema = pq.read_schema(next(out.glob("pool-*.parquet")))
    assert schema.equals(POOL_SCHEMA, check_metadata=False)
    assert schema.metadata[b"mathcorpus.format"] == b"pool"
    assert (out / "stats.json").exists() and (out / "config.json").exists()
    assert not (out / "_staging").exists()


def test_contamination_report_names_the_leaked_items(planted_run) -> None:
    out, stats, _, planted = planted_run
    report = read_report(str(out))
    assert report["input_pages"] == stats["input_pages"]
    assert report["removed_pages"] == stats["removed_pages"]
    benchmarks = report["benchmarks"]
    assert set(benchmarks) == {"gsm8k", "math_hendrycks", "cmath"}
    assert benchmarks["gsm8k"]["items"] == 1319
    for benchmark, item_id, _ in planted.values():
        leaked = {i["item_id"]: i for i in benchmarks[benchmark]["leaked_items"]}
        assert item_id in leaked
        assert leaked[item_id]["pages"] >= 1
        assert leaked[item_id]["example_urls"]
    # Exactly the planted pages: no formula or list page is removed on the side.
    for name in ("gsm8k", "math_hendrycks", "cmath"):
        planted_here = sum(1 for b, _, _ in planted.values() if b == name)
        assert benchmarks[name]["pages_removed"] == planted_here
    assert benchmarks["gsm8k"]["items_leaked"] == len(benchmarks["gsm8k"]["leaked_items"])


def test_no_real_page_matches_the_full_benchmark_list(pages, shared_data: Path) -> None:
    """Nothing planted, every benchmark file the project loads: no page is removed, math
    (formula pages: the quadratic formula, arrays of letters) or not (numbered lists)."""
    bench = shared_data / "benchmarks"
    index = BenchmarkIndex.build(load_benchmarks(sorted(str(p) for p in bench.iterdir())))
    assert index.stats.items > 10_000
    matched = {p["filename"]: index.match(p["text"]) for p in pages}
    matched = {name: m for name, m in matched.items() if m is not None}
    labels = {p["filename"]: p["label"] for p in pages}
    counts = {label: sum(1 for p in pages if p["label"] == label) for label in set(labels.values())}
    removed = {label: sum(1 for n in matched if labels[n] == label) for label in counts}
    print(f"\nfull benchmark list, nothing planted: removed {removed} of {counts} real pages")
    for name, m in sorted(matched.items()):
        print(
            f"  {name} ({labels[name]}): {m.primary.benchmark} {m.primary.item_id} "
            f"{m.primary.span!r}"
        )
    assert counts["math"] > 0 and counts["not-math"] > 0
    assert removed == {"math": 0, "not-math": 0}


def test_a_numbered_list_on_a_real_page_is_no_evidence(pages, shared_data: Path) -> None:
    """`1. 2. ... 13.` is a 13-gram of several MATH solutions; a real not-math page that has
    such a list is kept, and the same page with a MATH problem planted is not."""
    math_path = shared_data / "benchmarks" / "math_hendrycks" / "test.jsonl"
    index = BenchmarkIndex.build(load_benchmarks([str(math_path)]))
    host = next(p for p in pages if p["label"] == "not-math" and len(p["text"]) > 2000)
    listed = host["text"] + "\n" + "\n".join(f"{i}." for i in range(1, 14))
    assert index.match(listed) is None
    problem = _jsonl("math_hendrycks", "test.jsonl")[3720]["problem"]
    match = index.match(_plant(listed, problem))
    assert match is not None and match.primary.item_id == "3720"


def test_rerun_skips_and_cli(planted_run, tmp_path: Path, capsys) -> None:
    out, _, _, _ = planted_run
    config_path = out / "stats.json"
    before = config_path.stat().st_mtime_ns
    pool = str(out.parent / "pool")
    bench = require_shared("benchmarks")
    argv = [
        "--input",
        pool,
        "--benchmarks",
        str(bench / "gsm8k"),
        f"math_hendrycks={bench / 'math_hendrycks' / 'test.jsonl'}",
        str(bench / "cmath"),
        "--output",
        str(out),
    ]
    assert main(argv) == 0  # finished with the same config: nothing is redone
    assert config_path.stat().st_mtime_ns == before
    assert "kept" in capsys.readouterr().out
    # Another config on a finished output stops with a clear message ...
    assert main([*argv, "--ngram", "12"]) == 2
    assert "different config" in capsys.readouterr().err
    # ... and bad options stop before launch.
    assert main([*argv[:-1], str(tmp_path / "o"), "--ngram", "1"]) == 2
    assert "ngram: must be in [2, 64]" in capsys.readouterr().err
    assert main(["--input", pool, "--benchmarks", str(bench / "gsm8k"), "--output", pool]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert (
        main(
            [
                "--input",
                str(tmp_path),
                "--benchmarks",
                str(bench / "gsm8k"),
                "--output",
                str(tmp_path / "o2"),
            ]
        )
        == 2
    )
    assert "no pool-*.parquet" in capsys.readouterr().err


def test_demo_style_generic_benchmark_through_the_cli(tmp_path: Path, pages) -> None:
    bench = tmp_path / "demo_bench.jsonl"
    items = [
        {
            "id": "demo-000",
            "question": "A train leaves the station at 9 am travelling at 60 "
            "km per hour towards a city 180 km away.",
            "answer": "It arrives at noon.",
        },
        {"id": "demo-001", "question": "Solve $x^2 - 5x + 6 = 0$.", "answer": "$x = 2$ or $x = 3$"},
    ]
    bench.write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    rows = [_row(i, p["filename"], p["text"]) for i, p in enumerate(pages[:30])]
    rows[3] = _row(
        3,
        "x",
        rows[3]["text"] + "\nA TRAIN leaves the station at 9am, travelling at "
        "60 km per hour towards a city 180 km away!",
    )
    rows[4] = _row(4, "y", rows[4]["text"] + "\nHomework: solve $x^{2}-5x+6=0$ quickly.")
    write_pool(tmp_path / "pool", rows, files=1)
    out = tmp_path / "out"
    assert (
        main(
            [
                "--input",
                str(tmp_path / "pool"),
                "--benchmarks",
                str(bench),
                "--output",
                str(out),
                "--num-shards",
                "1",
            ]
        )
        == 0
    )
    report = read_report(str(out))
    leaked = report["benchmarks"]["demo_bench"]["leaked_items"]
    assert [(i["item_id"], i["pages"]) for i in leaked] == [("demo-000", 1), ("demo-001", 1)]
    removed = read_rows("removed/*.parquet", out)
    rules = {r["item_id"]: r["match_rule"] for r in removed}
    assert rules == {"demo-000": "ngram", "demo-001": "exact_short"}
    assert [p.name for p in out.glob("pool-*.parquet")] == ["pool-00000-of-00001.parquet"]


def test_bad_rows_are_dead_lettered_not_lost() -> None:
    index = BenchmarkIndex.build([BenchmarkItem("toy", "1", (("q", "one two three four"),))])
    rows = [
        {"doc_id": "a", "url": "u1", "text": "nothing to see here"},
        {"doc_id": "b", "url": "u2", "text": "say one two three four now"},
        {"doc_id": "c", "url": "u3", "text": None},
    ]
    options = PipelineOptions(["--runner=FnApiRunner"])
    with BeamTestPipeline(options=options) as p:
        index_pc = p | "Index" >> beam.Create([index])
        out = p | "Rows" >> beam.Create(rows) | Decontaminate(index_pc)
        assert_that(
            out[KEPT] | "KeptIds" >> beam.Map(lambda r: r["doc_id"]), equal_to(["a"]), label="kept"
        )
        assert_that(
            out[REMOVED]
            | "RemovedIds" >> beam.Map(lambda r: (r["doc_id"], r["item_id"], r["match_rule"])),
            equal_to([("b", "1", "exact_short")]),
            label="removed",
        )
        assert_that(
            out[DEAD_LETTER] | "DeadIds" >> beam.Map(lambda d: (d.url, d.reason)),
            equal_to([("u3", "no_text")]),
            label="dead",
        )


def test_config_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        DecontaminateConfig(output="", ngram=1, min_short_grams=5, num_shards=-1)
    problems = err.value.problems
    assert len(problems) == 6
    assert any("min_short_grams" in p for p in problems)
