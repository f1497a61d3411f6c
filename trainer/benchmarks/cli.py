"""`mathcorpus eval`: score a checkpoint on the math and code benchmarks, offline.

    mathcorpus eval --checkpoint runs/demo/train/one_stage --tokenizer runs/demo/tokenizer \
        --benchmarks gsm8k math mmlu_stem --limit 50 --output runs/demo/eval

The benchmark files are read from --benchmark-root, else from $MATHCORPUS_BENCHMARKS (one of
the two is required: the files are never copied into the repository nor downloaded).
Outputs and the JSON schema: docs/eval.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from trainer.benchmarks.runner import (
    ALL_BENCHMARKS,
    BENCHMARK_ROOT_ENV,
    DEFAULT_BENCHMARKS,
    EvalConfig,
    evaluate,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mathcorpus eval", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run folder, step folder or HF folder")
    parser.add_argument("--output", required=True, help="folder for results.json/.csv, items/")
    parser.add_argument(
        "--benchmarks",
        nargs="+",
        default=list(DEFAULT_BENCHMARKS),
        metavar="NAME",
        help=f"any of {', '.join(ALL_BENCHMARKS)}, or `all` "
        f"(default: {' '.join(DEFAULT_BENCHMARKS)})",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N items per benchmark")
    parser.add_argument(
        "--benchmark-root",
        default=os.environ.get(BENCHMARK_ROOT_ENV),
        help=f"folder of the benchmark files (default: ${BENCHMARK_ROOT_ENV})",
    )
    parser.add_argument("--tokenizer", default=None, help="tokenizer.json (file or folder)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--dtype", default="auto", help="float32, bfloat16, float16 or auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.benchmark_root is None:
        print(
            f"mathcorpus eval: give --benchmark-root or set {BENCHMARK_ROOT_ENV} (the folder "
            "holding gsm8k/test.jsonl, math_hendrycks/test.jsonl, ...)",
            file=sys.stderr,
        )
        return 2
    names = ALL_BENCHMARKS if args.benchmarks == ["all"] else tuple(args.benchmarks)
    try:
        config = EvalConfig(
            checkpoint=args.checkpoint,
            output=args.output,
            benchmark_root=args.benchmark_root,
            benchmarks=names,
            limit=args.limit,
            tokenizer=args.tokenizer,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
        )
    except ValueError as exc:
        print(f"mathcorpus eval: {exc}", file=sys.stderr)
        return 2
    document = evaluate(config)
    summary = {
        name: {k: row.get(k) for k in ("n", "accuracy", "acc_norm", "gold_nll", "status")}
        for name, row in document["benchmarks"].items()
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
