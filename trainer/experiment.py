"""Experiments: several training runs from one TOML file, and their comparison.

`run_experiment` trains every run of an experiment file (`[experiment]`, `[base]`,
`[runs.<name>]`) and writes comparison.json; for DeepSeekMath sec. 5.1.1
(trainer/experiments/section_5_1_1.toml) that is the held-out code loss before and after math
training. The file layout and the comparison: docs/trainer.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config_loader import apply_overrides, config_from_dict, read_config_document
from trainer.evaluation import read_eval_rows
from trainer.run_files import BENCHMARK_RESULTS_FILE, COMPARISON_FILE, EVAL_CSV
from trainer.train_config import TrainConfigError

SECTION_5_1_1 = Path(__file__).parent / "experiments" / "section_5_1_1.toml"


def _merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def experiment_documents(
    path: str | Path,
    output_dir: str | Path,
    manifests: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> tuple[str, dict[str, dict[str, Any]]]:
    """(experiment name, run name -> train config document), output dirs and data filled in."""
    doc = read_config_document(path)
    meta = doc.get("experiment", {})
    names = list(meta.get("runs", []))
    runs = doc.get("runs", {})
    problems = [f"[runs.{n}] is missing" for n in names if n not in runs]
    if not names:
        problems.append("[experiment] runs lists no run")
    if problems:
        raise TrainConfigError(problems)
    out = {}
    for name in names:
        run = _merge(doc.get("base", {}), runs[name])
        run["output_dir"] = str(Path(output_dir) / name)
        if manifests:
            run.setdefault("data", {})["manifests"] = list(manifests)
        out[name] = apply_overrides(run, overrides)
    return str(meta.get("name", Path(path).stem)), out


def _losses_at(rows: list[dict[str, Any]], step: int) -> dict[str, float]:
    return {str(r["domain"]): float(r["loss"]) for r in rows if r["step"] == step}


def _nearest_step(rows: list[dict[str, Any]], step: int) -> int:
    return min({int(r["step"]) for r in rows}, key=lambda s: (abs(s - step), s))


def compare_forgetting(run_dirs: Mapping[str, Path]) -> dict[str, Any]:
    """Code (and math) loss before and after the math stage, per run (sec. 5.1.1)."""
    rows = {name: read_eval_rows(folder / EVAL_CSV) for name, folder in run_dirs.items()}
    change_step = None
    for r_prev, r_next in zip(
        rows.get("two_stage", []), rows.get("two_stage", [])[1:], strict=False
    ):
        if r_next["stage"] != r_prev["stage"]:
            change_step = int(r_prev["step"])
            break
    runs: dict[str, Any] = {}
    for name, mine in rows.items():
        first, last = min(r["step"] for r in mine), max(r["step"] for r in mine)
        before = _nearest_step(mine, change_step) if change_step is not None else first
        runs[name] = {
            "start": {"step": first, **_losses_at(mine, first)},
            "before_math": {"step": before, **_losses_at(mine, before)},
            "end": {"step": last, **_losses_at(mine, last)},
        }
        if "code" in runs[name]["end"]:
            runs[name]["code_loss_change_after_math"] = round(
                runs[name]["end"]["code"] - runs[name]["before_math"]["code"], 6
            )
    summary: dict[str, Any] = {"math_stage_starts_at_step": change_step, "runs": runs}
    if {"two_stage", "one_stage"} <= set(runs) and "code" in runs["two_stage"]["end"]:
        two, one = runs["two_stage"], runs["one_stage"]
        summary["two_stage_forgets_code"] = two["code_loss_change_after_math"] > 0
        summary["one_stage_final_code_loss_lower"] = one["end"]["code"] < two["end"]["code"]
        summary["final_code_loss_gap"] = round(two["end"]["code"] - one["end"]["code"], 6)
    return summary


@dataclass(frozen=True)
class ArmEvaluation:
    """Benchmarks run on every arm of an experiment after each of its mixture stages."""

    benchmark_root: str
    """Folder of the benchmark files (`mathcorpus eval --benchmark-root`)."""
    benchmarks: tuple[str, ...]
    """Benchmark names (trainer.benchmarks.runner.ALL_BENCHMARKS)."""
    limit: int | None = None
    """Only the first N items of each benchmark."""
    tokenizer: str | None = None
    """tokenizer.json of the shards (default: the run's checkpoint.export_tokenizer)."""
    max_new_tokens: int | None = None
    """Generation budget override (tokens), for small models with short contexts."""


def evaluation_points(run_dir: Path) -> list[tuple[str, Path]]:
    """(label, model folder): the end of each mixture stage but the last, then the end."""
    from trainer.checkpoint import STAGE_MODELS_DIR, latest_checkpoint

    points = [
        (folder.name, folder)
        for folder in sorted((run_dir / STAGE_MODELS_DIR).glob("stage-*"))
        if folder.is_dir() and not folder.name.endswith(".tmp")
    ]
    final = latest_checkpoint(run_dir)
    if final is not None:
        points.append(("end", final))
    return points


def _finished_evaluation(out: Path, config: Any, model_folder: Path) -> dict[str, Any] | None:
    """results.json of a finished evaluation of the same weights and settings (a rerun skips
    it), else None."""
    from dataclasses import asdict

    path = out / BENCHMARK_RESULTS_FILE
    if not path.is_file() or path.stat().st_mtime < model_folder.stat().st_mtime:
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    wanted = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
    return document if document.get("config") == wanted else None


def evaluate_arms(
    run_dirs: Mapping[str, Path], settings: ArmEvaluation
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Benchmarks of every arm at every evaluation point, written to
    <run>/benchmarks/<label>/results.json; returns run -> label -> benchmark -> figures."""
    from trainer.benchmarks.runner import EvalConfig, evaluate

    table: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for run, run_dir in run_dirs.items():
        for label, folder in evaluation_points(run_dir):
            out = run_dir / "benchmarks" / label
            config = EvalConfig(
                checkpoint=str(folder),
                output=str(out),
                benchmark_root=settings.benchmark_root,
                benchmarks=settings.benchmarks,
                limit=settings.limit,
                tokenizer=settings.tokenizer,
                max_new_tokens=settings.max_new_tokens,
            )
            document = _finished_evaluation(out, config, folder) or evaluate(config)
            table.setdefault(run, {})[label] = {
                name: {
                    key: figures[key]
                    for key in ("n", "accuracy", "pass@1", "gold_nll", "status")
                    if key in figures
                }
                for name, figures in document["benchmarks"].items()
            }
    return table


def run_experiment(
    path: str | Path,
    output_dir: str | Path,
    manifests: Sequence[str] = (),
    overrides: Sequence[str] = (),
    benchmarks: ArmEvaluation | None = None,
) -> dict[str, Any]:
    """Train every run of the experiment file, then write and return comparison.json; with
    `benchmarks`, every arm is also evaluated after each of its stages."""
    from trainer.training_loop import train

    if benchmarks is not None:  # the stage-end weights are what is evaluated
        overrides = [*overrides, "checkpoint.at_stage_change=true"]
    name, documents = experiment_documents(path, output_dir, manifests, overrides)
    configs = {run: config_from_dict(doc) for run, doc in documents.items()}  # check all first
    timings = {}
    for run, config in configs.items():
        started = time.perf_counter()
        train(config)
        timings[run] = round(time.perf_counter() - started, 2)
    run_dirs = {run: Path(c.output_dir) for run, c in configs.items()}
    comparison = {
        "experiment": name,
        **compare_forgetting(run_dirs),
        "train_seconds": timings,
    }
    if benchmarks is not None:
        started = time.perf_counter()
        comparison["benchmarks"] = evaluate_arms(run_dirs, benchmarks)
        comparison["benchmark_seconds"] = round(time.perf_counter() - started, 2)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (COMPARISON_FILE + ".tmp")
    tmp.write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / COMPARISON_FILE)
    return comparison


def run_demo_training(
    math_manifest: str | Path,
    code_manifest: str | Path,
    output_dir: str | Path,
    overrides: Sequence[str] = (),
    benchmarks: ArmEvaluation | None = None,
) -> dict[str, Any]:
    """The demo's training: sec. 5.1.1 two-stage vs one-stage on the demo's shards.

    Each manifest needs at least two shards per source (the last shard of each source is held
    out for the evaluation); `overrides` change the experiment (`train.steps=24`, ...).
    Returns the comparison (also in <output_dir>/comparison.json).
    """
    return run_experiment(
        SECTION_5_1_1, output_dir, [str(math_manifest), str(code_manifest)], overrides, benchmarks
    )
