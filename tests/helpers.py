"""Helpers shared by the tests: where the real third-party data lives (never copied into the
repository), a tiny tokenizer trained on real text, token shards with manifests, seed pages.

Test modules and conftest files import from here; no test module imports another.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import random
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from tokenizer.bpe_training import BpeTrainingConfig, train_bpe
from tokenizer.loading import SpecialToken, TokenizerInfo, tokenizer_info
from tokenizer.manifest import ShardEntry, build_manifest, write_manifest
from tokenizer.shard_format import ShardMeta, TokenizedDoc, shard_file_name, write_shard

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the project folder; MATHCORPUS_SHARED_DATA overrides it.
SHARED_DATA = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def require_shared(*parts: str) -> Path:
    """Return a path under the shared data folder, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not available: {path} is absent (../shared/data)")
    return path


# --- a tiny tokenizer trained on real text (seconds, not minutes) ----------------------------
# Sample: the standard library's `json` and `email` packages (real code) and the first
# PAGE_CHARS characters of the real math pages (none when the shared data is absent).

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TINY_VOCAB = 1500
# Characters of each page used for training and for round-trip tests: enough of every page's
# markup and text, while the whole set encodes in about a second.
PAGE_CHARS = 20_000


def read_page(path: Path) -> str:
    """A real page's HTML as text (UTF-8, undecodable bytes replaced; .html.gz unpacked)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def real_pages(label: str | None = None) -> list[tuple[str, str]]:
    """(relative path, text) of the real pages, optionally only those labelled `label`."""
    labels = SHARED_DATA / "html" / "labels.csv"
    if not labels.exists():
        return []
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        (row["filename"], read_page(SHARED_DATA / row["filename"]))
        for row in rows
        if label is None or row["label"] == label
    ]


def training_texts() -> list[str]:
    code = [p.read_text(encoding="utf-8") for p in sorted((STDLIB / "json").glob("*.py"))]
    code += [p.read_text(encoding="utf-8") for p in sorted((STDLIB / "email").glob("*.py"))]
    pages = [text[:PAGE_CHARS] for _, text in real_pages("math")]
    return code + pages


def write_tiny_tokenizer(folder: Path, vocab_size: int = TINY_VOCAB) -> Path:
    """Train and save a tiny tokenizer; returns the tokenizer.json path."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe(training_texts(), BpeTrainingConfig(vocab_size=vocab_size))
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path


# --- shards and manifests, written with the tokenizer package's writers (no Beam) ------------
# Random-token runs for the data mechanics; real text (stdlib code, GSM8K math) tokenized with
# the tiny tokenizer for the training tests.


def random_info(vocab: int = 1000, fingerprint: str = "ab" * 32) -> TokenizerInfo:
    return TokenizerInfo(
        fingerprint=fingerprint,
        vocab_size=vocab,
        token_dtype="uint16",
        special_tokens={
            "bos": SpecialToken("<|bos|>", 0),
            "eos": SpecialToken("<|eos|>", 1),
            "pad": SpecialToken("<|pad|>", 2),
        },
    )


