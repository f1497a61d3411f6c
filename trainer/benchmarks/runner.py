"""Evaluate a checkpoint on the benchmarks: load the model, score every benchmark, write results.

`evaluate(EvalConfig(...))` is the one entry point (the `mathcorpus eval` command, the demo and
the report call it). It loads one of our checkpoints (a run folder or a `step-N` folder) or a
Hugging Face Llama export with its tokenizer.json, offline, and writes into the output folder
`results.json` (the schema: docs/eval.md), `results.csv` (one row per benchmark) and
`items/<benchmark>.jsonl` (one record per item), each written to a temporary file and renamed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from tokenizer.loading import fingerprint, load_tokenizer, tokenizer_info
from trainer.benchmarks.generation import EvalModel, LanguageModel
from trainer.benchmarks.math_tasks import MATH_BENCHMARKS, Benchmark, Item, load_items
from trainer.model import Transformer
from trainer.run_files import BENCHMARK_RESULTS_FILE

log = logging.getLogger("mathcorpus.eval")

RESULTS_FORMAT_VERSION = 1
CODE_BENCHMARKS = ("humaneval", "mbpp")
ALL_BENCHMARKS = (*MATH_BENCHMARKS, *CODE_BENCHMARKS)
# The benchmarks of DeepSeekMath's base-model tables (sec. 3.2.1, Tables 2-3 and 6-7) we have
# files for; math500 is MATH's 500-problem subset, a cheaper stand-in for `math`.
DEFAULT_BENCHMARKS = ("gsm8k", "math", "cmath", "mmlu_stem", "aqua_rat", "mathqa", *CODE_BENCHMARKS)
BENCHMARK_ROOT_ENV = "MATHCORPUS_BENCHMARKS"
# Code generation budget (tokens): DeepSeek-Coder's evaluation generates up to 512.
CODE_MAX_NEW_TOKENS = 512
CSV_FIELDS = ("benchmark", "kind", "n", "accuracy", "acc_norm", "gold_nll", "seconds", "status")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run (the flags of `mathcorpus eval`)."""

    checkpoint: str
    """A run folder (its newest checkpoint), a `checkpoints/step-N` folder of ours, or a Hugging
    Face Llama folder (config.json + safetensors)."""
    output: str
    """Folder for results.json, results.csv and items/ (created; existing files replaced)."""
    benchmark_root: str
    """Folder holding the benchmark files (gsm8k/test.jsonl, ...); never downloaded."""
    benchmarks: tuple[str, ...] = DEFAULT_BENCHMARKS
    """Names from ALL_BENCHMARKS, evaluated in this order."""
    limit: int | None = None
    """Evaluate only the first N items of every benchmark (file order: deterministic)."""
    tokenizer: str | None = None
    """tokenizer.json (file or folder); default: the checkpoint folder's tokenizer.json, else the
    run's checkpoint.export_tokenizer."""
    device: str = "auto"
    """`cpu`, `cuda`, `cuda:1`, or `auto` (cuda when available)."""
    dtype: str = "auto"
    """Weights and activations: `float32`, `bfloat16`, or `auto` (bf16 on GPU, fp32 on CPU)."""
    batch_size: int = 8
    """Rows per forward pass (prompts decoded together, or scored continuations)."""
    max_new_tokens: int | None = None
    """Override every generation benchmark's budget (tokens); None: each benchmark's own."""

    def __post_init__(self) -> None:
        problems = []
        unknown = [b for b in self.benchmarks if b not in ALL_BENCHMARKS]
        if unknown:
            problems.append(f"benchmarks {unknown} unknown; choose from {list(ALL_BENCHMARKS)}")
        if not self.benchmarks:
            problems.append("benchmarks is empty")
        if self.limit is not None and self.limit < 1:
            problems.append(f"limit must be >= 1, got {self.limit}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            problems.append(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")
        if not Path(self.checkpoint).exists():
            problems.append(f"checkpoint {self.checkpoint} does not exist")
        if not Path(self.benchmark_root).is_dir():
            problems.append(
                f"benchmark_root {self.benchmark_root} is not a folder (give --benchmark-root or "
                f"set {BENCHMARK_ROOT_ENV})"
            )
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            raise ValueError(f"invalid EvalConfig ({len(problems)} problem(s)):\n{listing}")


