"""`mathcorpus tokenizer ...`: train a byte-level BPE tokenizer on a corpus sample, inspect one.

    mathcorpus tokenizer train --input runs/corpus --code /usr/lib/python3.11 \\
        --vocab-size 32000 --output runs/tokenizer
    mathcorpus tokenizer info runs/tokenizer            # fingerprint, vocab size, specials

Reading the corpora (pools, JSONL, Parquet, code trees with the code filters) is the pipeline's
side; tokenizer/bpe_training.py trains on the texts. No Beam import.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.shards.code_filters import CodeFilterConfig, code_drop_reason
from pipeline.shards.text_sources import SourceFields, sample_local_documents
from tokenizer import storage
from tokenizer.bpe_training import BpeTrainingConfig, TrainingConfigError, train_bpe
from tokenizer.loading import TOKENIZER_FILE, TokenizerLoadError, load_tokenizer, tokenizer_info

# Characters sampled per input for training by default (~100 MB of text: enough for a 32k-100k
# vocabulary's merge statistics; BPE training time grows with the sample).
DEFAULT_SAMPLE_CHARS = 100_000_000
# Sampled documents re-checked for decode(encode(x)) == x after training.
ROUNDTRIP_CHECK_DOCS = 200


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a byte-level BPE tokenizer on a corpus sample")
    p.add_argument(
        "--input",
        nargs="*",
        default=[],
        metavar="PATH",
        help="text inputs: pool folders, .jsonl[.gz] or .parquet files",
    )
    p.add_argument(
        "--code",
        nargs="*",
        default=[],
        metavar="PATH",
        help="code inputs: folders of source files, or code datasets (.jsonl/.parquet)",
    )
    p.add_argument("--output", required=True, metavar="DIR", help="writes DIR/tokenizer.json")
    p.add_argument("--vocab-size", type=int, default=BpeTrainingConfig.vocab_size)
    p.add_argument("--min-frequency", type=int, default=BpeTrainingConfig.min_frequency)
    p.add_argument("--max-token-length", type=int)
    p.add_argument(
        "--sample-chars",
        type=int,
        default=DEFAULT_SAMPLE_CHARS,
        help="characters sampled per input (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="order in which input files are sampled")
    p.add_argument("--text-field", default="text")
    p.add_argument("--content-field", default="content", help="code datasets' text field")


def _sample_texts(
    args: argparse.Namespace, counts: list[dict[str, Any]], checks: list[str]
) -> Iterator[str]:
    code_filter = CodeFilterConfig()
    extensions = code_filter.extension_map()
    text_fields = SourceFields(text_field=args.text_field)
    code_fields = SourceFields(
        text_field=args.content_field, path_field="path", language_field="language"
    )
    plan = [(path, False) for path in args.input] + [(path, True) for path in args.code]
    for path, is_code in plan:
        docs = chars = 0
        for doc in sample_local_documents(
            path,
            fields=code_fields if is_code else text_fields,
            max_chars=args.sample_chars,
            seed=args.seed,
            extensions=extensions,
        ):
            if is_code and code_drop_reason(doc.text, doc.path, code_filter) is not None:
                continue
            docs += 1
            chars += len(doc.text)
            if len(checks) < ROUNDTRIP_CHECK_DOCS:
                checks.append(doc.text)
            yield doc.text
        kind = "code" if is_code else "text"
        counts.append({"input": path, "kind": kind, "documents": docs, "chars": chars})


def _train(args: argparse.Namespace) -> int:
    if not args.input and not args.code:
        print("mathcorpus tokenizer train: give --input and/or --code", file=sys.stderr)
        return 2
    try:
        config = BpeTrainingConfig(
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            max_token_length=args.max_token_length,
        )
    except TrainingConfigError as exc:
        print(f"mathcorpus tokenizer train: {exc}", file=sys.stderr)
        return 2
    counts: list[dict[str, Any]] = []
    checks: list[str] = []
    try:
        tokenizer = train_bpe(_sample_texts(args, counts, checks), config)
    except (OSError, ValueError) as exc:
        print(f"mathcorpus tokenizer train: {exc}", file=sys.stderr)
        return 2
    failures = sum(
        tokenizer.decode(tokenizer.encode(text, add_special_tokens=False).ids) != text
        for text in checks
    )
    info = tokenizer_info(tokenizer)
    target = storage.join(args.output, TOKENIZER_FILE)
    tmp = target + ".tmp"
    with storage.open_output(tmp) as fh:
        fh.write(tokenizer.to_str(pretty=True).encode("utf-8"))
    storage.replace(tmp, target)
    report = {
        "tokenizer": info.to_json(),
        "config": config.to_json(),
        "sample": counts,
        "seed": args.seed,
        "roundtrip_checked": len(checks),
        "roundtrip_failures": failures,
    }
    with storage.open_output(storage.join(args.output, "training.json")) as fh:
        fh.write((json.dumps(report, indent=2) + "\n").encode("utf-8"))
    print(json.dumps(report["tokenizer"], indent=2))
    print(f"tokenizer written to {target} (sample: {sum(c['documents'] for c in counts)} docs)")
    if failures:
        print(f"WARNING: {failures} sampled documents do not round-trip", file=sys.stderr)
        return 1
    return 0


def _info(args: argparse.Namespace) -> int:
    try:
        info = tokenizer_info(load_tokenizer(args.path))
    except TokenizerLoadError as exc:
        print(f"mathcorpus tokenizer info: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info.to_json(), indent=2, ensure_ascii=False))
    return 0


def main(argv: Sequence[str]) -> int:
    """`mathcorpus tokenizer {train,info}`."""
    parser = argparse.ArgumentParser(prog="mathcorpus tokenizer")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    info = sub.add_parser("info", help="fingerprint, vocabulary size and special tokens")
    info.add_argument("path", help="tokenizer.json or a folder holding one")
    args = parser.parse_args(list(argv))
    if args.command == "train":
        return _train(args)
    return _info(args)
