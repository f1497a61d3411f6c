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
