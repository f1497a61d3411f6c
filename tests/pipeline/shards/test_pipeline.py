"""End-to-end tests of `mathcorpus shards` (in-process FnApiRunner): a pool folder of real pages,
JSONL/Parquet datasets with bad records, and a code tree from the standard library."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from pipeline.core.config_errors import ConfigError
from pipeline.pool.schema import POOL_SCHEMA, pool_row
from pipeline.shards.config import ShardsConfig
from pipeline.shards.inputs import list_inputs
from pipeline.shards.pipeline import main as shards_main
from pipeline.shards.pipeline import run_shards
from pipeline.shards.text_sources import SourceFields, local_inputs, sample_local_documents
from pipeline.shards.transforms import shard_index
from tests.helpers import STDLIB, real_pages
from tokenizer.cli import main as manifest_main
from tokenizer.manifest import load_manifest, verify_manifest
from tokenizer.shard_format import read_rows

LATEX_DOCS = [
    r"Solve $x^2 - 3x + 2 = 0$: the roots are $x = 1$ and $x = 2$.",
    "Théorème 1. Pour tout $n \\geq 1$, $$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}.$$\n\tFin.  ",
    "设 $a_n = 2^n$，则 $\\sum_{i=0}^{n-1} a_i = 2^n - 1$。",
]


def pool_texts() -> dict[str, str]:
    """doc_id -> text: real pages (the first 3,000 characters of 40 of them) and LaTeX."""
    texts = {f"{i:016x}": text for i, text in enumerate(LATEX_DOCS)}
    for i, (_, page) in enumerate(real_pages()[:40]):
        texts[f"{1000 + i:016x}"] = page[:3_000]
    return texts


def write_pool(folder: Path, texts: dict[str, str]) -> Path:
    """A small pool folder (two files) in the pool format, plus one row with empty text."""
    folder.mkdir(parents=True)
    rows = [
        pool_row(
            doc_id=doc_id,
            url=f"https://math.example/{doc_id}",
            domain="math.example",
            warc_file="crawl/x.warc.gz",
            warc_offset=i,
            fetch_time=datetime(2024, 3, 1, tzinfo=UTC),
            language="en",
            language_score=0.9,
            text=text,
            math_formats=("tex_delimiters",),
            n_math=1,
            encoding="utf-8",
            extractor="resiliparse",
            extractor_version="test",
        )
        for i, (doc_id, text) in enumerate([*texts.items(), ("ffffffffffffffff", "   ")])
    ]
    half = len(rows) // 2
    for n, part in enumerate((rows[:half], rows[half:])):
        table = pa.Table.from_pylist(part, schema=POOL_SCHEMA)
        pq.write_table(table, folder / f"pool-{n:05d}-of-00002.parquet", compression="zstd")
    return folder


def all_rows(folder: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(folder.glob("shard-*.parquet")):
        rows.extend(read_rows(str(path)))
    return rows


def dead_letters(folder: Path) -> list[dict]:
    lines: list[dict] = []
    for path in sorted((folder / "dead_letter").glob("*.jsonl")):
        lines.extend(json.loads(x) for x in path.read_text().splitlines() if x.strip())
    return lines


def assert_balanced(stats: dict, folder: Path) -> None:
    assert stats["all_balanced"], json.dumps(stats["stages"], indent=1)
    names = list(stats["stages"])
    for before, after in itertools.pairwise(names[1:]):
        assert stats["stages"][before]["kept"] == stats["stages"][after]["in"], (before, after)
    total_dead = sum(sum(s["dead_lettered"].values()) for s in stats["stages"].values())
    assert len(dead_letters(folder)) == total_dead
    assert stats["documents_written"] == stats["stages"]["write"]["kept"] == len(all_rows(folder))


@pytest.fixture(scope="module")
def math_run(tokenizer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    base = tmp_path_factory.mktemp("math")
    texts = pool_texts()
    pool = write_pool(base / "pool", texts)
    config = ShardsConfig(
        output=str(base / "shards"),
        inputs=(str(pool),),
        source="openwebmath",
        domain="math",
        tokenizer=str(tokenizer_path),
        num_shards=3,
        row_group_tokens=2_000,
    )
    return config, run_shards(config), texts


def test_pool_to_shards_accounts_for_every_document(math_run: tuple) -> None:
    config, stats, texts = math_run
    out = Path(config.output)
    assert_balanced(stats, out)
    assert stats["stages"]["files"]["kept"] == 2
    assert stats["stages"]["read"]["in"] == len(texts) + 1
    assert stats["stages"]["read"]["dropped"] == {"empty_text": 1}
    assert stats["documents_written"] == len(texts)
    # manifest.json is the run's last file: written after stats.json.
    assert (out / "manifest.json").stat().st_mtime_ns >= (out / "stats.json").stat().st_mtime_ns


def test_shards_decode_to_the_pool_text(math_run: tuple, tokenizer: Tokenizer) -> None:
    config, _, texts = math_run
    rows = all_rows(Path(config.output))
    assert {r["doc_id"] for r in rows} == set(texts)
    for row in rows:
        assert tokenizer.decode(row["tokens"]) == texts[row["doc_id"]]
        assert row["n_tokens"] == len(row["tokens"])
        assert (row["source"], row["domain"], row["host"]) == (
            "openwebmath",
            "math",
            "math.example",
        )
        assert row["url"] == f"https://math.example/{row['doc_id']}" and row["language"] == "en"
        assert row["path"] is None


def test_shard_assignment_and_order_are_by_doc_id(math_run: tuple) -> None:
    config, _, _ = math_run
    out = Path(config.output)
    files = sorted(out.glob("shard-*.parquet"))
    assert [f.name for f in files] == [f"shard-{i:05d}-of-00003.parquet" for i in range(3)]
    for index, path in enumerate(files):
        ids = [r["doc_id"] for r in read_rows(str(path))]
        assert ids == sorted(ids)
        assert all(shard_index(doc_id, 3) == index for doc_id in ids)


def test_manifest_verifies_and_counts_match(math_run: tuple) -> None:
    config, stats, _ = math_run
    manifest = load_manifest(config.output)
    assert manifest.totals().tokens == stats["tokens_written"]
    assert manifest.sources == {"openwebmath": "math"}
    assert verify_manifest(config.output).ok
    assert manifest_main(["verify", config.output]) == 0


def test_rerun_writes_byte_identical_shards(math_run: tuple, tmp_path: Path) -> None:
    config, stats, _ = math_run
    # Another folder, and batches of ~2,000 characters instead of one: the same bytes.
    again = dataclasses.replace(config, output=str(tmp_path / "again"), batch_chars=2_000)
    run_shards(again)
    first = {e.path: e.sha256 for e in load_manifest(config.output).shards}
    second = {e.path: e.sha256 for e in load_manifest(again.output).shards}
    assert first == second
    assert (Path(config.output) / "manifest.json").read_bytes() == (
        Path(again.output) / "manifest.json"
    ).read_bytes()
    # The finished folder itself is skipped on a rerun with the same config.
    assert run_shards(config)["elapsed_s"] == stats["elapsed_s"]


def test_number_of_shards_follows_the_token_target(
    math_run: tuple, tokenizer_path: Path, tmp_path: Path
) -> None:
    config, stats, _ = math_run
    target = stats["tokens_written"] // 4 + 1  # -> 4 shards
    auto = dataclasses.replace(
        config, output=str(tmp_path / "auto"), num_shards=0, shard_tokens=target
    )
    auto_stats = run_shards(auto)
    assert auto_stats["shards"] == 4
    assert auto_stats["tokens_written"] == stats["tokens_written"]
    assert verify_manifest(auto.output).ok


def write_bad_datasets(folder: Path) -> dict[str, int]:
    """JSONL (plain and .gz) and Parquet files with good and bad records; returns the expected
    dead-letter counts per reason."""
    folder.mkdir()
    good = [
        {"id": f"arxiv-{i}", "text": t, "url": f"https://arxiv.org/abs/{i}"}
        for i, t in enumerate(LATEX_DOCS)
    ]
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in good]
    lines += [
        b'{"id": "broken", "text": "unterminated',  # bad_json
        b'{"id": "no-text"}',  # missing_text_field
        b'{"id": "number", "text": 42}',  # bad_text_type
        b'{"id": "latin1", "text": "caf\xe9"}',  # undecodable
        b'["not", "an", "object"]',  # not_an_object
        b"",  # blank line: not a record
        b'{"text": "no id field"}',  # missing_id_field
    ]
    (folder / "part-0.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    more = [{"id": "gz-1", "text": "Lemma. $e^{i\\pi} + 1 = 0$."}]
    with gzip.open(folder / "part-1.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in more) + "\n")
    # Two broken .gz files, one record each: cut in half, and with its deflate data garbled.
    one = gzip.compress(json.dumps({"id": "lost", "text": "x " * 5000}).encode() + b"\n")
    (folder / "part-2.jsonl.gz").write_bytes(one[: len(one) // 2])
    garbled = bytearray(one)
    garbled[20:40] = bytes(20)
    (folder / "part-3.jsonl.gz").write_bytes(bytes(garbled))
    return {
        "unreadable_file": 2,
        "bad_json": 1,
        "missing_text_field": 1,
        "bad_text_type": 1,
        "undecodable": 1,
        "not_an_object": 1,
        "missing_id_field": 1,
    }


def test_jsonl_with_bad_records_never_crashes(tokenizer_path: Path, tmp_path: Path) -> None:
    expected = write_bad_datasets(tmp_path / "arxiv")
    config = ShardsConfig(
        output=str(tmp_path / "shards"),
        inputs=(str(tmp_path / "arxiv" / "*.jsonl*"),),
        source="arxiv",
        domain="math",
        tokenizer=str(tokenizer_path),
        id_field="id",
    )
    stats = run_shards(config)
    assert_balanced(stats, Path(config.output))
    assert stats["stages"]["read"]["dead_lettered"] == expected
    assert stats["documents_written"] == len(LATEX_DOCS) + 1
    assert stats["stages"]["files"]["notes"] == {"ended_by_fault": 2}
    reasons = [d["reason"] for d in dead_letters(Path(config.output))]
    assert sorted(reasons) == sorted(r for r, n in expected.items() for _ in range(n))
    for dead in dead_letters(Path(config.output)):
        assert dead["offset"] >= 0
        assert dead["source"].endswith("part-0.jsonl") or dead["reason"] == "unreadable_file"
    rows = {r["doc_id"]: r for r in all_rows(Path(config.output))}
    assert rows["arxiv-0"]["url"] == "https://arxiv.org/abs/0"
    assert rows["arxiv-0"]["host"] == "arxiv.org"


def test_parquet_without_the_text_column_is_dead_lettered(
    tokenizer_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "web"
    data.mkdir()
    pq.write_table(pa.table({"body": ["no text column here"]}), data / "a.parquet")
    pq.write_table(
        pa.table({"text": ["General web text.", None, "More text."], "url": [None, None, "x"]}),
        data / "b.parquet",
    )
    config = ShardsConfig(
        output=str(tmp_path / "shards"),
        inputs=(str(data),),
        input_format="parquet",
        source="web",
        domain="text",
        tokenizer=str(tokenizer_path),
    )
    stats = run_shards(config)
    assert_balanced(stats, Path(config.output))
    assert stats["stages"]["files"]["dead_lettered"] == {"missing_text_field": 1}
    assert stats["stages"]["read"]["dead_lettered"] == {"missing_text_field": 1}
    assert stats["documents_written"] == 2


@pytest.fixture(scope="module")
def code_run(tokenizer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Real code: three stdlib folders, plus a folder with a copy of a stdlib file (an exact
    duplicate), an empty module, a binary file and a minified script."""
    for needed in ("json", "re", "test/encoded_modules"):
        if not (STDLIB / needed).is_dir():
            pytest.skip(f"{STDLIB / needed} is absent from this Python")
    base = tmp_path_factory.mktemp("code")
    extra = base / "vendored"
    (extra / "pkg").mkdir(parents=True)
    shutil.copy(STDLIB / "json" / "decoder.py", extra / "pkg" / "decoder_copy.py")
    (extra / "pkg" / "__init__.py").write_text("")
    (extra / "pkg" / "blob.bin").write_bytes(bytes(range(256)))
    (extra / "pkg" / "app.min.js").write_text("var a=1;" * 10)
    (extra / "__pycache__").mkdir()
    (extra / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\x00" * 16)
    inputs = tuple(str(STDLIB / d) for d in ("json", "re", "test/encoded_modules"))
    config = ShardsConfig(
        output=str(base / "shards"),
        inputs=(*inputs, str(extra)),
        source="stdlib",
        domain="code",
        tokenizer=str(tokenizer_path),
    )
    return config, run_shards(config)


def test_code_tree_filters_dedups_and_dead_letters(code_run: tuple, tokenizer: Tokenizer) -> None:
    config, stats = code_run
    out = Path(config.output)
    assert_balanced(stats, out)
    stages = stats["stages"]
    assert stats["excluded_files"] >= 1  # __pycache__
    assert stages["files"]["dropped"]["language_not_allowed"] >= 1  # blob.bin
    assert stages["read"]["dead_lettered"] == {"undecodable": 2}  # Latin-1 and KOI8-R modules
    dropped = stages["code_filter"]["dropped"]
    assert dropped["generated"] >= 1  # re/_casefix.py
    assert dropped["empty"] == 1 and dropped["minified"] == 1
    assert stages["dedup"]["dropped"] == {"duplicate_content": 1}
    rows = all_rows(out)
    paths = {r["path"] for r in rows}
    assert {"json/decoder.py", "json/__init__.py", "re/__init__.py"} <= paths
    assert "vendored/pkg/decoder_copy.py" not in paths  # the copy sorts after json/...
    assert "re/_casefix.py" not in paths
    undecodable = {d["extra"]["path"] for d in dead_letters(out)}
    assert undecodable == {
        "encoded_modules/module_iso_8859_1.py",
        "encoded_modules/module_koi8_r.py",
    }
    roots = {"json": STDLIB / "json", "re": STDLIB / "re"}
    roots["encoded_modules"] = STDLIB / "test" / "encoded_modules"
    for row in rows:
        assert row["language"] == "python" and row["domain"] == "code"
        root, _, inside = row["path"].partition("/")
        source = (roots[root] / inside).read_text(encoding="utf-8")
        assert tokenizer.decode(row["tokens"]) == source


def test_math_and_code_manifests_merge(math_run: tuple, code_run: tuple, tmp_path: Path) -> None:
    out = tmp_path / "mixture"
    assert (
        manifest_main(["merge", math_run[0].output, code_run[0].output, "--output", str(out)]) == 0
    )
    merged = load_manifest(str(out))
    assert merged.sources == {"openwebmath": "math", "stdlib": "code"}
    by_domain = merged.totals_by("domain")
    assert by_domain["math"].tokens == math_run[1]["tokens_written"]
    assert by_domain["code"].tokens == code_run[1]["tokens_written"]
    assert verify_manifest(str(out)).ok


def test_config_problems_stop_before_launch(tokenizer_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ShardsConfig(
            output="", inputs=(), source="bad name", domain="poetry", tokenizer="", num_shards=-1
        )
    assert "6 problem(s)" in str(info.value)
    tree_as_math = ShardsConfig(
        output=str(tmp_path / "o"),
        inputs=(str(STDLIB / "json"), str(tmp_path / "absent")),
        source="stdlib",
        domain="math",
        tokenizer=str(tokenizer_path),
    )
    with pytest.raises(ConfigError) as info:
        list_inputs(tree_as_math)
    assert "--domain code" in str(info.value) and "absent" in str(info.value)
    argv = ["--input", str(STDLIB / "json"), "--source", "s", "--domain", "code"]
    argv += ["--tokenizer", str(tmp_path / "no-tokenizer"), "--output", str(tmp_path / "o2")]
    assert shards_main(argv) == 2


def test_local_inputs_follow_the_pipeline_rules(tmp_path: Path) -> None:
    """The tokenizer-training sampler reads inputs the way `mathcorpus shards` lists them."""
    pool = write_pool(tmp_path / "pool", {"0" * 16: "Some $x$."})
    assert {fmt for _, _, fmt in local_inputs(str(pool))} == {"pool"}
    data = tmp_path / "data"
    write_bad_datasets(data)
    assert {fmt for _, _, fmt in local_inputs(str(data))} == {"jsonl"}
    tree = local_inputs(str(STDLIB / "json"))
    assert {fmt for _, _, fmt in tree} == {"tree"}
    assert "json/decoder.py" in {relative for _, relative, _ in tree}
    docs = list(
        sample_local_documents(
            str(data), fields=SourceFields(id_field="id"), max_chars=10**6, seed=0
        )
    )
    assert sorted(d.doc_id for d in docs) == ["arxiv-0", "arxiv-1", "arxiv-2", "gz-1"]
