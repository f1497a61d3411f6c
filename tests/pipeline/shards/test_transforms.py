"""BuildShards (pipeline/shards/transforms.py): documents -> token shards, exact to the token."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that
from tokenizers import Tokenizer

from pipeline.core.counters import counters_from_beam_result
from pipeline.core.dead_letters import DEAD_LETTER, DeadLetter
from pipeline.shards.config import ShardsConfig
from pipeline.shards.inputs import InputFile, list_inputs
from pipeline.shards.transforms import BuildShards
from tests.helpers import BEAM_TEST_ARGS, STDLIB, math_texts
from tokenizer.loading import TokenizerInfo, tokenizer_info
from tokenizer.shard_format import ShardReader, read_rows, shard_file_name


@pytest.fixture(scope="module")
def info(tokenizer: Tokenizer) -> TokenizerInfo:
    return tokenizer_info(tokenizer)


def token_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False).ids


def shard_of(doc_id: str, num_shards: int) -> int:
    """The documented assignment: blake2b-64 of the doc_id, big-endian, modulo N."""
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def content_id(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def run(
    files: list[InputFile],
    config: ShardsConfig,
    info: TokenizerInfo,
    staging: Path,
    check_entries: Callable[[list[dict]], None] | None = None,
    check_dead: Callable[[list[DeadLetter]], None] | None = None,
) -> dict[str, int]:
    staging.mkdir(parents=True, exist_ok=True)
    with BeamTestPipeline(options=PipelineOptions(BEAM_TEST_ARGS)) as p:
        out = p | beam.Create(files) | BuildShards(config, info, str(staging))
        if check_entries is not None:
            assert_that(out["entries"], check_entries, label="entries")
        if check_dead is not None:
            assert_that(out[DEAD_LETTER], check_dead, label="dead")
    return counters_from_beam_result(p.result)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise BeamAssertException(message)


def jsonl_file(path: Path, lines: list[bytes]) -> InputFile:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return InputFile(str(path), "jsonl", path.name, path.stat().st_size)


def math_config(tmp: Path, tokenizer_path: Path, **kw: Any) -> ShardsConfig:
    return ShardsConfig(
        output=str(tmp / "out"),
        inputs=("unused",),
        source="gsm8k",
        domain="math",
        tokenizer=str(tokenizer_path),
        id_field="id",
        **kw,
    )


@pytest.fixture(scope="module")
def gsm8k_docs() -> list[dict]:
    """Real grade-school math problems with their solutions, as dataset records."""
    return [
        {"id": doc_id, "text": text, "url": f"https://gsm8k.example/test/{i}"}
        for i, (doc_id, text) in enumerate(math_texts(12))
    ]


def test_documents_land_in_their_shard_with_exact_tokens(
    tmp_path: Path,
    tokenizer_path: Path,
    tokenizer: Tokenizer,
    info: TokenizerInfo,
    gsm8k_docs: list[dict],
) -> None:
    n = 3
    lines = [json.dumps(d).encode() for d in gsm8k_docs[:8]]
    lines += [
        b'{"id": "broken", "text": "unterminated',  # row 8: bad_json
        b'{"id": "no-text"}',  # row 9: missing_text_field
        b'{"id": "blank", "text": "   "}',  # row 10: dropped, not dead-lettered
        b'{"text": "Solve $x+1=2$."}',  # row 11: missing_id_field
    ]
    first = jsonl_file(tmp_path / "part-0.jsonl", lines)
    second = jsonl_file(tmp_path / "part-1.jsonl", [json.dumps(d).encode() for d in gsm8k_docs[8:]])
    missing = InputFile(str(tmp_path / "part-2.jsonl"), "jsonl", "part-2.jsonl", 10)
    # Small batches: tokenizing in several encode_batch calls changes nothing.
    config = math_config(tmp_path, tokenizer_path, num_shards=n, batch_chars=1_500)

    expected_docs = {d["id"]: (d, token_ids(tokenizer, d["text"])) for d in gsm8k_docs}
    per_shard: dict[int, list[str]] = {i: [] for i in range(n)}
    for doc_id in expected_docs:
        per_shard[shard_of(doc_id, n)].append(doc_id)
    assert all(per_shard.values()), "each shard should get a document for this test"

    def check_entries(entries: list[dict]) -> None:
        got = sorted((e["path"], e["rows"], e["tokens"], e["source"], e["domain"]) for e in entries)
        want = [
            (
                shard_file_name(i, n),
                len(ids),
                sum(len(expected_docs[d][1]) for d in ids),
                "gsm8k",
                "math",
            )
            for i, ids in sorted(per_shard.items())
        ]
        expect(got == want, f"\n got {got}\nwant {want}")

    def check_dead(letters: list[DeadLetter]) -> None:
        got = sorted((d.stage, d.reason, Path(d.source).name, d.offset) for d in letters)
        want = [
            ("files", "open_failed", "part-2.jsonl", -1),
            ("read", "bad_json", "part-0.jsonl", 8),
            ("read", "missing_id_field", "part-0.jsonl", 11),
            ("read", "missing_text_field", "part-0.jsonl", 9),
        ]
        expect(got == want, f"\n got {got}\nwant {want}")

    counters = run(
        [first, second, missing], config, info, tmp_path / "staging", check_entries, check_dead
    )
    assert counters["read.dropped.empty_text"] == 1
    assert counters["tokenize.kept"] == counters["write.kept"] == len(gsm8k_docs)

    # The shard files: each document once, in its shard, sorted by doc_id, its exact tokens.
    for i, ids in per_shard.items():
        path = tmp_path / "staging" / shard_file_name(i, n)
        rows = read_rows(str(path))
        assert [r["doc_id"] for r in rows] == sorted(ids)
        with ShardReader(str(path)) as reader:
            assert (reader.meta.source, reader.meta.domain) == ("gsm8k", "math")
            assert reader.meta.tokenizer_fingerprint == info.fingerprint
        for row in rows:
            doc, tokens = expected_docs[row["doc_id"]]
            assert row["tokens"] == tokens and row["n_tokens"] == len(tokens)
            assert (row["source"], row["domain"]) == ("gsm8k", "math")
            assert (row["url"], row["host"], row["path"]) == (doc["url"], "gsm8k.example", None)
            assert tokenizer.decode(row["tokens"]) == tokenizer.decode(tokens)


def test_every_shard_file_is_written_even_when_empty(
    tmp_path: Path,
    tokenizer_path: Path,
    tokenizer: Tokenizer,
    info: TokenizerInfo,
    gsm8k_docs: list[dict],
) -> None:
    n = 8
    docs = gsm8k_docs[:2]
    source = jsonl_file(tmp_path / "two.jsonl", [json.dumps(d).encode() for d in docs])
    staging = tmp_path / "staging"
    expected = {i: (0, 0) for i in range(n)}
    for d in docs:
        rows, tokens = expected[shard_of(d["id"], n)]
        expected[shard_of(d["id"], n)] = (rows + 1, tokens + len(token_ids(tokenizer, d["text"])))

    def check_entries(entries: list[dict]) -> None:
        got = sorted((e["path"], e["rows"], e["tokens"]) for e in entries)
        want = [(shard_file_name(i, n), *expected[i]) for i in range(n)]
        expect(got == want, f"\n got {got}\nwant {want}")
        for e in entries:
            data = (staging / e["path"]).read_bytes()
            expect(e["bytes"] == len(data), f"{e['path']}: bytes")
            expect(e["sha256"] == hashlib.sha256(data).hexdigest(), f"{e['path']}: sha256")

    run([source], math_config(tmp_path, tokenizer_path, num_shards=n), info, staging, check_entries)
    assert sorted(p.name for p in staging.iterdir()) == [shard_file_name(i, n) for i in range(n)]


def test_shard_count_follows_the_token_target(
    tmp_path: Path,
    tokenizer_path: Path,
    tokenizer: Tokenizer,
    info: TokenizerInfo,
    gsm8k_docs: list[dict],
) -> None:
    source = jsonl_file(tmp_path / "docs.jsonl", [json.dumps(d).encode() for d in gsm8k_docs])
    total = sum(len(token_ids(tokenizer, d["text"])) for d in gsm8k_docs)
    target = total // 4 + 1
    n = math.ceil(total / target)
    assert n == 4
    config = math_config(tmp_path, tokenizer_path, num_shards=0, shard_tokens=target)

    def check_entries(entries: list[dict]) -> None:
        paths = sorted(e["path"] for e in entries)
        expect(paths == [shard_file_name(i, n) for i in range(n)], str(paths))
        expect(sum(e["tokens"] for e in entries) == total, "tokens")

    run([source], config, info, tmp_path / "staging", check_entries)


def test_no_document_at_all_still_gives_a_complete_set_of_empty_shards(
    tmp_path: Path, tokenizer_path: Path, info: TokenizerInfo
) -> None:
    source = jsonl_file(tmp_path / "bad.jsonl", [b'{"id": "x"}', b'{"id": "y", "text": " "}'])
    for fixed, n in ((0, 1), (3, 3)):
        staging = tmp_path / f"staging-{fixed}"

        def check_entries(entries: list[dict], n: int = n) -> None:
            got = sorted((e["path"], e["rows"], e["tokens"]) for e in entries)
            expect(got == [(shard_file_name(i, n), 0, 0) for i in range(n)], str(got))

        config = math_config(tmp_path, tokenizer_path, num_shards=fixed)
        counters = run([source], config, info, staging, check_entries)
        assert counters["read.dead_letter.missing_text_field"] == 1
        assert counters["read.dropped.empty_text"] == 1
        assert len(list(staging.glob("shard-*.parquet"))) == n


def test_code_tree_is_filtered_deduplicated_and_tokenized(
    tmp_path: Path, tokenizer_path: Path, tokenizer: Tokenizer, info: TokenizerInfo
) -> None:
    """Real standard-library files in a tree, with a copy, a generated file, a text file and
    a file that is not UTF-8."""
    tree = tmp_path / "lib"
    (tree / "json").mkdir(parents=True)
    (tree / "zcopy").mkdir()
    for name in ("decoder.py", "scanner.py"):
        shutil.copy(STDLIB / "json" / name, tree / "json" / name)
    shutil.copy(STDLIB / "json" / "scanner.py", tree / "zcopy" / "scanner.py")
    (tree / "json" / "tables.py").write_text(
        "# This file is automatically generated. Do not edit.\nTABLE = [1, 2, 3]\n"
    )
    (tree / "json" / "NOTES.txt").write_text("Notes about the json package.\n")
    (tree / "json" / "latin1.py").write_bytes(b"# caf\xe9\nx = 1\n")
    config = ShardsConfig(
        output=str(tmp_path / "out"),
        inputs=(str(tree),),
        source="stdlib",
        domain="code",
        tokenizer=str(tokenizer_path),
        num_shards=2,
    )
    files, _ = list_inputs(config)
    kept = {
        f"lib/json/{name}": (STDLIB / "json" / name).read_text(encoding="utf-8")
        for name in ("decoder.py", "scanner.py")
    }

    def check_dead(letters: list[DeadLetter]) -> None:
        got = [(d.stage, d.reason, d.extra.get("path")) for d in letters]
        expect(got == [("read", "undecodable", "lib/json/latin1.py")], str(got))

    staging = tmp_path / "staging"
    counters = run(files, config, info, staging, check_dead=check_dead)
    assert counters["files.dropped.language_not_allowed"] == 1  # NOTES.txt
    assert counters["code_filter.dropped.generated"] == 1  # tables.py
    # zcopy/scanner.py has json/scanner.py's content: the smaller path is kept.
    assert counters["dedup.dropped.duplicate_content"] == 1

    rows = [r for p in sorted(staging.glob("shard-*.parquet")) for r in read_rows(str(p))]
    got = {r["path"]: r for r in rows}
    assert sorted(got) == sorted(kept)
    for path, text in kept.items():
        row = got[path]
        assert row["doc_id"] == content_id(text)
        assert row["tokens"] == token_ids(tokenizer, text)
        assert (row["language"], row["domain"], row["source"]) == ("python", "code", "stdlib")
        assert row["url"] is None
