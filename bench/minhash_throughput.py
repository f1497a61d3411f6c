"""MinHash signature throughput: docs/s/core, ours against datasketch, on real page texts.

Input: the real pages in ../shared/data/html (nothing is copied into the repository), text
extracted with resiliparse's `extract_plain_text` (main content), repeated to `--docs`
documents. Every figure is single-process after a warm-up (Unicode tables built, Numba kernels
compiled), so docs/s here is docs/s per core. The machines are noisy, so ratios are printed
against datasketch's `MinHash.bulk` measured in the same run.

    .venv/bin/python bench/minhash_throughput.py [--docs 5000] [--repeat 3] [--json out.json]

What each line times, for 112 permutations (14 bands x 8 rows) on 5-gram word shingles:

    ours_fast           text -> signature: normalise, shingle, fast hash, permute (default)
    ours_fast_numpy     the same without Numba (what a worker without numba gets)
    ours_from_shingles  fast hash + permute on batches shingled in advance (what the
                        datasketch and rensa lines time)
    ours_sha1           text -> signature equal to datasketch's (sha1 shingle hash)
    datasketch_bulk     MinHash.bulk over shingles prepared in advance (UTF-8 bytes): hashing
                        and permutations only, so the ratio against ours is conservative
    datasketch_update   MinHash.update per shingle, on a copy of one MinHash per document
    rensa               rensa.RMinHash.update per document, when rensa is installed (its own
                        hash: signatures differ from datasketch's)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.dedup.minhash import MinHashConfig, signatures, signatures_of_batch  # noqa: E402
from pipeline.dedup.near import DEFAULT_BATCH_SIZE  # noqa: E402
from pipeline.dedup.shingles import char_tables, shingle_batch  # noqa: E402

SHARED_HTML = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "html"
)


def page_texts() -> list[str]:
    """Main-content plain text of every page under ../shared/data/html."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    texts = []
    for path in sorted(SHARED_HTML.rglob("*")):
        if path.name.endswith(".html.gz"):
            body = gzip.decompress(path.read_bytes())
        elif path.suffix == ".html":
            body = path.read_bytes()
        else:
            continue
        html = bytes_to_str(body, detect_encoding(body))
        texts.append(extract_plain_text(html, main_content=True))
    return texts


def timed(fn: Callable[[], int], repeat: int) -> float:
    """Best docs/s over `repeat` runs of fn (fn returns the number of documents it did)."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def in_batches(texts: list[str], config: MinHashConfig, backend: str | None = None) -> int:
    for start in range(0, len(texts), DEFAULT_BATCH_SIZE):
        signatures(texts[start : start + DEFAULT_BATCH_SIZE], config, backend)
    return len(texts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000, help="documents per timed run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if not SHARED_HTML.is_dir():
        print(f"skipped: {SHARED_HTML} is absent (real pages are needed)")
        return 0

    from datasketch import MinHash

    pages = [t for t in page_texts() if t.strip()]
    docs = (pages * (args.docs // len(pages) + 1))[: args.docs]
    # The slow baselines run on a slice (update: ~300 docs/s) so the bench stays short.
    few = docs[: max(len(docs) // 10, len(pages))]
    fast, exact = MinHashConfig(), MinHashConfig(hash_kind="sha1")
    perms, seed = fast.num_perm, fast.seed
    words = sum(len(t.split()) for t in docs) / len(docs)

    char_tables()
    in_batches(docs[:64], fast)
    in_batches(docs[:64], fast, "numpy")
    batch = shingle_batch(docs, fast.shingle, fast.n)
    shingled = [[s.encode("utf-8") for s in batch.shingle_strings(d)] for d in range(len(docs))]
    shingled_few = shingled[: len(few)]
    template = MinHash(num_perm=perms, seed=seed)
    batches = [
        shingle_batch(docs[i : i + DEFAULT_BATCH_SIZE], fast.shingle, fast.n)
        for i in range(0, len(docs), DEFAULT_BATCH_SIZE)
    ]

    def from_shingles() -> int:
        for b in batches:
            signatures_of_batch(b, fast)
        return len(docs)

    def datasketch_bulk() -> int:
        MinHash.bulk(shingled, num_perm=perms, seed=seed)
        return len(shingled)

    def datasketch_update() -> int:
        for shingles in shingled_few:
            m = template.copy()
            for s in shingles:
                m.update(s)
        return len(shingled_few)

    figures: dict[str, float] = {
        "ours_fast": timed(lambda: in_batches(docs, fast), args.repeat),
        "ours_fast_numpy": timed(lambda: in_batches(few, fast, "numpy"), args.repeat),
        "ours_from_shingles": timed(from_shingles, args.repeat),
        "ours_sha1": timed(lambda: in_batches(few, exact), args.repeat),
        "datasketch_bulk": timed(datasketch_bulk, args.repeat),
        "datasketch_update": timed(datasketch_update, args.repeat),
    }
    try:
        import rensa
    except ImportError:
        rensa = None
    if rensa is not None:
        as_str = [s.decode("utf-8") for s in shingled[0]]  # warm-up
        rensa.RMinHash(num_perm=perms, seed=seed).update(as_str)
        strings = [[s.decode("utf-8") for s in shingles] for shingles in shingled]

        def rensa_update() -> int:
            for shingles in strings:
                rensa.RMinHash(num_perm=perms, seed=seed).update(shingles)
            return len(strings)

        figures["rensa"] = timed(rensa_update, args.repeat)

    base = figures["datasketch_bulk"]
    print(
        f"MinHash signatures, {perms} perms, word 5-grams, {len(docs)} real page texts "
        f"({len(pages)} distinct, {words:.0f} words each on average), single process"
    )
    print(f"{'path':<22} {'docs/s/core':>12} {'x datasketch bulk':>18}")
    for name, value in figures.items():
        print(f"{name:<22} {value:>12.0f} {value / base:>18.2f}")
    target = figures["ours_fast"]
    verdict = "met" if target >= 5000 else "NOT met"
    print(f"\ndefault path: {target:.0f} docs/s/core (target 5000: {verdict})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
