"""`mathcorpus demo`: the whole chain on the built-in sample crawl, with no network.

Sample crawl -> pool -> mining -> decontamination -> tokenizer -> math and code shards -> one-
and two-stage training -> report.html, all in `--workdir`; finished stages are skipped, so a
killed demo is simply rerun. The chain: docs/architecture.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

LOG = logging.getLogger("mathcorpus.demo")

# Standard-library packages used as the demo's code source: real code nobody here wrote,
# ~1.5 MB of Python, enough for two code shards and a code held-out shard.
STDLIB_PACKAGES = ("json", "email", "http", "urllib", "logging", "concurrent", "importlib")
STEPS = (
    "sample crawl",
    "pool",
    "mining loop",
    "decontamination",
    "tokenizer",
    "math shards",
    "code shards",
    "training",
    "report",
)
BAR_WIDTH = 27


def _banner(index: int, detail: str) -> None:
    """A progress bar over the demo's steps, then the step's name."""
    done = round(BAR_WIDTH * index / len(STEPS))
    bar = "#" * done + "." * (BAR_WIDTH - done)
    print(f"\n[{bar}] {index + 1}/{len(STEPS)} {STEPS[index]}: {detail}", flush=True)


def _timed(summary: dict[str, Any], key: str, fn: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = fn()
    summary.setdefault("elapsed_s", {})[key] = round(time.monotonic() - started, 1)
    return result


# Benchmarks the demo runs on each arm after each stage, and how many items: enough to show
# the table and the gold NLL moving; the demo's 1M-parameter model scores ~0 accuracy anyway.
DEMO_BENCHMARKS = ("gsm8k", "math", "mmlu_stem", "humaneval", "mbpp")
DEMO_BENCHMARK_LIMIT = 2
DEMO_MAX_NEW_TOKENS = 32  # the demo model's context is 256 tokens


def demo_benchmark_root() -> Path | None:
    """$MATHCORPUS_BENCHMARKS, else ../shared/data/benchmarks beside the repository, if present
    (real benchmark files are not part of the repository; without them the demo skips them)."""
    from trainer.benchmarks.runner import BENCHMARK_ROOT_ENV

    env = os.environ.get(BENCHMARK_ROOT_ENV)
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
    return beside if beside.is_dir() else None


def run_demo(
    workdir: Path,
    seed: int,
    scale: float,
    beam_args: Sequence[str],
    train_overrides: Sequence[str] = (),
    benchmark_root: Path | None = None,
) -> dict[str, Any]:
    from mathcorpus.report import DEMO_SUMMARY_FILE, write_report
    from mathcorpus.sample_crawl import write_sample_crawl
    from pipeline.core.stage_cli import format_funnel
    from pipeline.decontaminate.config import DecontaminateConfig
    from pipeline.decontaminate.pipeline import format_summary, read_report, run_decontaminate
    from pipeline.mine.config import MiningConfig
    from pipeline.mine.loop import run_mining
    from pipeline.pool.config import PoolConfig
    from pipeline.pool.pipeline import run_pool
    from pipeline.shards.config import ShardsConfig
    from pipeline.shards.pipeline import run_shards
    from pipeline.shards.tokenizer_cli import main as tokenizer_main

    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"workdir": str(workdir), "seed": seed, "scale": scale}

    _banner(0, "math and non-math sites, duplicates, broken files (no network)")
    # Named by seed and scale: a finished pool of another sample is never mistaken for this one.
    sample = _timed(
        summary,
        "sample",
        lambda: write_sample_crawl(workdir / f"sample-s{seed}-x{scale:g}", seed=seed, scale=scale),
    )
    print(
        f"{len(sample.warc_files)} WARC files, {sample.pages} pages ({len(sample.math_urls)} "
        f"with math markup, {len(sample.forum_math_urls)} forum math threads), 2 files broken"
    )
    summary["sample"] = {"files": len(sample.warc_files), "pages": sample.pages}

    _banner(1, "read, URL dedup, math-preserving extraction, language id, exact + near dedup")
    pool_dir = workdir / "pool"
    stats = _timed(
        summary,
        "pool",
        lambda: run_pool(
            PoolConfig(output=str(pool_dir), inputs=tuple(sample.warc_files), overwrite=True),
            beam_args,
        ),
    )
    print(format_funnel(stats))
    summary["pool"] = {"pages": stats["pages_written"], "balanced": stats["all_balanced"]}

    _banner(2, "fastText recall, math domains, URL prefixes, seed expansion (paper sec. 2.1)")
    mined = _timed(
        summary,
        "mining",
        lambda: run_mining(
            MiningConfig(
                pool=str(pool_dir),
                positives=(sample.seed_positives,),
                workdir=str(workdir / "mine"),
                min_score=0.5,
                overwrite=True,
            ),
            beam_args,
        ),
    )
    summary_md = workdir / "mine" / "summary.md"
    if summary_md.is_file():
        print(summary_md.read_text())
    final_dir = mined["final"]["path"]
    summary["mining"] = {
        "iterations": len(mined["iterations"]),
        "stopped_because": mined.get("stopped_because"),
        "collected_pages": mined["final"].get("pages"),
    }

    _banner(3, "10-gram rule against the sample's benchmark (paper sec. 2.1)")
    corpus_dir = workdir / "corpus"
    decon_config = DecontaminateConfig(
        output=str(corpus_dir),
        inputs=(str(final_dir),),
        benchmarks=(sample.benchmark_file,),
        overwrite=True,
    )
    decon = _timed(summary, "decontamination", lambda: run_decontaminate(decon_config, beam_args))
    report = read_report(decon_config.output)
    print(format_summary(decon, report))
    leaked = sorted(
        item["item_id"]
        for item in report["benchmarks"].get("demo_bench", {}).get("leaked_items", [])
    )
    summary["decontamination"] = {
        "pages_in": decon["stages"]["decontaminate"]["in"],
        "pages_removed": decon["stages"]["decontaminate"]["in"]
        - decon["stages"]["decontaminate"]["kept"],
        "leaked_items": leaked,
        "planted_items": sorted(sample.planted_benchmark_ids),
    }

    _banner(4, "byte-level BPE on the corpus and the standard library")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code_dirs = [str(stdlib / name) for name in STDLIB_PACKAGES if (stdlib / name).is_dir()]
    tokenizer_dir = workdir / "tokenizer"
    tokenizer_json = tokenizer_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        code = _timed(
            summary,
            "tokenizer",
            lambda: tokenizer_main(
                [
                    "train",
                    "--input",
                    str(corpus_dir),
                    "--code",
                    *code_dirs,
                    "--output",
                    str(tokenizer_dir),
                    "--vocab-size",
                    "4096",
                ]
            ),
        )
        if code != 0:
            raise RuntimeError(f"tokenizer training failed (exit {code})")
    else:
        print(f"{tokenizer_json} exists; kept")

    def shards(domain: str, source: str, inputs: Sequence[str]) -> tuple[Path, dict[str, Any]]:
        folder = workdir / "shards" / domain
        config = ShardsConfig(
            output=str(folder),
            inputs=tuple(inputs),
            source=source,
            domain=domain,
            tokenizer=str(tokenizer_json),
            # At least two shards: the trainer holds the last one out for evaluation.
            num_shards=3,
            overwrite=True,
        )
        return folder, _timed(summary, f"{domain}_shards", lambda: run_shards(config, beam_args))

    _banner(5, "tokenize the decontaminated corpus into Parquet shards")
    math_dir, math_stats = shards("math", "mathweb", [str(corpus_dir)])

    _banner(6, "code shards from the standard library, general text shards from the pool")
    code_dir, code_stats = shards("code", "stdlib", code_dirs)
    # General web text (the whole pool: mostly not math), for the code-start vs general-start
    # experiment (trainer/experiments/code_vs_general.toml; README, "Experiments").
    text_dir, text_stats = shards("text", "web", [str(pool_dir)])
    summary["shards"] = {
        "math_tokens": _manifest_tokens(math_dir),
        "code_tokens": _manifest_tokens(code_dir),
        "math_documents": math_stats["documents_written"],
        "code_documents": code_stats["documents_written"],
        "text_tokens": _manifest_tokens(text_dir),
        "text_documents": text_stats["documents_written"],
    }
    print(
        f"math: {summary['shards']['math_tokens']:,} tokens; "
        f"code: {summary['shards']['code_tokens']:,} tokens"
    )

    _banner(7, "two-stage vs one-stage code+math training, forgetting measured (sec. 5.1.1)")
    from trainer.experiment import ArmEvaluation, run_demo_training

    arm_evaluation = None
    if benchmark_root is not None:
        arm_evaluation = ArmEvaluation(
            benchmark_root=str(benchmark_root),
            benchmarks=DEMO_BENCHMARKS,
            limit=DEMO_BENCHMARK_LIMIT,
            tokenizer=str(tokenizer_json),
            max_new_tokens=DEMO_MAX_NEW_TOKENS,
        )
    else:
        print("no benchmark files ($MATHCORPUS_BENCHMARKS unset): benchmarks skipped")
    comparison = _timed(
        summary,
        "training",
        lambda: run_demo_training(
            math_dir / "manifest.json",
            code_dir / "manifest.json",
            workdir / "train",
            overrides=train_overrides,
            benchmarks=arm_evaluation,
        ),
    )
    print(json.dumps(comparison, indent=2)[:2000])
    summary["training"] = comparison

    summary["elapsed_s"]["total"] = round(time.monotonic() - started, 1)
    (workdir / DEMO_SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")

    _banner(8, "one self-contained HTML file")
    path = write_report(workdir)
    summary["report"] = str(path)
    print(f"open {path}")
    done = "#" * BAR_WIDTH
    print(f"\n[{done}] done in {summary['elapsed_s']['total']} s")
    return summary


def _manifest_tokens(folder: Path) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    return int(manifest["totals"]["tokens"])


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="mathcorpus demo", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="runs/demo", help="where everything is written")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sample's size")
    parser.add_argument(
        "--train-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the demo training config (e.g. train.steps=24); repeatable",
    )
    args, beam_args = parser.parse_known_args(argv)
    summary = run_demo(
        Path(args.workdir),
        args.seed,
        args.scale,
        beam_args,
        tuple(args.train_override),
        demo_benchmark_root(),
    )
    print(f"\ndemo finished; outputs in {args.workdir}; report: {summary['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
