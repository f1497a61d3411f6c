"""The training loop: data, model, AdamW, schedule, evaluation, checkpoints, logs.

    from trainer.train_config import load_train_config
    from trainer.training_loop import train
    result = train(load_train_config("run.toml", ["train.steps=20"]))

One update (step) = `micro_steps` micro-batches per rank, gradients accumulated, so that the
update sees `train.batch_tokens` sequence slots over all ranks. The loss is the mean next-token
cross-entropy over every target token of the whole update on all ranks (each micro-batch's
summed loss is divided by the update's global target count, counted before the forward
passes), so padding and uneven documents do not reweight anything. Gradients are clipped to
`optim.grad_clip` (global norm), then AdamW and the learning-rate schedule step.

Evaluations run after an update: every `eval.interval_steps`, after the last update, before
the first (`eval.at_start`) and when the next sequence comes from a new mixture stage
(`eval.at_stage_change`). A checkpoint follows the evaluations every
`checkpoint.interval_steps` and after the last update. A run whose output_dir holds a
checkpoint continues from the newest one: train_log.csv and eval.csv are cut back to its step
and the run goes on as if never stopped (on CPU the losses are bit-for-bit those of an
uninterrupted run: tests/trainer/test_resume.py).

Files in output_dir: train_config.json, train_log.csv (one row per update), eval.csv,
eval.png, checkpoints/ (trainer/checkpoint.py), hf/ (with checkpoint.export_hf).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer import checkpoint as ckpt
from trainer import evaluation
from trainer.batches import MicroBatch, PackedBatches
from trainer.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown,
    unwrap,
    wrap_model,
)
from trainer.lr_schedule import build_lr_scheduler
from trainer.mixture import MixtureSampler, Stage
from trainer.model import Transformer
from trainer.model_configs import ModelConfig, flops_per_token, get_model_config
from trainer.packing import IGNORE_INDEX
from trainer.shard_source import DataError, DocumentStream, TrainingData, open_training_data
from trainer.train_config import TrainConfig, TrainConfigError, write_config

TRAIN_LOG = "train_log.csv"
TRAIN_LOG_FIELDS = (
    "step",
    "tokens",
    "stage",
    "loss",
    "lr",
    "grad_norm",
    "step_s",
    "tokens_per_s",
    "mfu",
    "fill_rate",
    "mixture",
)
# Dense bf16 peak FLOP/s by device name (vendor datasheets, SXM parts).
PEAK_FLOPS = (("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12))


@dataclass
class TrainResult:
    """What a finished (or stopped) run reports."""

    output_dir: str
    steps: int
    """Updates done (the last step number)."""
    resumed_from: int | None
    """Step of the checkpoint the run continued from."""
    losses: list[float] = field(default_factory=list)
    """Training loss of every update made by this call."""
    last_eval: dict[str, float] = field(default_factory=dict)
    """Domain -> held-out loss at the last evaluation."""
    tokens_per_s: float = 0.0
    """Mean over this call's updates (all ranks, sequence slots per second)."""
    mfu: float | None = None
    """Model FLOPs utilisation (None where the device's peak is unknown)."""
    elapsed_s: float = 0.0


def peak_flops(config: TrainConfig, device: torch.device) -> float:
    if config.train.peak_flops:
        return config.train.peak_flops
    if device.type != "cuda":
        return 0.0
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_FLOPS if key in name), 0.0)


def model_config_for(config: TrainConfig, data: TrainingData) -> ModelConfig:
    changes = config.model.changes()
    base = get_model_config(config.model.name)
    changes.setdefault("vocab_size", data.vocab_size)
    changes.setdefault("max_seq_len", max(base.max_seq_len, config.packing.seq_len))
    return dataclasses.replace(base, **changes)


def build_model(config: TrainConfig, data: TrainingData) -> Transformer:
    """The starting point: random (seeded), one of our checkpoints, or a HF Llama folder."""
    if config.init.kind == "hf":
        from trainer.hf_checkpoint import load_hf_checkpoint

        model = load_hf_checkpoint(config.init.path)
    else:
        torch.manual_seed(config.seed)
        model = Transformer(model_config_for(config, data))
        if config.init.kind == "checkpoint":
            ckpt.load_model_weights(model, config.init.path)
    problems = []
    if model.config.vocab_size < data.vocab_size:
        problems.append(
            f"the model has {model.config.vocab_size} embedding rows, the tokenizer of the "
            f"shards has {data.vocab_size} ids"
        )
    if model.config.max_seq_len < config.packing.seq_len:
        problems.append(
            f"packing.seq_len {config.packing.seq_len} > the model's max_seq_len "
            f"{model.config.max_seq_len}"
        )
    if problems:
        raise DataError(problems)
    return model


