"""Packing throughput: best-fit decreasing with Numba vs the pure-Python reference, one core.

Input: 1M synthetic documents with web-like lengths (lognormal, median 600 tokens, sigma 1, so
the mean is about 990 and ~2.7% exceed L), packed into L = 4096 sequences. Planning (which
chunk of which document goes into which sequence) needs only the lengths and is what the docs/s
figures measure; `materialize` (copying tokens into input_ids/labels/position_ids) is memory
bound and is reported separately in tokens/s on a subsample whose tokens are generated here.
The machines are noisy, so each figure is the best of --repeat runs and the result is printed
as the ratio measured in the same run. Numba is compiled (or loaded from its cache) before any
timing. Single process, single thread: docs/s here is docs/s per core.

    .venv/bin/python bench/packing_throughput.py [--docs 1000000] [--reference-docs 1000000]
        [--seq-len 4096] [--median 600] [--repeat 3] [--json out.json]

--reference-docs runs the pure-Python reference on the first N documents only (its docs/s
hardly depends on N: a sort plus a bisect over at most L rooms per chunk).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainer import packing, packing_reference  # noqa: E402


def lognormal_lengths(n: int, median: float, sigma: float, seed: int) -> np.ndarray:
    """Document lengths in tokens, at least 1."""
    rng = np.random.default_rng(seed)
    return np.maximum(1, np.rint(rng.lognormal(np.log(median), sigma, n))).astype(np.int64)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--reference-docs", type=int, default=1_000_000)
    parser.add_argument("--materialize-docs", type=int, default=50_000)
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--median", type=float, default=600.0)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    seq_len = args.seq_len
    lengths = lognormal_lengths(args.docs, args.median, args.sigma, args.seed)
    offsets = offsets_of(lengths)
    ref_docs = min(args.reference_docs, args.docs)
    ref_offsets = offsets[: ref_docs + 1]
    print(
        f"{args.docs:,} docs, lognormal median {args.median:g} sigma {args.sigma:g}: "
        f"mean {lengths.mean():.0f} tokens, {(lengths > seq_len).mean():.2%} longer than "
        f"L = {seq_len}; {lengths.sum() / 1e9:.2f}B tokens"
    )

    packing.plan_best_fit(offsets[:1000], seq_len)  # compile / load the Numba cache
    packing.plan_concat(offsets[:1000], seq_len)
    numba_s = best_seconds(lambda: packing.plan_best_fit(offsets, seq_len), args.repeat)
    concat_s = best_seconds(lambda: packing.plan_concat(offsets, seq_len), args.repeat)
    ref_s = best_seconds(
        lambda: packing_reference.plan_best_fit(ref_offsets, seq_len), max(1, args.repeat - 2)
    )
    numba_rate = args.docs / numba_s
    ref_rate = ref_docs / ref_s
    subsample = "" if ref_docs == args.docs else f" (first {ref_docs:,} docs)"
    print("\nplanning, docs/s on one core (best of runs):")
    print(f"  best-fit, numba          {numba_rate / 1e6:8.2f} M docs/s")
    print(f"  best-fit, pure Python    {ref_rate / 1e6:8.2f} M docs/s{subsample}")
    print(f"  ratio numba / Python     {numba_rate / ref_rate:8.1f} x")
    print(f"  concat-and-split, numba  {args.docs / concat_s / 1e6:8.2f} M docs/s")

    best = packing.plan_best_fit(offsets, seq_len)
    concat = packing.plan_concat(offsets, seq_len)
    one_per_seq = lengths.sum() / (np.ceil(lengths / seq_len).sum() * seq_len)
    print("\nfill rate = real tokens / (sequences * L); documents cut into pieces:")
    rows = [
        ("best-fit", best.fill_rate, best.n_sequences, best.n_split_docs),
        ("concat-and-split", concat.fill_rate, concat.n_sequences, concat.n_split_docs),
    ]
    for name, fill, n_seqs, cut in rows:
        print(f"  {name:18s} {fill:.4%}  {n_seqs:,} seqs, {cut:,} docs cut")
    print(f"  {'one doc per seq':18s} {one_per_seq:.4%}  (cuts only docs > L, like best-fit)")

    # Materialising: tokens for a subsample, since 1M docs would be ~1B tokens (4 GB as int32).
    m_docs = min(args.materialize_docs, args.docs)
    m_offsets = offsets[: m_docs + 1]
    tokens = np.random.default_rng(args.seed).integers(1, 102400, m_offsets[-1], dtype=np.int32)
    m_plan = packing.plan_best_fit(m_offsets, seq_len)
    packing.materialize(tokens, m_plan, 0)
    fill_s = best_seconds(lambda: packing.materialize(tokens, m_plan, 0), args.repeat)
    e2e_s = best_seconds(lambda: packing.pack_best_fit(tokens, m_offsets, seq_len, 0), args.repeat)
    ref_m_docs = min(m_docs, 5_000)
    ref_m_offsets = m_offsets[: ref_m_docs + 1]
    ref_e2e_s = best_seconds(
        lambda: packing_reference.pack_best_fit(tokens, ref_m_offsets, seq_len, 0), 1
    )
    print(f"\nmaterialize + end to end on {m_docs:,} docs ({m_offsets[-1] / 1e6:.1f}M tokens):")
    print(f"  materialize, numba       {m_offsets[-1] / fill_s / 1e6:8.1f} M tokens/s")
    print(f"  plan + materialize numba  {m_docs / e2e_s / 1e3:8.1f} k docs/s")
    python_rate = ref_m_docs / ref_e2e_s / 1e3
    print(f"  plan + materialize Python {python_rate:8.1f} k docs/s (first {ref_m_docs:,} docs)")

    result = {
        "docs": args.docs,
        "seq_len": seq_len,
        "best_fit_numba_docs_per_s": numba_rate,
        "best_fit_python_docs_per_s": ref_rate,
        "python_docs": ref_docs,
        "ratio": numba_rate / ref_rate,
        "concat_numba_docs_per_s": args.docs / concat_s,
        "fill_rate_best_fit": best.fill_rate,
        "fill_rate_concat": concat.fill_rate,
        "fill_rate_one_doc_per_seq": float(one_per_seq),
        "docs_cut_best_fit": best.n_split_docs,
        "docs_cut_concat": concat.n_split_docs,
        "materialize_tokens_per_s": float(m_offsets[-1] / fill_s),
        "end_to_end_numba_docs_per_s": m_docs / e2e_s,
        "end_to_end_python_docs_per_s": ref_m_docs / ref_e2e_s,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
