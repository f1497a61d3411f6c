"""The one `mathcorpus` command: a thin dispatcher.

Each subcommand's CLI is imported only when that subcommand runs, so a GPU host without Beam can
run `mathcorpus train` and a Beam worker never imports torch.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

# subcommand -> (module, function, one-line help). The function takes argv (list[str]).
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "pool": (
        "pipeline.pool.pipeline",
        "main",
        "WARC files -> URL-deduplicated, math-preserving pool",
    ),
    "extract": (
        "pipeline.extract.pipeline",
        "main",
        "HTML files -> text with math as LaTeX (a pool folder, not deduplicated)",
    ),
    "dedup": (
        "pipeline.dedup.pipeline",
        "main",
        "exact + MinHash near-dedup of a pool (also incremental against saved pools)",
    ),
    "classifier": (
        "pipeline.mine.pipeline",
        "classifier_main",
        "train the fastText math classifier",
    ),
    "mine": (
        "pipeline.mine.pipeline",
        "main",
        "iterative math recall from a pool (DeepSeekMath section 2.1)",
    ),
    "decontaminate": (
        "pipeline.decontaminate.pipeline",
        "main",
        "remove pages containing benchmark text (10-gram rule) + contamination report",
    ),
    "shards": (
        "pipeline.shards.pipeline",
        "main",
        "documents (pool, JSONL/Parquet text, code) -> token shards + manifest",
    ),
    "tokenizer": (
        "pipeline.shards.tokenizer_cli",
        "main",
        "train or inspect a byte-level BPE tokenizer",
    ),
    "manifest": ("tokenizer.cli", "main", "verify, show or merge shard manifests"),
    "train": (
        "trainer.cli",
        "train_main",
        "train on manifest shards (code/math mixture, forgetting curve)",
    ),
    "experiment": (
        "trainer.cli",
        "experiment_main",
        "several training runs from one file (sec. 5.1.1, code vs general start) + benchmarks",
    ),
    "eval": (
        "trainer.benchmarks.cli",
        "main",
        "score a checkpoint on GSM8K, MATH, MMLU-STEM, ..., HumanEval, MBPP (offline)",
    ),
    "report": ("mathcorpus.report", "main", "write report.html for a run folder"),
    "demo": ("mathcorpus.demo", "main", "run the whole chain on a generated sample crawl"),
}


def _usage() -> str:
    lines = ["usage: mathcorpus <command> [options]", "", "commands:"]
    width = max(len(name) for name in SUBCOMMANDS)
    for name, (_, _, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    lines.append("")
    lines.append("`mathcorpus <command> --help` shows a command's options.")
    return "\n".join(lines)


def _import_quietly(module_name: str):
    """Import a subcommand's module with a handler on the root logger for the duration.

    Beam's optional BigQuery client logs "apitools not found" through `logging.warning` at
    import time; on a root logger without handlers that call also runs `basicConfig()`, which
    would silently turn every subcommand's own `logging.basicConfig(level=INFO)` into a no-op
    (and print a warning about a backend we do not use).
    """
    root = logging.getLogger()
    quiet = logging.NullHandler()
    root.addHandler(quiet)
    try:
        return importlib.import_module(module_name)
    finally:
        root.removeHandler(quiet)


class _DropBackendNotice(logging.Filter):
    """Drops Beam's notice about the BigQuery client, which mathcorpus does not use."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _configure_logging() -> None:
    """Our own loggers (`mathcorpus.*`) at INFO; everything else (Beam's chatter) at WARNING.

    Done once here, so each subcommand's `logging.basicConfig` is a no-op under the dispatcher
    (it still applies when a module is run directly)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DropBackendNotice())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("mathcorpus").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"mathcorpus: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = SUBCOMMANDS[name]
    func = getattr(_import_quietly(module_name), func_name)
    _configure_logging()
    result = func(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
