"""Shards throughput: tokens/s/core for tokenizing and for tokenize + write, and bytes per token
on disk.

Input: the text of the real pages in ../shared/data/html (extracted with resiliparse; raw HTML
when resiliparse is absent) plus Python standard-library modules (real code), up to
--max-chars characters; nothing is copied into the repository. The tokenizer is trained here
(byte-level BPE, --vocab-size, on the same sample) unless --tokenizer names one.

Every figure is single-process with tokenizers' own thread pool switched off
(TOKENIZERS_PARALLELISM=false), so tokens/s here is tokens/s per core. The machines are noisy,
so figures are printed as ratios against `encode` called one document at a time, measured in
the same run:

    .venv/bin/python bench/shards_throughput.py [--repeat 3] [--json out.json]

The Beam line runs the real `mathcorpus shards` pipeline (FnApiRunner, one process) on the same
documents as a JSONL dataset: reading, tokenizing, the shuffle to shards, sorting and writing.
"""

from __future__ import annotations

import os

# Before tokenizers is imported: one thread, so tokens/s is per core.
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import gzip
import json
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from tokenizer.bpe_training import BpeTrainingConfig, train_bpe  # noqa: E402
from tokenizer.loading import load_tokenizer, tokenizer_info  # noqa: E402
from tokenizer.shard_format import ShardMeta, TokenizedDoc, write_shard  # noqa: E402

SHARED_HTML = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "html"
)
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def page_texts() -> list[str]:
    """Main text of every real page (resiliparse), or the raw HTML without it."""
    try:
        from resiliparse.extract.html2text import extract_plain_text
    except ImportError:
        extract_plain_text = None
    texts = []
    for path in sorted(SHARED_HTML.rglob("*")):
        if path.name.endswith(".html.gz"):
            body = gzip.decompress(path.read_bytes())
        elif path.suffix == ".html":
            body = path.read_bytes()
        else:
            continue
        html = body.decode("utf-8", errors="replace")
        text = extract_plain_text(html, main_content=True) if extract_plain_text else html
        if text.strip():
            texts.append(text)
    return texts


def code_texts(max_chars: int) -> list[str]:
    """Standard-library modules (no tests, no site-packages), in path order, up to max_chars."""
    texts: list[str] = []
    total = 0
    for path in sorted(STDLIB.rglob("*.py")):
        relative = path.relative_to(STDLIB).parts
        if relative[0] in ("test", "site-packages", "idlelib") or "tests" in relative:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return texts


