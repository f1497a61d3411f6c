"""CLIs of the mining stage: `mathcorpus classifier train` and `mathcorpus mine`.

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
import logging
import sys
from collections.abc import Sequence

from pipeline.core.config_errors import ConfigError
from pipeline.core.run_output import OutputConflict
from pipeline.mine.classifier import ClassifierConfig, train_classifier
from pipeline.mine.domain_discovery import (
    DEFAULT_AUTO_ACCEPT,
    DEFAULT_DOMAIN_THRESHOLD,
    DEFAULT_MIN_PREFIX_PAGES,
)
from pipeline.mine.loop import PAUSED, MiningConfig, SeedReader, run_mining, summary_table
from pipeline.shards.text_sources import SourceFields

EXIT_PAUSED = 3


def add_classifier_options(parser: argparse.ArgumentParser) -> None:
    """fastText settings; defaults are DeepSeekMath section 2.1's."""
    d = ClassifierConfig()
    group = parser.add_argument_group("classifier (defaults: the paper's settings)")
    group.add_argument("--dim", type=int, default=d.dim)
    group.add_argument("--lr", type=float, default=d.lr)
    group.add_argument("--word-ngrams", type=int, default=d.word_ngrams)
    group.add_argument("--min-count", type=int, default=d.min_count)
    group.add_argument("--epoch", type=int, default=d.epoch)
    group.add_argument("--bucket", type=int, default=d.bucket, help="n-gram hash buckets")
    group.add_argument("--threads", type=int, default=d.threads, help="1: reproducible model")
    group.add_argument("--classifier-seed", type=int, default=d.seed)
    group.add_argument("--holdout-fraction", type=float, default=d.holdout_fraction)
    group.add_argument(
        "--max-chars", type=int, default=d.max_chars, help="characters of a page used"
    )


def classifier_config(args: argparse.Namespace) -> ClassifierConfig:
    return ClassifierConfig(
        dim=args.dim,
        lr=args.lr,
        word_ngrams=args.word_ngrams,
        min_count=args.min_count,
        epoch=args.epoch,
        bucket=args.bucket,
        threads=args.threads,
        seed=args.classifier_seed,
        holdout_fraction=args.holdout_fraction,
        max_chars=args.max_chars,
    )


def add_seed_field_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-field", default="text", help="text field of JSONL/Parquet seeds")
    parser.add_argument("--id-field", help="id field of JSONL/Parquet seeds (default: content id)")


def classifier_main(argv: Sequence[str] | None = None) -> int:
    """`mathcorpus classifier train ...`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="mathcorpus classifier")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the fastText math classifier on a seed")
    train.add_argument("--positives", nargs="+", required=True, metavar="SRC")
    train.add_argument("--negatives", nargs="+", required=True, metavar="SRC")
    train.add_argument("--output", required=True, metavar="DIR")
    add_seed_field_options(train)
    add_classifier_options(train)
    args = parser.parse_args(argv)
    try:
        config = classifier_config(args)
        fields = SourceFields(text_field=args.text_field, id_field=args.id_field)
        pos, neg = SeedReader(), SeedReader()
        meta = train_classifier(
            pos.docs(args.positives, fields),
            neg.docs(args.negatives, fields),
            args.output,
            config,
            seed_sources={
                "positives": args.positives,
                "negatives": args.negatives,
                "bad_positive_records": pos.bad,
                "bad_negative_records": neg.bad,
            },
        )
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"mathcorpus classifier: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("sha256", "seed", "heldout")}, indent=2))
    print(f"model written to {args.output}")
    return 0


def build_mine_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathcorpus mine",
        description="Iterative recall of math pages from a pool (DeepSeekMath section 2.1).",
        epilog="Any other --option is passed to Apache Beam (e.g. --runner, "
        "--direct_running_mode=multi_processing --direct_num_workers=2).",
    )
    parser.add_argument("--pool", required=True, metavar="DIR")
    parser.add_argument("--positives", nargs="+", required=True, metavar="SRC")
    parser.add_argument("--negatives", nargs="*", default=[], metavar="SRC")
    parser.add_argument("--workdir", required=True, metavar="DIR")
    parser.add_argument("--iterations", type=int, default=4)
    rule = parser.add_mutually_exclusive_group(required=True)
    rule.add_argument("--budget-tokens", type=int, help="collect the top pages up to N tokens")
    rule.add_argument("--min-score", type=float, help="collect pages with P(math) >= this")
    parser.add_argument("--domain-threshold", type=float, default=DEFAULT_DOMAIN_THRESHOLD)
    annotate = parser.add_mutually_exclusive_group()
    annotate.add_argument(
        "--auto-accept",
        type=float,
        default=DEFAULT_AUTO_ACCEPT,
        metavar="F",
        help="accept a prefix when at least F of its pages were collected (default %(default)s)",
    )
    annotate.add_argument(
        "--pause-for-annotation",
        action="store_true",
        help="stop after writing each annotation file; a person fills in the decisions",
    )
    parser.add_argument("--min-prefix-pages", type=int, default=DEFAULT_MIN_PREFIX_PAGES)
    parser.add_argument("--converged", type=float, default=0.98)
    parser.add_argument("--negatives-per-positive", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", help="tokenizer.json for token counts (else chars / 4)")
    parser.add_argument("--num-shards", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    add_seed_field_options(parser)
    add_classifier_options(parser)
    return parser


def mine_main(argv: Sequence[str] | None = None) -> int:
    """`mathcorpus mine ...`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_mine_parser().parse_known_args(argv)
    try:
        config = MiningConfig(
            pool=args.pool,
            positives=tuple(args.positives),
            negatives=tuple(args.negatives),
            workdir=args.workdir,
            iterations=args.iterations,
            budget_tokens=args.budget_tokens,
            min_score=args.min_score,
            domain_threshold=args.domain_threshold,
            auto_accept=args.auto_accept,
            min_prefix_pages=args.min_prefix_pages,
            pause_for_annotation=args.pause_for_annotation,
            converged=args.converged,
            negatives_per_positive=args.negatives_per_positive,
            seed=args.seed,
            classifier=classifier_config(args),
            tokenizer=args.tokenizer,
            text_field=args.text_field,
            id_field=args.id_field,
            num_shards=args.num_shards,
            overwrite=args.overwrite,
        )
        result = run_mining(config, beam_args)
    except (ConfigError, OutputConflict, FileNotFoundError) as exc:
        print(f"mathcorpus mine: {exc}", file=sys.stderr)
        return 2
    print(summary_table(result["iterations"]))
    if result["status"] == PAUSED:
        where = result["iterations"][-1]["paused_for_annotation"]
        print(
            f"paused for annotation: fill in the decision column (accept / reject) of {where} "
            "and rerun the same command"
        )
        return EXIT_PAUSED
    print(
        f"stopped: {result['stopped_because']} after iteration {result['final_iteration']}; "
        f"{result['final']['pages']} pages in {result['final']['path']}"
    )
    return 0
