"""Dedup cost against corpus size: signatures and the whole `mathcorpus dedup`, 10k to 1M docs.

Documents are made from the real pages in ../shared/data/html (nothing copied into the
repository): each document is a window of ~`--words` words of a real page text with 30% of its
words replaced at random (so documents are mostly unique), and 10% of documents get a planted
near copy (1% of words replaced). Each size runs in its own process so that peak memory (max
RSS) is that size's alone.

Printed per size:
    signatures docs/s   text -> MinHash signature, one process (docs/s/core)
    one-process LSH     signatures, band keys, buckets (a sort per band) and union-find in one
                        process with bounded memory: the same clusters as the Beam path
    Beam dedup docs/s   the whole Beam pipeline (read pool, exact, MinHash LSH, connected
                        components, write kept/duplicates/index) on FnApiRunner, one worker,
                        up to --beam-max docs,
                        because FnApiRunner keeps every stage's output in memory (~25 KB per
                        200-word document at 100k docs: 1M docs would need ~25 GB here);
                        a distributed runner spills its shuffle to disk
    peak MiB            max RSS of that process
    s per 1k docs       cost per document: roughly flat means cost grows linearly
and the ratio of our signature rate to datasketch's bulk path, measured in the same run on the
same documents (these machines are noisy: compare ratios, not absolute figures).

    .venv/bin/python bench/dedup_scaling.py [--sizes 10000,100000,1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def base_texts() -> list[str]:
    sys.path.insert(0, str(REPO / "bench"))
    from minhash_throughput import page_texts

    return [t for t in page_texts() if len(t.split()) >= 60]


def make_docs(n: int, words: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pages = [t.split() for t in base_texts()]
    docs: list[tuple[str, str]] = []
    while len(docs) < n:
        page = rng.choice(pages)
        start = rng.randrange(max(1, len(page) - words))
        window = page[start : start + words]
        for i in rng.sample(range(len(window)), int(0.3 * len(window))):
            window[i] = f"v{rng.randrange(10**7)}"
        url = f"https://site{len(docs) % 997}.example/doc/{len(docs)}"
        docs.append((url, " ".join(window)))
        if rng.random() < 0.1 and len(docs) < n:
            copy = list(window)
            for i in rng.sample(range(len(copy)), max(1, len(copy) // 100)):
                copy[i] = f"c{rng.randrange(10**7)}"
            docs.append((url + "/copy", " ".join(copy)))
    return docs


def write_pool(folder: Path, docs: list[tuple[str, str]], rows_per_file: int = 50_000) -> None:
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.pool.schema import POOL_SCHEMA, pool_row
    from pipeline.pool.url_normalize import doc_id

    folder.mkdir(parents=True)
    when = datetime(2024, 1, 1, tzinfo=UTC)
    files = max(1, (len(docs) + rows_per_file - 1) // rows_per_file)
    for k in range(files):
        part = docs[k * rows_per_file : (k + 1) * rows_per_file]
        rows = [
            pool_row(
                doc_id=doc_id(url),
                url=url,
                domain=url.split("/")[2],
                warc_file="bench",
                warc_offset=i,
                fetch_time=when,
                language="en",
                language_score=1.0,
                text=text,
                math_formats=(),
                n_math=0,
                encoding="utf-8",
                extractor="bench",
                extractor_version="0",
            )
            for i, (url, text) in enumerate(part)
        ]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=POOL_SCHEMA),
            folder / f"pool-{k:05d}-of-{files:05d}.parquet",
        )


def clusters_in_one_process(texts: list[str], config) -> int:
    """Pages removed by near-dedup (exact duplicates share every band, so they count too),
    computed with bounded memory: (n x bands) int64 keys, then per band a sort and a union of
    equal neighbours."""
    import numpy as np

    from pipeline.dedup.minhash import text_band_keys

    keys = np.empty((len(texts), config.bands), dtype=np.int64)
    valid = np.empty(len(texts), dtype=bool)
    for i in range(0, len(texts), 256):
        k, ok = text_band_keys(texts[i : i + 256], config)
        keys[i : i + len(k)] = k
        valid[i : i + len(k)] = ok
    parent = np.arange(len(texts))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rows = np.flatnonzero(valid)
    for band in range(config.bands):
        column = keys[rows, band]
        order = np.argsort(column, kind="stable")
        same = np.flatnonzero(column[order][1:] == column[order][:-1])
        for j in same:
            a, b = find(int(rows[order[j]])), find(int(rows[order[j + 1]]))
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = {find(i) for i in range(len(texts))}
    return len(texts) - len(roots)


def run_one_size(n: int, words: int, beam_max: int) -> dict:
    """Runs in a child process: time signatures and the whole dedup for n documents."""
    import logging

    from pipeline.dedup.config import DedupConfig
    from pipeline.dedup.minhash import MinHashConfig, signatures
    from pipeline.dedup.pipeline import run_dedup
    from pipeline.dedup.shingles import char_tables

    logging.disable(logging.WARNING)
    docs = make_docs(n, words, seed=n)
    texts = [t for _, t in docs]
    config = MinHashConfig()
    char_tables()
    signatures(texts[:64], config)  # compile the kernels outside the timing
    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        signatures(texts[i : i + 32], config)
    sig_s = time.perf_counter() - started

    datasketch_rate = None
    if n <= 10_000:
        from datasketch import MinHash

        from pipeline.dedup.shingles import shingles

        sample = texts[:2000]
        prepared = [[s.encode() for s in set(shingles(t))] for t in sample]
        started = time.perf_counter()
        MinHash.bulk(prepared, num_perm=config.num_perm)
        datasketch_rate = len(sample) / (time.perf_counter() - started)

    started = time.perf_counter()
    removed_one = clusters_in_one_process(texts, config)
    one_process_s = time.perf_counter() - started
    beam: dict = {"dedup_docs_per_s": None, "dedup_s": None, "removed": None, "balanced": None}
    if n <= beam_max:
        with tempfile.TemporaryDirectory(prefix="mathcorpus-dedup-bench-") as tmp:
            pool = Path(tmp) / "pool"
            write_pool(pool, docs)
            started = time.perf_counter()
            stats = run_dedup(DedupConfig(input=str(pool), output=str(Path(tmp) / "out")))
            dedup_s = time.perf_counter() - started
        stages = stats["stages"]
        beam = {
            "dedup_docs_per_s": n / dedup_s,
            "dedup_s": dedup_s,
            "removed": stages["near_dedup"]["dropped"].get("near_duplicate", 0)
            + stages["exact_dedup"]["dropped"].get("exact_duplicate", 0),
            "balanced": stats["all_balanced"],
        }
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "docs": n,
        "signature_docs_per_s": n / sig_s,
        "one_process_docs_per_s": n / one_process_s,
        "one_process_removed": removed_one,
        **beam,
        "peak_mib": peak_mib,
        "datasketch_bulk_docs_per_s": datasketch_rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--words", type=int, default=200, help="words per document")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--beam-max",
        type=int,
        default=100_000,
        help="largest size run through Beam's local runner (larger: in-memory algorithm)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one_size(args.child, args.words, args.beam_max)))
        return 0

    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--words",
                str(args.words),
                "--beam-max",
                str(args.beam_max),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        beam_text = (
            f"Beam dedup {result['dedup_docs_per_s']:7,.0f} docs/s ({result['dedup_s']:.1f} s, "
            f"removed {result['removed']:,})"
            if result["dedup_docs_per_s"]
            else "Beam dedup not run (above --beam-max)"
        )
        print(
            f"{n:>9,} docs: signatures {result['signature_docs_per_s']:8,.0f} docs/s, "
            f"one-process LSH {result['one_process_docs_per_s']:8,.0f} docs/s "
            f"(removed {result['one_process_removed']:,}), {beam_text}, "
            f"peak {result['peak_mib']:7,.0f} MiB",
            flush=True,
        )
    base = results[0]
    print("\nscaling (cost per document relative to the smallest size; 1.0 = linear):")
    for r in results:
        parts = [
            f"signatures x{base['signature_docs_per_s'] / r['signature_docs_per_s']:.2f}",
            f"one-process LSH x{base['one_process_docs_per_s'] / r['one_process_docs_per_s']:.2f}",
        ]
        if r["dedup_docs_per_s"] and base["dedup_docs_per_s"]:
            parts.append(f"Beam dedup x{base['dedup_docs_per_s'] / r['dedup_docs_per_s']:.2f}")
        parts.append(f"peak MiB x{r['peak_mib'] / base['peak_mib']:.2f}")
        print(f"{r['docs']:>9,} docs (x{r['docs'] // base['docs']}): " + ", ".join(parts))
    if base["datasketch_bulk_docs_per_s"]:
        ratio = base["signature_docs_per_s"] / base["datasketch_bulk_docs_per_s"]
        print(
            f"\nsignatures vs datasketch MinHash.bulk (same docs, same run): x{ratio:.1f} "
            f"({base['signature_docs_per_s']:,.0f} vs {base['datasketch_bulk_docs_per_s']:,.0f} "
            "docs/s)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
