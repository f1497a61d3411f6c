"""`mathcorpus train --config FILE [key.sub=value ...]` (also `python -m trainer`).

    mathcorpus train --config run.toml output_dir=runs/x data.manifests='["runs/shards/math"]'
    torchrun --nproc_per_node 8 -m trainer --config run.toml train.steps=2000

Overrides are TOML values and win over the file; a config problem lists every problem and stops
the run before it starts (exit code 2). Config and overrides: docs/trainer.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from trainer.config_loader import load_train_config
from trainer.shard_source import DataError
from trainer.train_config import TrainConfigError


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathcorpus train",
        description="Train the Llama-style model on manifest shards (code/math mixture).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--config", required=True, help="TOML, YAML or JSON train config")
    parser.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="changes to the config file"
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    return parser


def train_main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = load_train_config(args.config, args.overrides)
    except TrainConfigError as exc:
        print(f"mathcorpus train: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        import json

        from trainer.config_loader import config_to_dict

        print(json.dumps(config_to_dict(config), indent=2))
        return 0
    from trainer.training_loop import train  # torch is imported only when a run starts

    try:
        train(config)
    except (TrainConfigError, DataError) as exc:
        print(f"mathcorpus train: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(train_main())


def experiment_main(argv: Sequence[str] | None = None) -> int:
    """`mathcorpus experiment FILE --output DIR --manifest M ... [key=value ...]`: every run of
    an experiment file (trainer/experiments/), then comparison.json; with --benchmark-root,
    every arm is also scored on benchmarks after each of its stages."""
    from trainer.benchmarks.runner import BENCHMARK_ROOT_ENV, DEFAULT_BENCHMARKS

    parser = argparse.ArgumentParser(
        prog="mathcorpus experiment", description=experiment_main.__doc__
    )
    parser.add_argument("file", help="experiment TOML (e.g. trainer/experiments/*.toml)")
    parser.add_argument("--output", required=True, help="folder: one sub-folder per run")
    parser.add_argument("--manifest", action="append", default=[], help="shard manifests")
    parser.add_argument(
        "--benchmark-root", help=f"benchmark files (or ${BENCHMARK_ROOT_ENV}); none: no benchmarks"
    )
    parser.add_argument("--benchmarks", nargs="+", default=list(DEFAULT_BENCHMARKS))
    parser.add_argument("--limit", type=int, help="only the first N items of each benchmark")
    parser.add_argument("--tokenizer", help="tokenizer.json of the shards")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="for every run")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    import json
    import os

    from trainer.experiment import ArmEvaluation, run_experiment

    root = args.benchmark_root or os.environ.get(BENCHMARK_ROOT_ENV)
    benchmarks = None
    if root:
        benchmarks = ArmEvaluation(root, tuple(args.benchmarks), args.limit, args.tokenizer)
    try:
        comparison = run_experiment(
            args.file, args.output, args.manifest, args.overrides, benchmarks
        )
    except (TrainConfigError, DataError) as exc:
        print(f"mathcorpus experiment: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(comparison, indent=2)[:4000])
    return 0
