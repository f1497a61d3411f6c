"""`mathcorpus tokenizer ...` and `mathcorpus manifest ...`: train and inspect tokenizers; merge,
verify and summarise shard manifests.

    mathcorpus tokenizer train --input runs/corpus --code /usr/lib/python3.11 \
        --vocab-size 32000 --output runs/tokenizer
    mathcorpus tokenizer info runs/tokenizer            # fingerprint, vocab size, specials

    mathcorpus manifest merge runs/shards/math runs/shards/code --output runs/shards
    mathcorpus manifest verify runs/shards              # exit 1 naming each broken shard
    mathcorpus manifest show runs/shards                # tokens per source and domain

The manifest commands and `tokenizer info` need neither Beam nor torch. `tokenizer train` reads
its sample with pipeline/shards/text_sources.py (pure Python, no Beam), imported only when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from tokenizer import storage
from tokenizer.bpe_training import BpeTrainingConfig, TrainingConfigError, train_bpe
from tokenizer.loading import TOKENIZER_FILE, TokenizerLoadError, load_tokenizer, tokenizer_info
from tokenizer.manifest import (
    ManifestError,
    load_manifest,
    manifest_file,
    merge_manifests,
    verify_manifest,
    write_manifest,
)

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
    # Pure-Python readers from the pipeline package (no Beam import); the trainer never runs
    # this command, so the tokenizer -> pipeline import stays out of GPU hosts.
    from pipeline.shards.code_filters import CodeFilterConfig, code_drop_reason
    from pipeline.shards.text_sources import SourceFields, sample_local_documents

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


def tokenizer_main(argv: Sequence[str]) -> int:
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


def _merge(args: argparse.Namespace) -> int:
    try:
        manifests = [load_manifest(path) for path in args.manifests]
        merged = merge_manifests(
            manifests, storage.parent(manifest_file(args.output)), args.manifests
        )
        written = write_manifest(merged, manifest_file(args.output))
    except ManifestError as exc:
        print(f"mathcorpus manifest merge: {exc}", file=sys.stderr)
        return 2
    totals = merged.totals()
    print(f"{written}: {totals.shards} shards, {totals.rows} documents, {totals.tokens} tokens")
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = verify_manifest(args.path)
    if report.ok:
        print(f"{report.manifest}: OK ({report.shards_checked} shards verified)")
        return 0
    print(f"{report.manifest}: {len(report.problems)} problem(s)", file=sys.stderr)
    for problem in report.problems:
        print(f"  BROKEN {problem}", file=sys.stderr)
    if report.broken_shards:
        print(f"broken shards: {', '.join(report.broken_shards)}", file=sys.stderr)
    return 1


def _show(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.path)
    except ManifestError as exc:
        print(f"mathcorpus manifest show: {exc}", file=sys.stderr)
        return 2
    total = manifest.totals()
    print(f"tokenizer {manifest.tokenizer.fingerprint} (vocab {manifest.tokenizer.vocab_size})")
    print(
        f"{'source':<20} {'domain':<6} {'shards':>6} {'documents':>11} {'tokens':>14} {'share':>7}"
    )
    for name, t in manifest.totals_by("source").items():
        share = t.tokens / total.tokens if total.tokens else 0.0
        print(
            f"{name:<20} {manifest.sources[name]:<6} {t.shards:>6} {t.rows:>11} "
            f"{t.tokens:>14} {share:>7.1%}"
        )
    print(f"{'total':<27} {total.shards:>6} {total.rows:>11} {total.tokens:>14}")
    return 0


def manifest_main(argv: Sequence[str]) -> int:
    """`mathcorpus manifest {merge,verify,show}`."""
    parser = argparse.ArgumentParser(prog="mathcorpus manifest")
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="combine manifests made with the same tokenizer")
    merge.add_argument("manifests", nargs="+", metavar="MANIFEST", help="manifest.json or folder")
    merge.add_argument("--output", required=True, help="manifest file or folder to write")
    verify = sub.add_parser("verify", help="re-check every shard: files, checksums, counts")
    verify.add_argument("path", help="manifest.json or its folder")
    show = sub.add_parser("show", help="documents and tokens per source and domain")
    show.add_argument("path", help="manifest.json or its folder")
    args = parser.parse_args(list(argv))
    if args.command == "merge":
        return _merge(args)
    if args.command == "verify":
        return _verify(args)
    return _show(args)
