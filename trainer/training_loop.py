"""The training loop: one run on one rank, from its config to its logs and checkpoints.

`train(config)` runs a `Trainer`, split into named steps as torchtitan's is: setup, `train_step`
(one optimizer update with gradient accumulation), `evaluate`, `save_checkpoint`, `finish`. Every
rank of a torchrun calls `train`; what each step means exactly: docs/trainer.md.
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
from torch import nn

from trainer import checkpoint as ckpt
from trainer import evaluation
from trainer.batches import MicroBatch, PackedBatches
from trainer.config_loader import write_config
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
from trainer.model import Transformer, cross_entropy_loss
from trainer.model_configs import ModelConfig, flops_per_token, get_model_config
from trainer.peak_flops import peak_bf16_flops
from trainer.run_files import EVAL_CSV, EVAL_PNG, TRAIN_LOG
from trainer.shard_source import (
    DataError,
    DocumentStream,
    TrainingData,
    list_units,
    open_training_data,
)
from trainer.train_config import TrainConfig, TrainConfigError

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
    """Peak FLOP/s of one device for MFU: train.peak_flops, else the CUDA device's dense bf16
    peak by name (trainer/peak_flops.py); 0.0 (no MFU) on CPU and on unknown GPUs."""
    if config.train.peak_flops:
        return config.train.peak_flops
    if device.type != "cuda":
        return 0.0
    return peak_bf16_flops(torch.cuda.get_device_name(device)) or 0.0


def model_config_for(config: TrainConfig, data: TrainingData) -> ModelConfig:
    changes = config.model.changes()
    base = get_model_config(config.model.name)
    changes.setdefault("vocab_size", data.vocab_size)
    changes.setdefault("max_seq_len", max(base.max_seq_len, config.packing.seq_len))
    return dataclasses.replace(base, **changes)


def build_model(config: TrainConfig, data: TrainingData) -> Transformer:
    """The starting point: random (seeded), one of our checkpoints, or a HF Llama folder."""
    if config.init.kind == "hf":
        from trainer.hf_checkpoint import check_hf_tokenizer, load_hf_checkpoint

        # Before the weights are read (minutes for a 7B): a run on shards of another tokenizer
        # would train every embedding row on another token's text.
        tokenizer_problems = check_hf_tokenizer(
            config.init.path,
            data.manifest.tokenizer,
            allow_mismatch=config.init.allow_tokenizer_mismatch,
            shards_tokenizer=config.checkpoint.export_tokenizer,  # checked: the shards' own
        )
        if tokenizer_problems:
            raise DataError(tokenizer_problems)
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


@dataclass(frozen=True)
class StepMetrics:
    """What one update measured; a row of train_log.csv."""

    loss: float
    """Mean next-token cross-entropy (nats) over every target token of the update, all ranks."""
    lr: float
    """The learning rate the update used."""
    grad_norm: float
    """Global gradient norm before clipping."""
    step_s: float
    """Wall time of the update (seconds), from drawing its micro-batches to the loss."""
    tokens_per_s: float
    """Sequence slots per second over all ranks (padding included)."""
    mfu: float | None
    """Model FLOPs utilisation; None where the device's peak is unknown."""


