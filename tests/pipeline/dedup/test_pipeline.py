"""`mathcorpus dedup` end to end: planted clusters from real pages, the MathJax demo pages,
incremental mode, independence from order and worker count, the report, the CLI."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dedup.config import DedupConfig, DedupOptions
from pipeline.dedup.exact import decide_exact_group, normalize_for_exact, text_hash
from pipeline.dedup.minhash import MinHashConfig
from pipeline.dedup.pipeline import main as dedup_main
from pipeline.dedup.pipeline import run_dedup
from pipeline.dedup.report import shingle_jaccard
from pipeline.extract.extractors import extract_page, get_extractor
from pipeline.pool.config import PoolConfig
from pipeline.pool.schema import POOL_SCHEMA
from pipeline.pool.url_normalize import doc_id as url_doc_id
from tests.helpers import make_pool_row, require_shared

MINHASH = MinHashConfig()
# Fractions of words replaced. Each replaced word breaks up to 5 word 5-gram shingles, so the
# true Jaccard is about (1-r)^5 / (2 - (1-r)^5): 0.95, 0.91, 0.82, 0.69, 0.42, 0.2.
EDIT_RATES = (0.005, 0.01, 0.02, 0.04, 0.1, 0.2)


def write_pool(folder: Path, docs: list[tuple[str, str]], files: int = 2) -> Path:
    """A pool folder from (url, text) pairs, split over `files` Parquet files."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        make_pool_row(url_doc_id(url), text, url, url.split("/")[2], i)
        for i, (url, text) in enumerate(docs)
    ]
    for k in range(files):
        part = rows[k::files]
        table = pa.Table.from_pylist(part, schema=POOL_SCHEMA)
        pq.write_table(table, folder / f"pool-{k:05d}-of-{files:05d}.parquet")
    return folder


def read_folder(folder: Path) -> list[dict]:
    rows: list[dict] = []
    for f in sorted(folder.glob("*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def edit(text: str, rate: float, rng: random.Random) -> str:
    """Replace a fraction `rate` of the words by random vocabulary words."""
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * rate)):
        words[i] = f"w{rng.randrange(10**6)}"
    return " ".join(words)


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    html_dir = require_shared("html")
    extractor = get_extractor("resiliparse")
    texts: list[str] = []
    for path in sorted((html_dir / "scrapinghub").glob("*.html.gz"))[:80]:
        html = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        text = extract_page(html, extractor).text
        if len(text.split()) >= 150:
            texts.append(text)
    assert len(texts) >= 40, "too few real pages with 150+ words"
    return texts


@pytest.fixture(scope="module")
def planted(real_texts: list[str], tmp_path_factory: pytest.TempPathFactory):
    """Real page texts, a copy of each at one known edit rate, and transitive chains."""
    rng = random.Random(11)
    docs: list[tuple[str, str]] = []
    truth: list[tuple[str, str, float]] = []  # (original url, copy url, true Jaccard)
    chains: list[list[str]] = []
    for i, text in enumerate(real_texts):
        docs.append((f"https://orig{i}.example/page", text))
        if i < 30:
            rate = EDIT_RATES[i % len(EDIT_RATES)]
            copy = edit(text, rate, rng)
            docs.append((f"https://copy{i}.example/page", copy))
            truth.append(
                (
                    f"https://orig{i}.example/page",
                    f"https://copy{i}.example/page",
                    shingle_jaccard(text, copy, MINHASH),
                )
            )
        elif i < 36:  # chains: each link 1.5% of words edited from the previous one
            chain = [f"https://orig{i}.example/page"]
            current = text
            for step in range(4):
                current = edit(current, 0.015, rng)
                url = f"https://chain{i}-{step}.example/page"
                docs.append((url, current))
                chain.append(url)
            chains.append(chain)
    pool = write_pool(tmp_path_factory.mktemp("planted") / "pool", docs)
    out = pool.parent / "dedup"
    stats = run_dedup(DedupConfig(input=str(pool), output=str(out)))
    return docs, truth, chains, out, stats


def clusters_of(out: Path) -> dict[str, str]:
    """doc_id -> cluster id (kept pages that head a cluster map to themselves)."""
    labels: dict[str, str] = {}
    for d in read_folder(out / "duplicates"):
        labels[d["doc_id"]] = d["cluster_id"]
        labels.setdefault(d["kept_id"], d["cluster_id"])
    return labels