def write_run(
    folder: Path,
    info: TokenizerInfo,
    source: str,
    domain: str,
    docs: Sequence[TokenizedDoc],
    num_shards: int,
    row_group_tokens: int = 4096,
) -> Path:
    """Shards (document -> shard by blake2b-64(doc_id) mod N, as `mathcorpus shards` does)
    and manifest.json in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = ShardMeta(source, domain, info.fingerprint, info.vocab_size, info.token_dtype)
    groups: list[list[TokenizedDoc]] = [[] for _ in range(num_shards)]
    for doc in docs:
        digest = hashlib.blake2b(doc.doc_id.encode(), digest_size=8).digest()
        groups[int.from_bytes(digest, "big") % num_shards].append(doc)
    entries = []
    for index, group in enumerate(groups):
        name = shard_file_name(index, num_shards)
        with (folder / name).open("wb") as fh:
            stats = write_shard(fh, group, meta, row_group_tokens=row_group_tokens)
        entries.append(
            ShardEntry(name, stats.rows, stats.tokens, stats.bytes, stats.sha256, source, domain)
        )
    write_manifest(build_manifest(info, entries, str(folder)), str(folder))
    return folder


def random_run(
    folder: Path,
    source: str,
    domain: str,
    n_docs: int,
    num_shards: int,
    seed: int,
    info: TokenizerInfo | None = None,
    max_len: int = 300,
) -> Path:
    """A run of random documents (lengths 1..max_len, ids 3..vocab-1)."""
    info = info or random_info()
    rng = np.random.default_rng(seed)
    docs = [
        TokenizedDoc(
            f"{source}-{i:05d}",
            rng.integers(3, info.vocab_size, size=int(rng.integers(1, max_len + 1))).astype(
                np.uint16
            ),
        )
        for i in range(n_docs)
    ]
    return write_run(folder, info, source, domain, docs, num_shards, row_group_tokens=2048)


def code_texts(max_files: int = 400) -> list[tuple[str, str]]:
    """(path, text) of real Python files of the standard library (sorted, the first ones)."""
    files = sorted(p for p in STDLIB.glob("*.py"))[:max_files]
    out = []
    for path in files:
        try:
            out.append((path.name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return out


def math_texts(max_docs: int = 2000) -> list[tuple[str, str]]:
    """(id, question + answer) of GSM8K test problems (real grade-school math text)."""
    path = require_shared("benchmarks", "gsm8k", "test.jsonl")
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= max_docs:
                break
            row = json.loads(line)
            out.append((f"gsm8k-{i:05d}", f"{row['question']}\n{row['answer']}"))
    return out


def tokenized(
    tokenizer: Tokenizer, texts: Sequence[tuple[str, str]], max_tokens: int | None = None
) -> list[TokenizedDoc]:
    encodings = tokenizer.encode_batch([t for _, t in texts], add_special_tokens=False)
    docs = []
    for (name, _), enc in zip(texts, encodings, strict=True):
        ids = np.asarray(enc.ids[:max_tokens], dtype=np.uint16)
        docs.append(TokenizedDoc(hashlib.blake2b(name.encode(), digest_size=8).hexdigest(), ids))
    return docs


def real_runs(
    root: Path,
    tokenizer: Tokenizer,
    num_shards: int = 2,
    code_files: int = 120,
    math_docs: int = 1200,
    max_doc_tokens: int = 2000,
) -> dict[str, Path]:
    """A math run (GSM8K) and a code run (stdlib), `num_shards` shards each."""
    info = tokenizer_info(tokenizer)
    code = tokenized(tokenizer, code_texts(code_files), max_doc_tokens)
    math = tokenized(tokenizer, math_texts(math_docs), max_doc_tokens)
    return {
        "code": write_run(root / "code", info, "stdlib", "code", code, num_shards),
        "math": write_run(root / "math", info, "gsm8k", "math", math, num_shards),
    }


# --- seed pages for the classifier ----------------------------------------------------------


def seeds(n: int, seed: int) -> tuple[list, list]:
    """`n` generated math seed pages and `n` generated prose pages (SeedDoc lists)."""
    from mathcorpus.sample_pages import TOPICS, prose_paragraph, seed_page_text
    from pipeline.mine.classifier import SeedDoc

    rng = random.Random(seed)
    pos = [SeedDoc(f"p{i}", seed_page_text(rng, 3)) for i in range(n)]
    topics = sorted(TOPICS)
    neg = [
        SeedDoc(
            f"n{i}", " ".join(prose_paragraph(rng, topics[i % len(topics)], 5) for _ in range(3))
        )
        for i in range(n)
    ]
    return pos, neg


# --- Beam transforms tested on their own ------------------------------------------------------

# Options of a TestPipeline: the in-process FnApiRunner (plain DirectRunner would first try to
# download Prism, which these machines cannot reach).
BEAM_TEST_ARGS = ("--runner=FnApiRunner",)


def make_pool_row(
    doc_id: str,
    text: str,
    url: str | None = None,
    domain: str = "pages.example",
    offset: int = 0,
    warc_file: str = "test.warc.gz",
) -> dict:
    """A pool-format row (pipeline/pool/schema.py) with fixed lineage around `text`."""
    from datetime import UTC, datetime

    from pipeline.pool.schema import pool_row

    return pool_row(
        doc_id=doc_id,
        url=url or f"https://{domain}/{doc_id}",
        domain=domain,
        warc_file=warc_file,
        warc_offset=offset,
        fetch_time=datetime(2024, 3, 1, tzinfo=UTC),
        language="en",
        language_score=0.9,
        text=text,
        math_formats=(),
        n_math=0,
        encoding="utf-8",
        extractor="resiliparse",
        extractor_version="test",
    )


# --- an S3 store on 127.0.0.1: moto's standalone server (the `moto_s3` fixture starts it) ----

MOTO_REGION = "us-east-1"
# moto accepts any credentials; real-looking names keep boto3 and pyarrow from looking further.
MOTO_KEY_ID = "testing"
MOTO_SECRET = "testing"


class MotoS3:
    """A bucket on a moto server: s3:// URLs, the Beam args that reach it, and boto3 to put
    inputs in and take outputs out (the pipelines themselves only see the URLs and args)."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        import boto3

        self.endpoint = endpoint
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=MOTO_REGION,
            aws_access_key_id=MOTO_KEY_ID,
            aws_secret_access_key=MOTO_SECRET,
        )

    @property
    def beam_args(self) -> list[str]:
        """Beam's S3Options for this server (every `mathcorpus <stage>` takes them)."""
        return [
            f"--s3_endpoint_url={self.endpoint}",
            f"--s3_access_key_id={MOTO_KEY_ID}",
            f"--s3_secret_access_key={MOTO_SECRET}",
            f"--s3_region_name={MOTO_REGION}",
        ]

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def upload(self, path: Path | str, key: str) -> str:
        """Put a local file at `key`; its s3:// URL."""
        self.client.upload_file(str(path), self.bucket, key)
        return self.url(key)

    def keys(self, prefix: str) -> dict[str, int]:
        """Key -> size of every object under `prefix`."""
        found: dict[str, int] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            found.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
        return found

    def download(self, prefix: str, dest: Path) -> Path:
        """Copy every object under `prefix/` into `dest` (same relative layout); `dest`."""
        prefix = prefix.rstrip("/") + "/"
        for key in self.keys(prefix):
            target = dest / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.bucket, key, str(target))
        return dest