class Trainer:
    """One training run on this rank: `__init__` sets it up and resumes, `run` drives it."""

    def __init__(self, config: TrainConfig, ctx: DistContext) -> None:
        problems = config.batch_problems(ctx.world_size)
        if problems:
            raise TrainConfigError(problems)
        self.config = config
        self.ctx = ctx
        self.out = Path(config.output_dir)
        self._setup_data_and_model()
        self.step = 0  # updates done
        self.tokens = 0  # sequence slots trained on, padding included: step * batch_tokens
        self.resumed_from: int | None = None  # step of the checkpoint this run continued from
        self._resume()
        self._prepare_output()
        barrier(ctx)
        # Mixture stage of the data trained on last (before any update: of the first one).
        self.stage = self.batches.peek_stage()
        self._last_eval_step = -1  # the step of the newest held-out evaluation

    def _setup_data_and_model(self) -> None:
        """Data, model (wrapped for DDP/FSDP), AdamW, schedule, batches, held-out sets."""
        config, ctx = self.config, self.ctx
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
        self.model = wrap_model(model, ctx)
        self.optimizer = build_optimizer(self.model, config, ctx.device)
        self.scheduler = build_lr_scheduler(
            self.optimizer, config.schedule.lr_schedule(config.train.steps)
        )
        self.batches, bos, eos, pad = build_batches(config, data, ctx)
        self.heldout = evaluation.build_heldout_sets(
            data.heldout, config.eval.tokens_per_domain, config.packing.seq_len, pad, bos, eos, ctx
        )
        self.eval_micro_batch_size = config.eval.micro_batch_size or config.train.micro_batch_size
        self.micro_steps = config.micro_steps(ctx.world_size)
        self.flops_per_token = flops_per_token(model_config, config.packing.seq_len)
        self.peak_flops = peak_flops(config, ctx.device)

    def _resume(self) -> None:
        """Continue from the newest checkpoint in output_dir, when there is one."""
        latest = ckpt.latest_checkpoint(self.out) if self.config.checkpoint.resume else None
        if latest is None:
            return
        # Row groups per mixture key: how the data is split by rank, for another world size.
        units = {
            key: len(list_units(stream.bucket.shards))
            for key, stream in self.batches.sampler.streams.items()
        }
        state = ckpt.load_checkpoint(
            latest, self.model, self.optimizer, self.scheduler, self.ctx, units
        )
        self.batches.load_state_dict(state["data"][self.ctx.rank])
        self.step = self.resumed_from = int(state["step"])
        self.tokens = int(state["progress"]["tokens"])

    def _prepare_output(self) -> None:
        """Rank 0: write train_config.json, cut the logs back to the resumed step, announce."""
        if not self.ctx.is_main:
            return
        config, ctx, out = self.config, self.ctx, self.out
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out)
        if self.resumed_from is None:  # a fresh run: no rows of an earlier one
            for name in (TRAIN_LOG, EVAL_CSV):
                (out / name).unlink(missing_ok=True)
        else:
            _truncate_csv(out / TRAIN_LOG, self.step)
            _truncate_csv(out / EVAL_CSV, self.step)
        print(
            f"[train] {out}: model {sum(p.numel() for p in unwrap(self.model).parameters()):,} "
            f"params, {ctx.world_size} process(es) on {ctx.device}, {self.micro_steps} "
            f"micro-batch(es) of {config.train.micro_batch_size} x {config.packing.seq_len} "
            "per update"
            + (f", resumed from step {self.step}" if self.resumed_from is not None else ""),
            flush=True,
        )

    def run(self, started: float, stop_after_step: int | None = None) -> TrainResult:
        """Train up to train.steps (or stop_after_step); `started`: perf_counter at launch."""
        config = self.config
        result = TrainResult(str(self.out), self.step, self.resumed_from)
        if self.step == 0 and config.eval.at_start:
            self._evaluate_into(result)
        self.model.train()
        step_times: list[float] = []
        while self.step < config.train.steps:
            micro = self.next_update()
            # The update's last micro-batch is of a new stage: the stage ends before it, or
            # inside it (then these weights, before the update, are its last of that stage).
            if self.step > 0 and micro[-1].stage != self.stage:
                self._stage_ended(result)  # the weights now are the end of self.stage
            metrics = self.train_step(micro)
            step_times.append(metrics.step_s)
            result.losses.append(metrics.loss)
            result.steps = self.step
            self.log_step(metrics)
            last = self.step == config.train.steps
            if self._evaluation_due(last):
                self._evaluate_into(result)
            every = config.checkpoint.interval_steps
            if last or (every and self.step % every == 0):
                self.save_checkpoint()
            if stop_after_step is not None and self.step >= stop_after_step and not last:
                break
        if self.step == config.train.steps:
            self.finish()
        self._summarise(result, step_times, started)
        return result

    def next_update(self) -> list[Any]:
        """The micro-batches of the next optimizer update."""
        return [self.batches.next_micro_batch() for _ in range(self.micro_steps)]

    def _stage_ended(self, result: TrainResult) -> None:
        """Before the first update of a new mixture stage: the held-out evaluation (unless
        this step was just evaluated) and, with checkpoint.at_stage_change, the weights."""
        if self.config.eval.at_stage_change and self._last_eval_step != self.step:
            self._evaluate_into(result)
            self.model.train()
        if self.config.checkpoint.at_stage_change:
            ckpt.save_stage_model(self.out, self.stage, self.model, self.config, self.ctx)

    def train_step(self, micro: list[Any] | None = None) -> StepMetrics:
        """One optimizer update: micro_steps micro-batches (drawn here unless given),
        gradients accumulated, clipped."""
        config, ctx = self.config, self.ctx
        t0 = time.perf_counter()
        micro = micro if micro is not None else self.next_update()
        self.stage = micro[-1].stage
        # The loss is the mean over every target token of the update on all ranks: each
        # micro-batch's summed loss is divided by the global target count, counted before the
        # forward passes, so padding and uneven documents do not reweight anything.
        local_targets = sum(mb.target_tokens for mb in micro)
        (global_targets,) = all_reduce_sum([float(local_targets)], ctx)
        scale = ctx.world_size / max(global_targets, 1.0)  # DDP/FSDP average over ranks
        loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
        for i, mb in enumerate(micro):
            summed = self._forward_backward(mb, scale, sync=i == len(micro) - 1)
            loss_sum += summed.detach().double()
        max_norm = config.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
            grad_norm = grad_norm.full_tensor()
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += config.train.batch_tokens
        (total_loss,) = all_reduce_sum([float(loss_sum)], ctx)
        loss = total_loss / max(global_targets, 1.0)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        step_s = time.perf_counter() - t0
        tokens_per_s = config.train.batch_tokens / step_s
        mfu = self._mfu(tokens_per_s)
        return StepMetrics(loss, lr, float(grad_norm), step_s, tokens_per_s, mfu)

    def _forward_backward(self, mb: MicroBatch, scale: float, sync: bool) -> torch.Tensor:
        """Backward of one micro-batch's summed loss * scale; returns the summed loss (nats)."""
        t = _to_device(mb, self.ctx.device)
        with _no_sync(self.model, self.ctx, sync=sync):
            with _autocast(self.ctx, self.config):
                # The document mask is built once here, for every layer (trainer/attention.py)
                logits = self.model(
                    t["input_ids"], t["position_ids"], attention=self.config.train.attention
                )
            summed = cross_entropy_loss(logits, t["labels"], reduction="sum")
            (summed * scale).backward()
        return summed

    def _mfu(self, tokens_per_s: float) -> float | None:
        if not self.peak_flops:
            return None
        return self.flops_per_token * tokens_per_s / (self.peak_flops * self.ctx.world_size)

    def log_step(self, metrics: StepMetrics) -> None:
        """Rank 0: a row of train_log.csv, and a progress line every train.log_interval."""
        if not self.ctx.is_main:
            return
        config, m = self.config, metrics
        fill = self.batches.packed_real_tokens / max(self.batches.packed_slots, 1)
        _append_csv(
            self.out / TRAIN_LOG,
            TRAIN_LOG_FIELDS,
            [
                self.step,
                self.tokens,
                self.stage,
                f"{m.loss:.6f}",
                f"{m.lr:.6g}",
                f"{m.grad_norm:.4f}",
                f"{m.step_s:.4f}",
                f"{m.tokens_per_s:.1f}",
                "" if m.mfu is None else f"{m.mfu:.4f}",
                f"{fill:.4f}",
                _mixture_text(self.batches.sampler),
            ],
        )
        if self.step % config.train.log_interval == 0 or self.step == config.train.steps:
            shown_mfu = "" if m.mfu is None else f" mfu {m.mfu:.1%}"
            print(
                f"[train] step {self.step}/{config.train.steps} loss {m.loss:.4f} lr {m.lr:.3g} "
                f"grad {m.grad_norm:.3f} {m.tokens_per_s:,.0f} tok/s{shown_mfu} "
                f"stage {self.stage}",
                flush=True,
            )

    def _evaluation_due(self, last: bool) -> bool:
        """After the last update, every eval.interval_steps, and before a new mixture stage."""
        next_stage = self.batches.peek_stage() if not last else self.stage
        interval = self.config.eval.interval_steps
        # A stage change is also caught before the next update (`_stage_ended`): the next
        # stage is only known here when its first sequence was already drawn.
        return bool(
            last
            or (interval and self.step % interval == 0)
            or (self.config.eval.at_stage_change and next_stage != self.stage)
        )

    def evaluate(self) -> dict[str, float] | None:
        """Held-out loss per domain (rank 0 appends eval.csv); None without held-out data."""
        if not self.heldout:
            return None
        results = evaluation.evaluate(
            self.model,
            self.heldout,
            self.eval_micro_batch_size,
            self.ctx,
            _autocast(self.ctx, self.config),
        )
        if self.ctx.is_main:
            csv_path = self.out / EVAL_CSV
            evaluation.append_eval_rows(csv_path, self.step, self.tokens, self.stage, results)
            shown = ", ".join(f"{d} {loss:.4f}" for d, (loss, _) in sorted(results.items()))
            print(f"[eval] step {self.step} tokens {self.tokens:,}: {shown}", flush=True)
        return {d: loss for d, (loss, _) in results.items()}

    def _evaluate_into(self, result: TrainResult) -> None:
        self._last_eval_step = self.step
        losses = self.evaluate()
        if losses is not None:
            result.last_eval = losses

    def save_checkpoint(self) -> Path:
        """The checkpoint of the current step (collective: every rank calls it)."""
        return ckpt.save_checkpoint(
            self.out,
            self.step,
            self.model,
            self.optimizer,
            self.scheduler,
            self.batches.state_dict(),
            {"tokens": self.tokens},
            self.config,
            self.ctx,
        )

    def finish(self) -> None:
        """After the last update: eval.png, and the Hugging Face export when asked for."""
        config, ctx, out = self.config, self.ctx, self.out
        if ctx.is_main and config.eval.plot and (out / EVAL_CSV).exists():
            evaluation.plot_eval(out / EVAL_CSV, out / EVAL_PNG, out.name)
        if config.checkpoint.export_hf:
            from trainer.hf_checkpoint import export_hf_checkpoint

            tok = config.checkpoint.export_tokenizer  # checked against the manifests at start
            model = unwrap(self.model)
            if ctx.strategy == "fsdp":
                # The shards gathered into a full CPU copy on rank 0 (collective: every rank).
                full = ckpt.full_model_state(self.model)
                if ctx.is_main:
                    model = Transformer(model.config)
                    model.load_state_dict(full, strict=not model.config.tie_embeddings)
            if ctx.is_main:
                export_hf_checkpoint(model, out / "hf", tokenizer_json=tok, overwrite=True)

    def _summarise(self, result: TrainResult, step_times: list[float], started: float) -> None:
        """Throughput and elapsed time into `result`; rank 0 prints the summary line."""
        # The first updates include Numba and kernel warm-up: the mean is over the later half.
        timed = step_times[len(step_times) // 2 :]
        if timed:
            mean_s = sum(timed) / len(timed)
            result.tokens_per_s = self.config.train.batch_tokens / mean_s
            result.mfu = self._mfu(result.tokens_per_s)
        result.elapsed_s = time.perf_counter() - started
        if self.ctx.is_main:
            summary = dataclasses.asdict(result)
            summary["losses"] = summary["losses"][-5:]
            print(f"[train] done: {json.dumps(summary)}", flush=True)


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
        result = Trainer(config, ctx).run(started, stop_after_step)
        # Every rank leaves together: a rank tearing gloo down while another still finishes its
        # last collective aborts the process ("terminate called without an active exception").
        barrier(ctx)
        return result
    finally:
        shutdown(ctx)
