"""The mining stage's commands: `mathcorpus classifier train` and `mathcorpus mine`.

    mathcorpus classifier train --positives seed/positives.jsonl --negatives runs/pool \
        --output runs/classifier
    mathcorpus mine --pool runs/pool --positives seed/positives.jsonl --workdir runs/mine \
        --budget-tokens 2000000 [--pause-for-annotation] [Beam options]

Exit status: 0 done, 2 bad config or input (the message says what to change), 3 paused for
annotation (fill in the `decision` column of the named file and rerun the same command).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from pipeline.core.config_flags import add_config_flags
from pipeline.core.stage_cli import stage_main, stage_parser
from pipeline.mine.classifier import train_classifier
from pipeline.mine.config import ClassifierTrainConfig, MiningConfig
from pipeline.mine.loop import PAUSED, run_mining, summary_table
from pipeline.mine.seed_files import SeedReader

EXIT_PAUSED = 3


def train(config: ClassifierTrainConfig, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Train the classifier on the driver (no Beam); returns the model's metadata."""
    if beam_args:
        raise ValueError(f"unknown options: {' '.join(beam_args)}")
    pos, neg = SeedReader(), SeedReader()
    return train_classifier(
        pos.docs(config.positives, config.fields),
        neg.docs(config.negatives, config.fields),
        config.output,
        config.classifier,
        seed_sources={
            "positives": list(config.positives),
            "negatives": list(config.negatives),
            "bad_positive_records": pos.bad,
            "bad_negative_records": neg.bad,
        },
    )


def classifier_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mathcorpus classifier")
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser(
        "train",
        help="train the fastText math classifier on a seed",
        description="Train the fastText math classifier (defaults: DeepSeekMath section 2.1).",
    )
    add_config_flags(train_parser, ClassifierTrainConfig)
    return parser


def classifier_summary(config: ClassifierTrainConfig, meta: dict[str, Any]) -> str:
    shown = json.dumps({k: meta[k] for k in ("sha256", "seed", "heldout")}, indent=2)
    return f"{shown}\nmodel written to {config.output}"


def classifier_main(argv: Sequence[str] | None = None) -> int:
    """`mathcorpus classifier train ...`."""
    return stage_main(
        "mathcorpus classifier",
        classifier_parser(),
        ClassifierTrainConfig,
        train,
        classifier_summary,
        argv,
        errors=(FileNotFoundError, ValueError),
    )


def build_arg_parser() -> argparse.ArgumentParser:
    return stage_parser(
        "mathcorpus mine",
        MiningConfig,
        "Iterative recall of math pages from a pool (DeepSeekMath section 2.1).",
    )


def mine_summary(config: MiningConfig, result: dict[str, Any]) -> str:
    table = summary_table(result["iterations"])
    if result["status"] == PAUSED:
        where = result["iterations"][-1]["paused_for_annotation"]
        return (
            f"{table}\npaused for annotation: fill in the decision column (accept / reject) "
            f"of {where} and rerun the same command"
        )
    return (
        f"{table}\nstopped: {result['stopped_because']} after iteration "
        f"{result['final_iteration']}; {result['final']['pages']} pages in "
        f"{result['final']['path']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`mathcorpus mine ...`."""
    return stage_main(
        "mathcorpus mine",
        build_arg_parser(),
        MiningConfig,
        run_mining,
        mine_summary,
        argv,
        errors=(FileNotFoundError,),
        exit_status=lambda result: EXIT_PAUSED if result["status"] == PAUSED else 0,
    )