def build_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> Any:
    """AdamW; weight decay on matrices only (norm gains are not decayed)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.optim.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=config.optim.lr,
        betas=tuple(config.optim.betas),
        eps=config.optim.eps,
        fused=device.type == "cuda",
    )


def build_batches(
    config: TrainConfig, data: TrainingData, ctx: DistContext
) -> tuple[PackedBatches, int | None, int | None, int]:
    """(batches, bos, eos, pad) for this rank."""
    problems = []
    bos = data.special_id("bos") if config.data.add_bos else None
    eos = data.special_id("eos") if config.data.add_eos else None
    if config.data.add_bos and bos is None:
        problems.append("data.add_bos is true but the tokenizer has no bos token")
    if config.data.add_eos and eos is None:
        problems.append("data.add_eos is true but the tokenizer has no eos token")
    if problems:
        raise DataError(problems)
    pad = data.special_id("pad")
    pad = pad if pad is not None else (data.special_id("eos") or 0)  # labels ignore it anyway
    stages = [
        Stage(dict(s.weights), math.ceil(s.tokens / ctx.world_size))
        for s in config.mixture.resolved_stages()
    ]
    streams = {
        key: DocumentStream(bucket, config.seed, ctx.rank, ctx.world_size)
        for key, bucket in sorted(data.buckets.items())
    }
    sampler = MixtureSampler(stages, streams, bos, eos)
    batches = PackedBatches(
        sampler,
        seq_len=config.packing.seq_len,
        micro_batch_size=config.train.micro_batch_size,
        pad_id=pad,
        algorithm=config.packing.algorithm,
        buffer_sequences=config.packing.buffer_sequences,
        shuffle=config.packing.shuffle,
        seed=config.seed,
        rank=ctx.rank,
    )
    return batches, bos, eos, pad


def _autocast(ctx: DistContext, config: TrainConfig) -> contextlib.AbstractContextManager:
    bf16 = config.train.precision == "bf16" or (
        config.train.precision == "auto" and ctx.device.type == "cuda"
    )
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16)


def _no_sync(model: nn.Module, ctx: DistContext, sync: bool) -> contextlib.AbstractContextManager:
    """Skip the gradient all-reduce on all but the last micro-batch of an update."""
    if ctx.strategy == "ddp" and not sync:
        return model.no_sync()
    if ctx.strategy == "fsdp":
        model.set_requires_gradient_sync(sync)
    return contextlib.nullcontext()


def _to_device(mb: MicroBatch, device: torch.device) -> dict[str, torch.Tensor]:
    def move(array: Any) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if device.type == "cuda":
            return tensor.pin_memory().to(device, non_blocking=True)
        return tensor

    return {
        "input_ids": move(mb.input_ids),
        "labels": move(mb.labels),
        "position_ids": move(mb.position_ids),
        "cu_seqlens": move(mb.cu_seqlens),
    }


def _truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and the rows of steps <= last_step (a resumed run rewrites the rest)."""
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(kept)
    tmp.replace(path)