# --- loading a checkpoint ----------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A checkpoint ready to evaluate, and what the results should say about it."""

    model: Transformer
    tokenizer: Tokenizer
    info: dict[str, Any] = field(default_factory=dict)
    """checkpoint, kind (ours/hf), tokenizer path and fingerprint, parameters, add_bos."""
    add_bos: bool = False


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def _our_checkpoint(folder: Path) -> Path | None:
    """The step folder (model.pt or DCP shards) for a run folder or a step folder; None
    otherwise."""
    from trainer.checkpoint import is_model_folder, latest_checkpoint

    if is_model_folder(folder):
        return folder
    return latest_checkpoint(folder)


def _model_config_from_run(train_config: dict[str, Any], vocab_size: int) -> Any:
    """The ModelConfig a run trained (training_loop.model_config_for, from train_config.json)."""
    import dataclasses

    from trainer.model_configs import get_model_config
    from trainer.train_config import ModelSection

    section = ModelSection(**train_config.get("model", {}))
    base = get_model_config(section.name)
    changes = section.changes()
    changes["vocab_size"] = vocab_size  # the embedding's rows: what the weights have
    seq_len = int(train_config.get("packing", {}).get("seq_len", base.max_seq_len))
    changes.setdefault("max_seq_len", max(base.max_seq_len, seq_len))
    return dataclasses.replace(base, **changes)


def _manifest_fingerprints(train_config: dict[str, Any]) -> set[str]:
    found = set()
    for manifest in train_config.get("data", {}).get("manifests", []):
        path = Path(manifest)
        path = path / "manifest.json" if path.is_dir() else path
        if path.is_file():
            found.add(json.loads(path.read_text(encoding="utf-8"))["tokenizer"]["fingerprint"])
    return found


def load_checkpoint_for_eval(
    checkpoint: str | Path,
    tokenizer: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
) -> LoadedModel:
    """Our checkpoint (run or step folder) or a Hugging Face folder, with its tokenizer."""
    folder = Path(checkpoint)
    dev = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    info: dict[str, Any] = {"checkpoint": str(folder)}
    if (folder / "config.json").is_file():
        from trainer.hf_checkpoint import load_hf_checkpoint

        model = load_hf_checkpoint(folder, dtype=torch_dtype, device=dev)
        info["kind"] = "hf"
        tok_path = Path(tokenizer) if tokenizer else folder / "tokenizer.json"
        expected: set[str] = set()
        add_bos: bool | None = None
    else:
        from trainer.checkpoint import load_model_state

        step = _our_checkpoint(folder)
        if step is None:
            raise FileNotFoundError(
                f"{folder} holds no checkpoint: neither config.json (Hugging Face) nor "
                "a step folder (dcp/ or model.pt) nor checkpoints/step-* (a run folder)"
            )
        train_config = json.loads((step / "train_config.json").read_text(encoding="utf-8"))
        state = load_model_state(step)  # gathers DCP shards into one process
        config = _model_config_from_run(train_config, state["tok_embeddings.weight"].shape[0])
        model = Transformer(config)
        model.load_state_dict(state, strict=not config.tie_embeddings)
        model = model.to(device=dev, dtype=torch_dtype)
        info.update(kind="ours", step_folder=str(step))
        export_tok = train_config.get("checkpoint", {}).get("export_tokenizer")
        candidates = [tokenizer, step / "tokenizer.json", folder / "tokenizer.json", export_tok]
        tok_path = next((Path(c) for c in candidates if c and Path(c).exists()), None)
        if tok_path is None:
            raise FileNotFoundError(
                f"no tokenizer for {folder}: the manifests name it only by fingerprint; give "
                "--tokenizer (the tokenizer.json the shards were made with)"
            )
        expected = _manifest_fingerprints(train_config)
        add_bos = bool(train_config.get("data", {}).get("add_bos", False))
    if not tok_path.exists():
        raise FileNotFoundError(f"tokenizer {tok_path} is absent; give --tokenizer")
    tok = load_tokenizer(tok_path)
    found = fingerprint(tok)
    if expected and found not in expected:
        raise ValueError(
            f"tokenizer {tok_path} has fingerprint {found[:12]}..., the run's manifests were "
            f"made with {sorted(e[:12] + '...' for e in expected)}: give the right --tokenizer"
        )
    specials = tokenizer_info(tok).special_tokens
    if add_bos is None:  # Hugging Face models (DeepSeek's, Llama's) expect bos first
        add_bos = specials.get("bos") is not None
    info.update(
        tokenizer=str(tok_path),
        tokenizer_fingerprint=found,
        parameters=sum(p.numel() for p in model.parameters()),
        model_config=asdict(model.config),
        device=str(dev),
        dtype=str(torch_dtype).removeprefix("torch."),
        add_bos=add_bos,
    )
    return LoadedModel(model=model, tokenizer=tok, info=info, add_bos=add_bos)


