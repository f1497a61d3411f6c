"""The shard format: schema, order, determinism, row groups, reading back, uint32 ids."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from tests.helpers import STDLIB
from tokenizer.shard_format import (
    ShardFormatError,
    ShardMeta,
    ShardReader,
    TokenizedDoc,
    count_shard,
    read_rows,
    shard_file_name,
    write_shard,
)

META = ShardMeta("stdlib", "code", "ab" * 32, 1500, "uint16")


def code_docs(tokenizer: Tokenizer) -> list[TokenizedDoc]:
    paths = sorted((STDLIB / "json").glob("*.py")) + sorted((STDLIB / "tomllib").glob("*.py"))
    texts = [p.read_text(encoding="utf-8") for p in paths]
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    return [
        TokenizedDoc(
            doc_id=hashlib.blake2b(text.encode(), digest_size=8).hexdigest(),
            tokens=np.asarray(enc.ids, dtype=np.uint16),
            path=str(path.relative_to(STDLIB)),
            language="python",
        )
        for path, text, enc in zip(paths, texts, encodings, strict=True)
    ]


def write(path: Path, docs: list[TokenizedDoc], meta: ShardMeta = META, **kwargs: int) -> str:
    with path.open("wb") as fh:
        stats = write_shard(fh, docs, meta, **kwargs)
    assert stats.bytes == path.stat().st_size
    assert stats.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    return stats.sha256


def test_rows_sorted_and_tokens_decode_to_the_source(
    tiny_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    docs = code_docs(tiny_tokenizer)
    path = tmp_path / shard_file_name(0, 1)
    write(path, docs)
    rows = read_rows(str(path))
    assert [r["doc_id"] for r in rows] == sorted(d.doc_id for d in docs)
    for row in rows:
        assert row["n_tokens"] == len(row["tokens"])
        assert (row["source"], row["domain"], row["language"]) == ("stdlib", "code", "python")
        assert row["url"] is None and row["host"] is None
        source = (STDLIB / row["path"]).read_text(encoding="utf-8")
        assert tiny_tokenizer.decode(row["tokens"]) == source
    schema = pq.read_schema(path)
    assert schema.field("tokens").type.value_type == pa.uint16()
    assert schema.metadata[b"mathcorpus.tokenizer_fingerprint"] == b"ab" * 32


def test_same_documents_in_any_order_give_identical_bytes(
    tiny_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    docs = code_docs(tiny_tokenizer)
    first = write(tmp_path / "a.parquet", docs)
    second = write(tmp_path / "b.parquet", list(reversed(docs)))
    assert first == second


def test_row_groups_hold_about_the_target_tokens(tiny_tokenizer: Tokenizer, tmp_path: Path) -> None:
    docs = code_docs(tiny_tokenizer)
    path = tmp_path / "s.parquet"
    write(path, docs, row_group_tokens=5_000)
    total = sum(d.n_tokens for d in docs)
    with ShardReader(str(path)) as reader:
        assert reader.num_row_groups >= total // (5_000 + max(d.n_tokens for d in docs))
        by_id = {d.doc_id: d for d in docs}
        seen = 0
        for batch in reader.iter_batches():
            for i, doc_id in enumerate(batch.doc_ids):
                assert np.array_equal(batch.tokens(i), by_id[doc_id].tokens)
                seen += 1
            assert batch.values.dtype == np.uint16
        assert seen == len(docs) == reader.num_rows
    counted = count_shard(str(path))
    assert (counted.rows, counted.tokens, counted.n_tokens_mismatches) == (len(docs), total, 0)
    assert counted.max_token_id < 1500


def test_empty_shard_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    write(path, [])
    counted = count_shard(str(path))
    assert (counted.rows, counted.tokens, counted.max_token_id) == (0, 0, -1)


def test_uint32_ids(tmp_path: Path) -> None:
    meta = ShardMeta("big", "text", "cd" * 32, 100_000, "uint32")
    docs = [TokenizedDoc("b", np.array([99_999, 0, 70_000], dtype=np.uint32), url="https://x/")]
    path = tmp_path / "big.parquet"
    write(path, docs, meta)
    assert read_rows(str(path))[0]["tokens"] == [99_999, 0, 70_000]
    assert count_shard(str(path)).max_token_id == 99_999
    with pytest.raises(ValueError, match="does not fit uint16"):
        write(
            tmp_path / "bad.parquet", docs, ShardMeta("big", "text", "cd" * 32, 100_000, "uint16")
        )


def test_a_parquet_file_that_is_not_a_shard_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(ShardFormatError, match="not a mathcorpus shard"):
        ShardReader(str(path))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ShardFormatError, match="not a readable Parquet file"):
        ShardReader(str(tmp_path / "junk.parquet"))