def _append_csv(path: Path, fields: tuple[str, ...], row: list[Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(fields)
        writer.writerow(row)


def _mixture_text(sampler: MixtureSampler) -> str:
    total = sum(sampler.total_tokens.values()) or 1
    return ";".join(f"{k}={v / total:.4f}" for k, v in sorted(sampler.total_tokens.items()))


def _check_export_tokenizer(path: str, expected: str) -> None:
    """The exported folder must carry the tokenizer the shards were made with."""
    from tokenizer.loading import fingerprint, load_tokenizer

    found = fingerprint(load_tokenizer(path))
    if found != expected:
        raise TrainConfigError(
            [
                f"checkpoint.export_tokenizer {path} has fingerprint {found}, but the manifests "
                f"were tokenized with {expected}: give the tokenizer.json the shards were made with"
            ]
        )


def train(config: TrainConfig, *, stop_after_step: int | None = None) -> TrainResult:
    """Run (or continue) the training run of `config`; every rank of a torchrun calls it.

    stop_after_step: return after that update as if the process were killed there (nothing
    beyond what the run had written by then is saved): used to test resuming.
    """
    started = time.perf_counter()
    ctx = init_distributed(
        config.train.device, config.distributed.strategy, config.distributed.backend
    )
    try:
        return _train(config, ctx, started, stop_after_step)
    finally:
        shutdown(ctx)


def _train(
    config: TrainConfig, ctx: DistContext, started: float, stop_after_step: int | None
) -> TrainResult:
    problems = config.batch_problems(ctx.world_size)
    if problems:
        raise TrainConfigError(problems)
    out = Path(config.output_dir)
    stages = config.mixture.resolved_stages()
    data = open_training_data(
        config.data.manifests,
        [s.weights for s in stages],
        config.eval.manifests,
        config.eval.holdout_shards_per_source,
    )
    if config.checkpoint.export_tokenizer is not None:
        _check_export_tokenizer(
            config.checkpoint.export_tokenizer, data.manifest.tokenizer.fingerprint
        )
    model = build_model(config, data).to(ctx.device)
    model_config = model.config
    if config.train.compile:
        model.compile()
    model = wrap_model(model, ctx)
    optimizer = build_optimizer(model, config, ctx.device)
    scheduler = build_lr_scheduler(optimizer, config.schedule.lr_schedule(config.train.steps))
    batches, bos, eos, pad = build_batches(config, data, ctx)
    heldout = evaluation.build_heldout_sets(
        data.heldout, config.eval.tokens_per_domain, config.packing.seq_len, pad, bos, eos, ctx
    )
    eval_mb = config.eval.micro_batch_size or config.train.micro_batch_size
    micro_steps = config.micro_steps(ctx.world_size)
    flops = flops_per_token(model_config, config.packing.seq_len)
    peak = peak_flops(config, ctx.device)

    step = 0
    tokens = 0
    resumed_from = None
    latest = ckpt.latest_checkpoint(out) if config.checkpoint.resume else None
    if latest is not None:
        state = ckpt.load_checkpoint(latest, model, optimizer, scheduler, ctx)
        batches.load_state_dict(state["data"][ctx.rank])
        step = resumed_from = int(state["step"])
        tokens = int(state["progress"]["tokens"])
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out)
        if resumed_from is None:  # a fresh run: no rows of an earlier one
            for name in (TRAIN_LOG, evaluation.EVAL_CSV):
                (out / name).unlink(missing_ok=True)
        else:
            _truncate_csv(out / TRAIN_LOG, step)
            _truncate_csv(out / evaluation.EVAL_CSV, step)
        print(
            f"[train] {out}: model {sum(p.numel() for p in unwrap(model).parameters()):,} "
            f"params, {ctx.world_size} process(es) on {ctx.device}, {micro_steps} micro-batch(es)"
            f" of {config.train.micro_batch_size} x {config.packing.seq_len} per update"
            + (f", resumed from step {step}" if resumed_from is not None else ""),
            flush=True,
        )
    barrier(ctx)

    result = TrainResult(str(out), step, resumed_from)
    stage = batches.peek_stage()

    def run_eval() -> None:
        if not heldout:
            return
        results = evaluation.evaluate(model, heldout, eval_mb, ctx, _autocast(ctx, config))
        result.last_eval = {d: loss for d, (loss, _) in results.items()}
        if ctx.is_main:
            evaluation.append_eval_rows(out / evaluation.EVAL_CSV, step, tokens, stage, results)
            shown = ", ".join(f"{d} {loss:.4f}" for d, (loss, _) in sorted(results.items()))
            print(f"[eval] step {step} tokens {tokens:,}: {shown}", flush=True)

    if step == 0 and config.eval.at_start:
        run_eval()
    model.train()
    step_times: list[float] = []
    while step < config.train.steps:
        t0 = time.perf_counter()
        micro = [batches.next_micro_batch() for _ in range(micro_steps)]
        stage = micro[-1].stage
        local_targets = sum(mb.target_tokens for mb in micro)
        (global_targets,) = all_reduce_sum([float(local_targets)], ctx)
        scale = ctx.world_size / max(global_targets, 1.0)  # DDP/FSDP average over ranks
        loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
        for i, mb in enumerate(micro):
            t = _to_device(mb, ctx.device)
            with _no_sync(model, ctx, sync=i == len(micro) - 1):
                with _autocast(ctx, config):
                    flash = ctx.device.type == "cuda"
                    logits = model(
                        t["input_ids"],
                        t["position_ids"],
                        cu_seqlens=t["cu_seqlens"] if flash else None,
                        max_seqlen=mb.max_seqlen if flash else None,
                    )
                summed = F.cross_entropy(
                    logits.float().reshape(-1, logits.shape[-1]),
                    t["labels"].reshape(-1),
                    ignore_index=IGNORE_INDEX,
                    reduction="sum",
                )
                (summed * scale).backward()
            loss_sum += summed.detach().double()
        max_norm = config.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
            grad_norm = grad_norm.full_tensor()
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += config.train.batch_tokens
        (total_loss,) = all_reduce_sum([float(loss_sum)], ctx)
        loss = total_loss / max(global_targets, 1.0)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        step_s = time.perf_counter() - t0
        step_times.append(step_s)
        tokens_per_s = config.train.batch_tokens / step_s
        mfu = flops * tokens_per_s / (peak * ctx.world_size) if peak else None
        result.losses.append(loss)
        result.steps = step
        if ctx.is_main:
            fill = batches.packed_real_tokens / max(batches.packed_slots, 1)
            _append_csv(
                out / TRAIN_LOG,
                TRAIN_LOG_FIELDS,
                [
                    step,
                    tokens,
                    stage,
                    f"{loss:.6f}",
                    f"{lr:.6g}",
                    f"{float(grad_norm):.4f}",
                    f"{step_s:.4f}",
                    f"{tokens_per_s:.1f}",
                    "" if mfu is None else f"{mfu:.4f}",
                    f"{fill:.4f}",
                    _mixture_text(batches.sampler),
                ],
            )
            if step % config.train.log_interval == 0 or step == config.train.steps:
                shown_mfu = "" if mfu is None else f" mfu {mfu:.1%}"
                print(
                    f"[train] step {step}/{config.train.steps} loss {loss:.4f} lr {lr:.3g} "
                    f"grad {float(grad_norm):.3f} {tokens_per_s:,.0f} tok/s{shown_mfu} "
                    f"stage {stage}",
                    flush=True,
                )
        last = step == config.train.steps
        next_stage = batches.peek_stage() if not last else stage
        interval = config.eval.interval_steps
        if (
            last
            or (interval and step % interval == 0)
            or (config.eval.at_stage_change and next_stage != stage)
        ):
            run_eval()
        every = config.checkpoint.interval_steps
        if last or (every and step % every == 0):
            ckpt.save_checkpoint(
                out,
                step,
                model,
                optimizer,
                scheduler,
                batches.state_dict(),
                {"tokens": tokens},
                config,
                ctx,
            )
        if stop_after_step is not None and step >= stop_after_step and not last:
            break

    if step == config.train.steps:
        if ctx.is_main and config.eval.plot and (out / evaluation.EVAL_CSV).exists():
            evaluation.plot_eval(out / evaluation.EVAL_CSV, out / evaluation.EVAL_PNG, out.name)
        if config.checkpoint.export_hf and ctx.is_main and ctx.strategy != "fsdp":
            from trainer.hf_checkpoint import export_hf_checkpoint

            tok = config.checkpoint.export_tokenizer  # checked against the manifests at start
            export_hf_checkpoint(unwrap(model), out / "hf", tokenizer_json=tok, overwrite=True)
    # The first updates include Numba and kernel warm-up: the mean is over the later half.
    timed = step_times[len(step_times) // 2 :]
    if timed:
        mean_s = sum(timed) / len(timed)
        result.tokens_per_s = config.train.batch_tokens / mean_s
        result.mfu = flops * result.tokens_per_s / (peak * ctx.world_size) if peak else None
    result.elapsed_s = time.perf_counter() - started
    if ctx.is_main:
        summary = dataclasses.asdict(result)
        summary["losses"] = summary["losses"][-5:]
        print(f"[train] done: {json.dumps(summary)}", flush=True)
    return result