def test_planted_clusters_precision_and_recall(planted) -> None:
    docs, truth, _, out, stats = planted
    assert stats["all_balanced"]
    labels = clusters_of(out)
    tp = fp = fn = 0
    for orig, copy, jaccard in truth:
        a, b = url_doc_id(orig), url_doc_id(copy)
        predicted = a in labels and labels.get(a) == labels.get(b)
        actual = jaccard >= MINHASH.threshold
        tp += predicted and actual
        fp += predicted and not actual
        fn += actual and not predicted
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    print(f"planted pairs: precision {precision:.3f} recall {recall:.3f} (tp {tp} fp {fp} fn {fn})")
    # Against the S-curve of 14 x 8 (threshold 0.72): pairs well above the threshold are
    # caught; pairs far below it are not merged.
    high = [t for t in truth if t[2] >= 0.85]
    low = [t for t in truth if t[2] <= 0.45]
    assert high and low
    for orig, copy, _ in high:
        assert labels.get(url_doc_id(copy)) == labels.get(url_doc_id(orig)) is not None
    for _orig, copy, _ in low:
        assert url_doc_id(copy) not in labels
    assert recall >= 0.8 and precision >= 0.8
    kept = {r["doc_id"] for r in read_folder(out)}
    removed = {d["doc_id"] for d in read_folder(out / "duplicates")}
    assert len(kept) + len(removed) == len(docs) and not kept & removed


def test_transitive_chains_end_in_one_cluster(planted) -> None:
    _, _, chains, out, _ = planted
    labels = clusters_of(out)
    for chain in chains:
        ids = [url_doc_id(u) for u in chain]
        assert len({labels.get(i) for i in ids}) == 1 and labels[ids[0]] is not None
        # The two ends are further apart than neighbours: linked through the chain.
        kept = {r["doc_id"] for r in read_folder(out)}
        assert sum(i in kept for i in ids) == 1


def test_report_names_clusters_and_pairs_near_the_threshold(planted) -> None:
    _, _, _, out, stats = planted
    report = json.loads((out / "dedup_report.json").read_text())
    near = stats["stages"]["near_dedup"]
    assert (
        report["counts"]["near"]["dropped"]["near_duplicate"] == near["dropped"]["near_duplicate"]
    )
    sizes = {s["size"]: s["clusters"] for s in report["cluster_sizes"]["near"]}
    assert sizes.get(5, 0) >= 1  # the chains: original + 4 links
    sample = report["pair_sample"]
    assert sample["pairs"] >= 1
    for pair in sample["closest_to_threshold"]:
        assert 0.0 <= pair["jaccard"] <= 1.0 and pair["kept_id"] != pair["duplicate_id"]
    assert report["components_rounds"], "no connected-components round recorded"


def test_mathjax_demo_near_duplicates_are_caught(tmp_path: Path) -> None:
    demos = require_shared("html/mathjax_demos")
    extractor = get_extractor("resiliparse")
    docs = []
    for path in sorted(demos.glob("*.html")):
        text = extract_page(path.read_text(errors="replace"), extractor).text
        docs.append((f"https://mathjax-demos.example/{path.stem}", text))
    out = tmp_path / "dedup"
    run_dedup(DedupConfig(input=str(write_pool(tmp_path / "pool", docs)), output=str(out)))
    labels = clusters_of(out)

    def same(a: str, b: str) -> bool:
        ia = url_doc_id(f"https://mathjax-demos.example/{a}")
        ib = url_doc_id(f"https://mathjax-demos.example/{b}")
        return ia in labels and labels[ia] == labels.get(ib)

    # The same demo rendered with CommonHTML and with SVG output: one page's text twice.
    assert same("page__mml-chtml", "page__mml-svg")
    assert same("page__tex-chtml", "page__tex-svg")
    # Different demos stay apart.
    assert not same("page__equation-numbers", "euro-braille__index")


def test_exact_duplicates_ignore_case_spacing_and_width() -> None:
    assert normalize_for_exact("  The  ＡＢＣ\tof\nMath ") == "the abc of math"
    assert text_hash("x = 1\n\ny = 2") == text_hash("X = 1 Y = 2")
    assert text_hash("x = 1") != text_hash("x = 2")
    decision = decide_exact_group([("b", 10), ("a", 7), ("c", 10)])
    assert decision.kept_id == "b" and decision.removed == ("a", "c") and decision.cluster_id == "a"
    # A page of a prior pool wins and is never removed.
    prior = decide_exact_group([("b", 10), ("z", 3, True)])
    assert prior.kept_id == "z" and prior.removed == ("b",)