def best_rate(fn: Callable[[], int], repeat: int) -> float:
    """Best units/s over `repeat` runs (fn returns the number of units it processed)."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-chars", type=int, default=8_000_000, help="code characters")
    parser.add_argument("--vocab-size", type=int, default=32_000)
    parser.add_argument("--tokenizer", help="tokenizer.json to use instead of training one")
    parser.add_argument("--batch-chars", type=int, default=1_000_000)
    parser.add_argument("--no-beam", action="store_true", help="skip the Beam pipeline line")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if not SHARED_HTML.is_dir():
        print(f"skipped: {SHARED_HTML} is absent (real pages are needed)")
        return 0

    texts = page_texts() + code_texts(args.max_chars)
    chars = sum(len(t) for t in texts)
    tmp = Path(tempfile.mkdtemp(prefix="mathcorpus-bench-shards-"))
    if args.tokenizer:
        tokenizer = load_tokenizer(args.tokenizer)
        tokenizer_path = args.tokenizer
    else:
        started = time.perf_counter()
        tokenizer = train_bpe(texts, BpeTrainingConfig(vocab_size=args.vocab_size))
        elapsed = time.perf_counter() - started
        print(f"trained vocab {args.vocab_size} on {chars / 1e6:.1f}M chars in {elapsed:.1f}s")
        tokenizer_path = str(tmp / "tokenizer.json")
        tokenizer.save(tokenizer_path)
    info = tokenizer_info(tokenizer)
    dtype = np.dtype(info.token_dtype)
    n_tokens = sum(len(e.ids) for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False))
    batches = _batches(texts, args.batch_chars)
    figures: dict[str, float] = {}

    def one_by_one() -> int:
        for text in texts:
            tokenizer.encode(text, add_special_tokens=False)
        return n_tokens

    def batch_with_offsets() -> int:
        for batch in batches:
            tokenizer.encode_batch(batch, add_special_tokens=False)
        return n_tokens

    def batch_fast() -> int:
        for batch in batches:
            tokenizer.encode_batch_fast(batch, add_special_tokens=False)
        return n_tokens

    docs: list[TokenizedDoc] = []

    def tokenize_to_arrays() -> int:
        docs.clear()
        for batch in batches:
            for enc in tokenizer.encode_batch_fast(batch, add_special_tokens=False):
                docs.append(TokenizedDoc(f"{len(docs):016x}", np.asarray(enc.ids, dtype=dtype)))
        return n_tokens

    meta = ShardMeta("bench", "math", info.fingerprint, info.vocab_size, info.token_dtype)
    shard = tmp / "shard.parquet"
    written: dict[str, int] = {}

    def write_only() -> int:
        with shard.open("wb") as fh:
            stats = write_shard(fh, docs, meta)
        written["bytes"] = stats.bytes
        return n_tokens

    def tokenize_and_write() -> int:
        tokenize_to_arrays()
        return write_only()

    one_by_one()  # warm-up (BPE word cache, page cache)
    figures["baseline_encode_one_by_one"] = best_rate(one_by_one, args.repeat)
    figures["encode_batch"] = best_rate(batch_with_offsets, args.repeat)
    figures["encode_batch_fast"] = best_rate(batch_fast, args.repeat)
    figures["tokenize_to_uint_arrays"] = best_rate(tokenize_to_arrays, args.repeat)
    figures["write_shard_only"] = best_rate(write_only, args.repeat)
    figures["tokenize_and_write"] = best_rate(tokenize_and_write, args.repeat)
    bytes_per_token = written["bytes"] / n_tokens

    if not args.no_beam:
        figures["beam_fnapi_end_to_end"] = _beam_rate(texts, tokenizer_path, tmp)

    base = figures["baseline_encode_one_by_one"]
    print(
        f"shards throughput: {len(texts)} documents, {chars / 1e6:.1f}M chars, "
        f"{n_tokens / 1e6:.2f}M tokens ({chars / n_tokens:.2f} chars/token), vocab "
        f"{info.vocab_size}, single process, one tokenizer thread"
    )
    print(f"{'step':<28} {'tokens/s/core':>14} {'x encode one-by-one':>20}")
    for name, value in figures.items():
        print(f"{name:<28} {value:>14,.0f} {value / base:>20.2f}")
    print(
        f"\nbytes per token on disk: {bytes_per_token:.3f} ({info.token_dtype} raw = "
        f"{dtype.itemsize}; zstd Parquet = {bytes_per_token / dtype.itemsize:.2f}x raw)"
    )
    target = figures["tokenize_and_write"]
    print(
        f"tokenize + write: {target:,.0f} tokens/s/core "
        f"(target 1M: {'met' if target >= 1e6 else 'NOT met'})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({**figures, "bytes_per_token": bytes_per_token}, indent=2) + "\n"
        )
    return 0


def _batches(texts: list[str], batch_chars: int) -> list[list[str]]:
    """Consecutive batches of about `batch_chars` characters, as the pipeline forms them."""
    batches: list[list[str]] = [[]]
    size = 0
    for text in texts:
        batches[-1].append(text)
        size += len(text)
        if size >= batch_chars:
            batches.append([])
            size = 0
    return [b for b in batches if b]


def _beam_rate(texts: list[str], tokenizer_path: str, tmp: Path) -> float:
    """Tokens/s of the whole `mathcorpus shards` pipeline on the documents (FnApiRunner)."""
    import logging

    from pipeline.shards.config import ShardsConfig
    from pipeline.shards.pipeline import run_shards

    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    data = tmp / "docs.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": f"d{i}", "text": text}, ensure_ascii=False) + "\n")
    config = ShardsConfig(
        output=str(tmp / "shards"),
        inputs=(str(data),),
        source="bench",
        domain="math",
        tokenizer=tokenizer_path,
        id_field="id",
    )
    started = time.perf_counter()
    stats = run_shards(config)
    return stats["tokens_written"] / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
