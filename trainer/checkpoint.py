"""Checkpoints: everything a run needs to continue exactly where it stopped.

Model, AdamW state and trainer state (step, scheduler, every rank's data position and RNG) go
into `<output_dir>/checkpoints/step-NNNNNNNN/`, written into a `.tmp` folder that is renamed
when complete, and read back with `torch.load(weights_only=True)`. The files: docs/trainer.md
and FORMAT.md.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from trainer.config_loader import write_config
from trainer.distributed import DistContext, barrier, gather_objects
from trainer.train_config import TrainConfig

CHECKPOINTS_DIR = "checkpoints"
MODEL_FILE = "model.pt"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "trainer_state.pt"
CHECKPOINT_FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"step-(\d{8})")


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (step, folder), oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def rng_state(ctx: DistContext) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(ctx.device)
    return state


def set_rng_state(state: dict[str, Any], ctx: DistContext) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and ctx.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], ctx.device)


_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    data_state: dict[str, Any],
    progress: dict[str, Any],
    config: TrainConfig,
    ctx: DistContext,
) -> Path:
    """Write the checkpoint of `step` (collective: every rank calls it); returns the folder.

    `progress` holds numbers of the run (tokens seen, ...) that go into trainer_state.pt.
    """
    # Collectives first, on every rank: full state dicts and every rank's data and RNG state.
    model_state = get_model_state_dict(model, options=_FULL)
    optim_state = get_optimizer_state_dict(model, optimizer, options=_FULL)
    data_states = gather_objects(data_state, ctx)
    rng_states = gather_objects(rng_state(ctx), ctx)
    root = Path(output_dir) / CHECKPOINTS_DIR
    final = root / step_dir_name(step)
    if ctx.is_main:
        tmp = root / (final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        torch.save(model_state, tmp / MODEL_FILE)
        torch.save(optim_state, tmp / OPTIMIZER_FILE)
        state = {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "step": step,
            "world_size": ctx.world_size,
            "scheduler": scheduler.state_dict(),
            "data": data_states,
            "rng": rng_states,
            "progress": progress,
        }
        torch.save(state, tmp / STATE_FILE)
        write_config(config, tmp)
        if final.exists():  # the same step saved again (a rerun): replace it whole
            shutil.rmtree(final)
        tmp.rename(final)
        keep = config.checkpoint.keep_last
        for _, old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in root.glob("step-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
    barrier(ctx)
    return final


STAGE_MODELS_DIR = "stage_models"
"""Model weights at the end of each mixture stage (checkpoint.at_stage_change)."""


def save_stage_model(
    output_dir: str | Path, stage: int, model: nn.Module, config: TrainConfig, ctx: DistContext
) -> Path:
    """The model weights (and train config) at the end of mixture stage `stage`, in
    output_dir/stage_models/stage-K: a folder `mathcorpus eval` reads like a step folder
    (collective: every rank calls it)."""
    model_state = get_model_state_dict(model, options=_FULL)
    final = Path(output_dir) / STAGE_MODELS_DIR / f"stage-{stage}"
    if ctx.is_main:
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        torch.save(model_state, tmp / MODEL_FILE)
        write_config(config, tmp)
        if final.exists():  # a rerun after a resume: replace it whole
            shutil.rmtree(final)
        tmp.rename(final)
    barrier(ctx)
    return final


def load_model_weights(model: nn.Module, folder: str | Path) -> None:
    """Only the model weights of a checkpoint (init.kind = "checkpoint")."""
    state = torch.load(Path(folder) / MODEL_FILE, map_location="cpu", weights_only=True)
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))


def load_checkpoint(
    folder: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    ctx: DistContext,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and this rank's RNG; returns trainer_state (whose
    `data` entry for this rank the caller hands to the batches)."""
    folder = Path(folder)
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    if state["world_size"] != ctx.world_size:
        raise ValueError(
            f"{folder} was written by {state['world_size']} process(es), this run has "
            f"{ctx.world_size}: the data position is per rank, resume with the same world size"
        )
    options = StateDictOptions(full_state_dict=True)
    model_state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    set_model_state_dict(model, model_state, options=options)
    optim_state = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    set_optimizer_state_dict(model, optimizer, optim_state, options=options)
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"][ctx.rank], ctx)
    return state