def test_exact_normalisation_equals_the_regex_definition_on_every_space() -> None:
    # str.split() and re's \s agree on every code point (text hashes on disk depend on it).
    import re
    import sys
    import unicodedata

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))]
    assert spaces == [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    text = "a" + "b".join(spaces) + " \u3000end\u2028 " + "".join(spaces)

    def by_regex(t: str) -> str:
        return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", t).casefold()).strip()

    assert normalize_for_exact(text) == by_regex(text)


def test_result_does_not_depend_on_order_or_workers(real_texts, tmp_path: Path) -> None:
    rng = random.Random(5)
    docs = [(f"https://o{i}.example/p", t) for i, t in enumerate(real_texts[:40])]
    docs += [(f"https://c{i}.example/p", edit(t, 0.03, rng)) for i, t in enumerate(real_texts[:15])]
    docs += [(f"https://e{i}.example/p", t.upper()) for i, t in enumerate(real_texts[15:20])]
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    one = tmp_path / "one"
    two = tmp_path / "two"
    run_dedup(DedupConfig(input=str(write_pool(tmp_path / "a", docs, files=1)), output=str(one)))
    run_dedup(
        DedupConfig(input=str(write_pool(tmp_path / "b", shuffled, files=3)), output=str(two)),
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )

    def key(folder: Path) -> list[tuple]:
        return sorted(
            (r["doc_id"], r.get("cluster_id"), r.get("kept_id")) for r in read_folder(folder)
        )

    assert key(one) == key(two)
    assert key(one / "duplicates") == key(two / "duplicates")
    kinds = {d["duplicate_kind"] for d in read_folder(one / "duplicates")}
    assert kinds == {"exact", "near"}


def test_incremental_batch_against_a_saved_band_index(real_texts, tmp_path: Path) -> None:
    rng = random.Random(9)
    batch1 = [(f"https://a{i}.example/p", t) for i, t in enumerate(real_texts[:30])]
    batch2 = [(f"https://b{i}.example/p", edit(t, 0.01, rng)) for i, t in enumerate(real_texts[:8])]
    batch2 += [(f"https://x{i}.example/p", t) for i, t in enumerate(real_texts[8:10])]  # exact
    batch2 += [(f"https://n{i}.example/p", t) for i, t in enumerate(real_texts[30:40])]  # new
    batch2 += [(batch1[0][0], real_texts[45])]  # a URL the old pool already has
    batch2 += [(f"https://m{i}.example/p", edit(real_texts[41], 0.005, rng)) for i in range(2)]
    old = tmp_path / "old"
    run_dedup(DedupConfig(input=str(write_pool(tmp_path / "p1", batch1)), output=str(old)))
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file()}
    new = tmp_path / "new"
    stats = run_dedup(
        DedupConfig(
            input=str(write_pool(tmp_path / "p2", batch2)), output=str(new), against=(str(old),)
        )
    )
    assert {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file()} == before
    assert stats["all_balanced"]
    kept_urls = {r["url"] for r in read_folder(new)}
    expected_new = {f"https://n{i}.example/p" for i in range(10)}
    assert kept_urls - {"https://m0.example/p", "https://m1.example/p"} == expected_new
    assert len(kept_urls & {"https://m0.example/p", "https://m1.example/p"}) == 1
    dups = {d["url"]: d for d in read_folder(new / "duplicates")}
    old_ids = {r["doc_id"] for r in read_folder(old)}
    for i in range(8):
        assert dups[f"https://b{i}.example/p"]["kept_id"] in old_ids
    assert {dups[f"https://x{i}.example/p"]["duplicate_kind"] for i in range(2)} == {"exact"}
    assert dups[batch1[0][0]]["duplicate_kind"] == "url"
    assert stats["stages"]["prior_urls"]["dropped"] == {"url_in_prior_pool": 1}


def test_cli_refuses_an_index_made_with_other_settings(
    real_texts, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    old = tmp_path / "old"
    docs = [(f"https://a{i}.example/p", t) for i, t in enumerate(real_texts[:3])]
    run_dedup(
        DedupConfig(
            input=str(write_pool(tmp_path / "p1", docs)),
            output=str(old),
            options=DedupOptions(minhash=MinHashConfig(num_perm=120, bands=20, rows=6)),
        )
    )
    pool2 = write_pool(tmp_path / "p2", docs[:1])
    code = dedup_main(
        ["--input", str(pool2), "--output", str(tmp_path / "n"), "--against", str(old)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "MinHash settings" in err and "--bands" in err
    assert dedup_main(["--input", str(tmp_path / "none"), "--output", str(tmp_path / "o")]) == 2
    assert "no pool-*.parquet" in capsys.readouterr().err


def test_url_check_alone_against_a_prior_pool(real_texts, tmp_path: Path) -> None:
    old = tmp_path / "old"
    first = [(f"https://a{i}.example/p", t) for i, t in enumerate(real_texts[:4])]
    run_dedup(DedupConfig(input=str(write_pool(tmp_path / "p1", first)), output=str(old)))
    # Same URL with new text, and a copy of an old page under a new URL: with exact and near
    # dedup off only the URL is checked.
    second = [(first[0][0], real_texts[10]), ("https://b.example/p", real_texts[1])]
    off = DedupOptions(exact=False, near=False)
    new = tmp_path / "new"
    stats = run_dedup(
        DedupConfig(
            input=str(write_pool(tmp_path / "p2", second)),
            output=str(new),
            against=(str(old),),
            options=off,
        )
    )
    assert stats["all_balanced"] and list(stats["stages"]) == ["prior_urls"]
    assert [r["url"] for r in read_folder(new)] == ["https://b.example/p"]
    assert [d["duplicate_kind"] for d in read_folder(new / "duplicates")] == ["url"]
    with pytest.raises(ValueError, match="no-dedup"):
        PoolConfig(output="x", inputs=("y",), dedup_options=off)