def eval_model_for(loaded: LoadedModel, batch_size: int) -> EvalModel:
    specials = tokenizer_info(loaded.tokenizer).special_tokens
    bos, eos = specials.get("bos"), specials.get("eos")
    return EvalModel(
        loaded.model,
        loaded.tokenizer,
        batch_size=batch_size,
        prefix_ids=[bos.id] if loaded.add_bos and bos is not None else [],
        eos_ids=[eos.id] if eos is not None else [],
    )


# --- scoring -------------------------------------------------------------------------------------


def _nll(lm: LanguageModel, items: Sequence[Item]) -> tuple[float, int]:
    """Mean NLL (nats per token, over all gold tokens of all items) of the gold texts."""
    scores = lm.loglikelihood([(it.prompt, it.gold_text) for it in items if it.gold_text])
    tokens = sum(s.tokens for s in scores)
    total = -sum(s.logprob for s in scores)
    return (total / tokens if tokens else math.nan), tokens


def run_generation(
    lm: LanguageModel, bench: Benchmark, items: Sequence[Item], max_new_tokens: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy chain of thought on every item; accuracy of the extracted answers."""
    assert (
        bench.extract is not None and bench.is_correct is not None
    )  # the table sets both for generate
    budget = max_new_tokens or bench.max_new_tokens
    texts = lm.generate([it.prompt for it in items], bench.stop, budget)
    records = []
    for it, text in zip(items, texts, strict=True):
        answer = bench.extract(text)
        ok = bench.is_correct(answer, it.gold)
        records.append(
            {"id": it.id, "generated": text, "extracted": answer, "gold": it.gold, "correct": ok}
        )
    nll, tokens = _nll(lm, items)
    correct = sum(r["correct"] for r in records)
    result = {
        "accuracy": correct / len(items) if items else math.nan,
        "gold_nll": nll,
        "gold_tokens": tokens,
        "max_new_tokens": budget,
    }
    return result, records


def run_choice(
    lm: LanguageModel, items: Sequence[Item]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Multiple choice: argmax of the summed log-likelihood (acc) and of the log-likelihood per
    byte of the choice text (acc_norm, lm-eval's length normalisation)."""
    requests = [(it.prompt, c) for it in items for c in it.choices]
    scores = lm.loglikelihood(requests)
    records, at = [], 0
    correct = correct_norm = 0
    gold_logprob, gold_tokens = 0.0, 0
    for it in items:
        mine = scores[at : at + len(it.choices)]
        at += len(it.choices)
        lls = [s.logprob for s in mine]
        normed = [
            s.logprob / max(1, len(c.encode("utf-8")))
            for s, c in zip(mine, it.choices, strict=True)
        ]
        pick = max(range(len(lls)), key=lls.__getitem__)
        pick_norm = max(range(len(normed)), key=normed.__getitem__)
        correct += pick == it.gold_index
        correct_norm += pick_norm == it.gold_index
        gold_logprob += mine[it.gold_index].logprob
        gold_tokens += mine[it.gold_index].tokens
        records.append(
            {
                "id": it.id,
                "loglikelihoods": lls,
                "extracted": pick,
                "extracted_norm": pick_norm,
                "gold": it.gold_index,
                "correct": pick == it.gold_index,
            }
        )
    n = len(items)
    result = {
        "accuracy": correct / n if n else math.nan,
        "acc_norm": correct_norm / n if n else math.nan,
        "gold_nll": -gold_logprob / gold_tokens if gold_tokens else math.nan,
        "gold_tokens": gold_tokens,
    }
    return result, records


def run_code(
    lm: LanguageModel, name: str, root: Path, limit: int | None, max_new_tokens: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """HumanEval / MBPP pass@1, greedy, scored in the sandbox (trainer/benchmarks/code_tasks.py)."""
    from trainer.benchmarks import code_tasks  # prompts, programs and sandbox scoring

    if name == "humaneval":
        problems = code_tasks.load_humaneval(root / "humaneval" / "humaneval-python.jsonl")
    else:
        problems = code_tasks.load_mbpp(
            root / "mbpp" / "mbpp_test.jsonl", root / "mbpp" / "mbpp.jsonl"
        )
    problems = problems if limit is None else problems[:limit]
    budget = max_new_tokens or CODE_MAX_NEW_TOKENS
    # Every problem of a benchmark has the same stop strings (code_tasks.HUMANEVAL_STOP, ...).
    stop = problems[0].stop if problems else ()
    texts = lm.generate([p.prompt for p in problems], stop, budget)
    completions = {p.task_id: text for p, text in zip(problems, texts, strict=True)}
    score = code_tasks.score_completions(problems, completions)
    gold = code_tasks.reference_completions(problems)
    scores = lm.loglikelihood([(p.prompt, gold[p.task_id]) for p in problems])
    tokens = sum(s.tokens for s in scores)
    records = [
        {
            "id": p.task_id,
            "generated": completions[p.task_id],
            "extracted": r.status,
            "correct": r.status == "passed",
            "detail": r.detail[-500:],
        }
        for p, r in zip(problems, score.results, strict=True)
    ]
    result = {
        "accuracy": score.pass_at_1,
        "pass@1": score.pass_at_1,
        "gold_nll": -sum(s.logprob for s in scores) / tokens if tokens else math.nan,
        "gold_tokens": tokens,
        "max_new_tokens": budget,
    }
    return result, records


# --- outputs -------------------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Write to `<path>.tmp`, then rename over `path`: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _finite(value: Any) -> Any:
    """NaN and inf become None in JSON (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_csv(benchmarks: dict[str, dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for name, row in benchmarks.items():
        writer.writerow({"benchmark": name, **{k: _finite(v) for k, v in row.items()}})
    return out.getvalue()


def evaluate(config: EvalConfig, lm: LanguageModel | None = None) -> dict[str, Any]:
    """Evaluate config.checkpoint on config.benchmarks; write and return results.json's content.

    `lm` replaces the checkpoint's model (tests pass a fake one); the checkpoint is then not read.
    """
    started = time.monotonic()
    root = Path(config.benchmark_root)
    out = Path(config.output)
    info: dict[str, Any] = {"checkpoint": config.checkpoint}
    if lm is None:
        loaded = load_checkpoint_for_eval(
            config.checkpoint, config.tokenizer, config.device, config.dtype
        )
        lm = eval_model_for(loaded, config.batch_size)
        info = loaded.info
    results: dict[str, dict[str, Any]] = {}
    for name in config.benchmarks:
        t0 = time.monotonic()
        truncated_before = getattr(lm, "truncated", 0)
        if name in CODE_BENCHMARKS:
            try:
                row, records = run_code(lm, name, root, config.limit, config.max_new_tokens)
            except ImportError as exc:
                log.warning("%s skipped: %s", name, exc)
                results[name] = {"kind": "code", "n": 0, "status": "skipped", "reason": str(exc)}
                continue
            kind = "code"
        else:
            bench = MATH_BENCHMARKS[name]
            items = load_items(bench, root, config.limit)
            kind = bench.kind
            if kind == "generate":
                row, records = run_generation(lm, bench, items, config.max_new_tokens)
            else:
                row, records = run_choice(lm, items)
        items_file = Path("items") / f"{name}.jsonl"
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        write_atomically(out / items_file, lines)
        results[name] = {
            "kind": kind,
            "n": len(records),
            **row,
            "seconds": round(time.monotonic() - t0, 3),
            "prompts_truncated": getattr(lm, "truncated", 0) - truncated_before,
            "items_file": str(items_file),
            "status": "ok",
        }
        log.info(
            "%s: n=%d accuracy=%.4f gold_nll=%.4f (%.1f s)",
            name,
            len(records),
            row.get("accuracy", math.nan),
            row.get("gold_nll", math.nan),
            results[name]["seconds"],
        )
    document = {
        "format_version": RESULTS_FORMAT_VERSION,
        "model": info,
        "benchmark_root": str(root),
        "limit": config.limit,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "benchmarks": {n: {k: _finite(v) for k, v in r.items()} for n, r in results.items()},
        "seconds": round(time.monotonic() - started, 3),
    }
    write_atomically(
        out / BENCHMARK_RESULTS_FILE, json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    )
    write_atomically(out / "results.csv", results_csv(results))
    return document
