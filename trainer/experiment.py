"""Experiments: several training runs from one TOML file, and their comparison.

`run_experiment` trains every run of an experiment file (`[experiment]`, `[base]`,
`[runs.<name>]`) and writes comparison.json; for DeepSeekMath sec. 5.1.1
(trainer/experiments/section_5_1_1.toml) that is the held-out code loss before and after math
training. A run may start from an earlier run's final weights (`init.from_run`); the
code-vs-general experiment (trainer/experiments/code_vs_general.toml) compares a code start and
a general-text start for math training. `experiment_scale` and `estimate_gpu_hours` size the
paper-scale files. The file layout and the comparison: docs/trainer.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.config_loader import apply_overrides, config_from_dict, read_config_document
from trainer.evaluation import read_eval_rows
from trainer.peak_flops import gpu_peak
from trainer.run_files import BENCHMARK_RESULTS_FILE, COMPARISON_FILE, EVAL_CSV
from trainer.train_config import TrainConfig, TrainConfigError, TrainLoopConfig

EXPERIMENTS_DIR = Path(__file__).parent / "experiments"
SECTION_5_1_1 = EXPERIMENTS_DIR / "section_5_1_1.toml"
CODE_VS_GENERAL = EXPERIMENTS_DIR / "code_vs_general.toml"
SECTION_5_1_1_PAPER = EXPERIMENTS_DIR / "section_5_1_1_paper.toml"
CODE_VS_GENERAL_PAPER = EXPERIMENTS_DIR / "code_vs_general_paper.toml"

FROM_RUN = "from_run"
"""Key of a run's `[runs.<name>.init]` table: start from that earlier run's final weights."""


def _merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class ExperimentPlan:
    """The runs of an experiment file, resolved: documents, output dirs and init chains."""

    name: str
    """The experiment's name (`[experiment] name`, else the file's stem)."""
    documents: dict[str, dict[str, Any]]
    """Run name -> train config document, in file order (the order runs execute in)."""
    from_runs: dict[str, str] = field(default_factory=dict)
    """Run name -> the earlier run whose final weights it starts from (`init.from_run`)."""


def _final_checkpoint_guess(document: Mapping[str, Any]) -> Path:
    """Where a run's last checkpoint will be: <output_dir>/checkpoints/step-<train.steps>
    (trainer/checkpoint.py names step folders so; the runner uses the newest folder found)."""
    steps = document.get("train", {}).get("steps", TrainLoopConfig.steps)
    return Path(document["output_dir"]) / "checkpoints" / f"step-{int(steps):08d}"


def experiment_plan(
    path: str | Path,
    output_dir: str | Path,
    manifests: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> ExperimentPlan:
    """Every run's train config document, output dirs and data filled in, and its init chain.

    A run with `init.from_run = "<earlier run>"` gets `init.kind = "checkpoint"` and, as its
    path, where that run's final checkpoint will be; `run_experiment` sets the path to the
    newest checkpoint the earlier run actually left. A from_run that names no earlier run (or a
    run whose model section differs from its base's) is a config error, listed with the rest.
    """
    doc = read_config_document(path)
    meta = doc.get("experiment", {})
    names = list(meta.get("runs", []))
    runs = doc.get("runs", {})
    problems = [f"[runs.{n}] is missing" for n in names if n not in runs]
    if not names:
        problems.append("[experiment] runs lists no run")
    if problems:
        raise TrainConfigError(problems)
    out: dict[str, dict[str, Any]] = {}
    from_runs: dict[str, str] = {}
    for name in names:
        run = _merge(doc.get("base", {}), runs[name])
        run["output_dir"] = str(Path(output_dir) / name)
        if manifests:
            run.setdefault("data", {})["manifests"] = list(manifests)
        run = apply_overrides(run, overrides)
        init = run.get("init", {})
        if isinstance(init, Mapping) and FROM_RUN in init:
            base = init[FROM_RUN]
            if base not in out:
                earlier = ", ".join(out) or "none"
                problems.append(
                    f"runs.{name}.init.from_run = {base!r} names no earlier run (runs execute "
                    f"in [experiment] runs order; earlier runs: {earlier})"
                )
            else:
                if run.get("model") != out[base].get("model"):
                    problems.append(
                        f"runs.{name}.model differs from runs.{base}.model: a run started from "
                        f"{base}'s weights needs its shape"
                    )
                from_runs[name] = str(base)
                run["init"] = {
                    "kind": "checkpoint",
                    "path": str(_final_checkpoint_guess(out[base])),
                }
        out[name] = run
    if problems:
        raise TrainConfigError(problems)
    return ExperimentPlan(str(meta.get("name", Path(path).stem)), out, from_runs)


def experiment_documents(
    path: str | Path,
    output_dir: str | Path,
    manifests: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> tuple[str, dict[str, dict[str, Any]]]:
    """(experiment name, run name -> train config document), output dirs and data filled in
    (init chains resolved as in `experiment_plan`)."""
    plan = experiment_plan(path, output_dir, manifests, overrides)
    return plan.name, plan.documents


def check_plan(plan: ExperimentPlan) -> dict[str, TrainConfig]:
    """Every run's checked TrainConfig before anything trains; one error lists every run's
    problems. A run that starts from an earlier run is checked with a random init (its
    checkpoint does not exist yet)."""
    configs: dict[str, TrainConfig] = {}
    problems: list[str] = []
    for run, document in plan.documents.items():
        if run in plan.from_runs:
            document = {**document, "init": {"kind": "random"}}
        try:
            configs[run] = config_from_dict(document)
        except TrainConfigError as exc:
            problems += [f"runs.{run}: {p}" for p in exc.problems]
    if problems:
        raise TrainConfigError(problems)
    return configs


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


def compare_init_chains(
    run_dirs: Mapping[str, Path], from_runs: Mapping[str, str]
) -> dict[str, Any]:
    """Held-out losses of every run at its start and end, and of every run that starts from an
    earlier run (an arm) at its base's end, its own start and its end.

    For the code-vs-general experiment (arms `code_then_math` and `general_then_math`) the
    summary says whether the code start ends with the lower math loss (DeepSeekMath sec. 5.1.1,
    Table 6: code training before math training helps math).
    """
    rows = {name: read_eval_rows(folder / EVAL_CSV) for name, folder in run_dirs.items()}
    runs: dict[str, Any] = {}
    for name, mine in rows.items():
        first, last = min(r["step"] for r in mine), max(r["step"] for r in mine)
        runs[name] = {
            "start": {"step": first, **_losses_at(mine, first)},
            "end": {"step": last, **_losses_at(mine, last)},
        }
    arms: dict[str, Any] = {}
    for name, base in from_runs.items():
        start, end = runs[name]["start"], runs[name]["end"]
        arms[name] = {
            "from_run": base,
            "base_end": runs[base]["end"],
            "start": start,
            "end": end,
            "loss_change": {
                domain: round(end[domain] - start[domain], 6)
                for domain in end
                if domain != "step" and domain in start
            },
        }
    summary: dict[str, Any] = {"runs": runs, "arms": arms}
    if {"code_then_math", "general_then_math"} <= set(arms):
        code, general = arms["code_then_math"]["end"], arms["general_then_math"]["end"]
        if "math" in code and "math" in general:
            summary["code_start_final_math_loss_lower"] = code["math"] < general["math"]
            summary["final_math_loss_gap"] = round(general["math"] - code["math"], 6)
        if "code" in code and "code" in general:
            summary["final_code_loss_gap"] = round(general["code"] - code["code"], 6)
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


def _from_run_config(
    plan: ExperimentPlan, run: str, configs: Mapping[str, TrainConfig]
) -> TrainConfig:
    """`run`'s config with init.path set to the newest checkpoint its base run left."""
    from trainer.checkpoint import latest_checkpoint

    base = plan.from_runs[run]
    found = latest_checkpoint(configs[base].output_dir)
    if found is None:
        raise TrainConfigError(
            [f"runs.{run}.init.from_run = {base!r}: {configs[base].output_dir} has no checkpoint"]
        )
    document = {**plan.documents[run], "init": {"kind": "checkpoint", "path": str(found)}}
    return config_from_dict(document)


def run_experiment(
    path: str | Path,
    output_dir: str | Path,
    manifests: Sequence[str] = (),
    overrides: Sequence[str] = (),
    benchmarks: ArmEvaluation | None = None,
) -> dict[str, Any]:
    """Train every run of the experiment file in order, then write and return
    comparison.json; with `benchmarks`, every arm is also evaluated after each of its stages.

    A run with `init.from_run` starts from the newest checkpoint of that earlier run; an
    experiment with such runs is compared by `compare_init_chains`, else by
    `compare_forgetting`.
    """
    from trainer.training_loop import train

    if benchmarks is not None:  # the stage-end weights are what is evaluated
        overrides = [*overrides, "checkpoint.at_stage_change=true"]
    plan = experiment_plan(path, output_dir, manifests, overrides)
    configs = check_plan(plan)  # check every run before the first trains
    timings = {}
    for run, config in configs.items():
        if run in plan.from_runs:  # the earlier run has trained: start from its final weights
            config = _from_run_config(plan, run, configs)
            configs[run] = config
        started = time.perf_counter()
        train(config)
        timings[run] = round(time.perf_counter() - started, 2)
    run_dirs = {run: Path(c.output_dir) for run, c in configs.items()}
    if plan.from_runs:
        compared = compare_init_chains(run_dirs, plan.from_runs)
    else:
        compared = compare_forgetting(run_dirs)
    comparison = {"experiment": plan.name, **compared, "train_seconds": timings}
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


def run_code_vs_general(
    math_manifest: str | Path,
    code_manifest: str | Path,
    text_manifest: str | Path,
    output_dir: str | Path,
    overrides: Sequence[str] = (),
    benchmarks: ArmEvaluation | None = None,
) -> dict[str, Any]:
    """Code start vs general start for math training (DeepSeekMath sec. 5.1.1, Table 6) at
    small scale: trainer/experiments/code_vs_general.toml.

    Two models of one shape are trained from the same random init, one on the code shards
    (`code_base`) and one on the general-text shards (`general_base`); each is then trained
    on the same math tokens (`code_then_math`, `general_then_math`). Each manifest needs at
    least two shards per source (the last is held out); every run evaluates the held-out math,
    code and text loss. Returns the comparison (also <output_dir>/comparison.json): every
    run's losses at start and end, each math run's loss change, and which start ends with the
    lower math loss; with `benchmarks`, the benchmark table of every run's final weights.
    """
    manifests = [str(math_manifest), str(code_manifest), str(text_manifest)]
    return run_experiment(CODE_VS_GENERAL, output_dir, manifests, overrides, benchmarks)


# --- paper-scale sizing -------------------------------------------------------------------

ESTIMATE_GPUS = ("H100 SXM", "H100 PCIe", "A100")
"""The GPUs the paper-scale estimates are given for (labels of trainer/peak_flops.py)."""

PEAK_BF16_FLOPS: dict[str, float] = {label: gpu_peak(label) for label in ESTIMATE_GPUS}
"""Dense bf16 tensor-core peak FLOP/s of one GPU, from the one table (trainer/peak_flops.py,
which the training loop's MFU also reads)."""

ASSUMED_MFU = 0.4
"""Model FLOPs utilisation assumed for estimates (an assumption, not a measurement: well-tuned
dense training of a 1-7B model at 4K context commonly reaches 0.35-0.5)."""


def estimate_gpu_hours(
    params: float, tokens: float, peak_flops: float, mfu: float = ASSUMED_MFU
) -> float:
    """GPU-hours to train `params` parameters on `tokens` tokens: 6 N D FLOPs (forward 2,
    backward 4 per parameter and token; attention scores not counted) over peak * mfu."""
    if params <= 0 or tokens < 0 or peak_flops <= 0 or not 0 < mfu <= 1:
        raise ValueError(
            f"need params > 0, tokens >= 0, peak_flops > 0 and 0 < mfu <= 1; got {params}, "
            f"{tokens}, {peak_flops}, {mfu}"
        )
    return 6.0 * params * tokens / (peak_flops * mfu) / 3600.0


@dataclass(frozen=True)
class RunScale:
    """Size of one run of an experiment file, from its config alone (no data, no training)."""

    model: str
    """The named model shape."""
    params: int
    """Parameters the model allocates (embedding and output matrices included)."""
    matmul_params: int
    """Parameters used in matmuls (the input embedding left out): the N of 6 N D."""
    tokens: int
    """Sequence slots trained on: train.steps * train.batch_tokens."""
    stage_tokens: tuple[int, ...]
    """Document tokens of each mixture stage; the last stage (0: no end) gets what is left."""
    stage_weights: tuple[dict[str, float], ...]
    """Mixture weights of each stage."""
    from_run: str | None
    """The earlier run this one starts from."""

    def gpu_hours(self, peak_flops: float, mfu: float = ASSUMED_MFU) -> float:
        """Estimated GPU-hours (6 N D, N = matmul_params)."""
        return estimate_gpu_hours(self.matmul_params, self.tokens, peak_flops, mfu)


def run_scale(config: TrainConfig, from_run: str | None = None) -> RunScale:
    """The model size, tokens and stage split of a checked config."""
    from dataclasses import replace

    from trainer.model_configs import get_model_config, num_params

    shape = replace(get_model_config(config.model.name), **config.model.changes())
    tokens = config.train.steps * config.train.batch_tokens
    stages = config.mixture.resolved_stages()
    limited = sum(s.tokens for s in stages)
    split = tuple(s.tokens or max(tokens - limited, 0) for s in stages)
    return RunScale(
        model=config.model.name,
        params=num_params(shape),
        matmul_params=num_params(shape, include_embedding=False),
        tokens=tokens,
        stage_tokens=split,
        stage_weights=tuple(dict(s.weights) for s in stages),
        from_run=from_run,
    )


def experiment_scale(
    path: str | Path, manifests: Sequence[str] = ("<manifests>",)
) -> dict[str, RunScale]:
    """Run name -> its size, for every run of an experiment file (configs checked, nothing
    trained; the manifests are only named)."""
    plan = experiment_plan(path, "<output_dir>", manifests)
    configs = check_plan(plan)
    return {run: run_scale(c, plan.from_runs.get(run)) for run, c in configs.items()}
