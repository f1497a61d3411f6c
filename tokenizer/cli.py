"""`mathcorpus manifest ...`: merge, verify and summarise shard manifests.

    mathcorpus manifest merge runs/shards/math runs/shards/code --output runs/shards
    mathcorpus manifest verify runs/shards              # exit 1 naming each broken shard
    mathcorpus manifest show runs/shards                # tokens per source and domain

Needs neither Beam nor torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tokenizer import storage
from tokenizer.manifest import (
    ManifestError,
    load_manifest,
    manifest_file,
    merge_manifests,
    verify_manifest,
    write_manifest,
)


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


def main(argv: Sequence[str]) -> int:
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
