"""Checkpoints: everything a run needs to continue where it stopped, sharded per rank.

Model and AdamW state go through torch.distributed.checkpoint (DCP): every rank writes and reads
only its own shards into `<output_dir>/checkpoints/step-NNNNNNNN/dcp/`, so no rank ever holds the
full state, and a checkpoint loads at any world size (DCP reshards the tensors). Trainer state
(step, scheduler, every rank's data position and RNG) is small and goes into trainer_state.pt
from rank 0. Everything is written into a `.tmp` folder that rank 0 renames after a barrier.
A different world size on resume continues from the same position of every data source, to
within a row group per rank (`reshard_data_states`). The files: docs/trainer.md and FORMAT.md.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
    set_state_dict,
)
from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

from trainer.config_loader import write_config
from trainer.distributed import DistContext, barrier, gather_objects
from trainer.train_config import TrainConfig

CHECKPOINTS_DIR = "checkpoints"
DCP_DIR = "dcp"
"""Model and optimizer shards (format version 2): DCP's `.metadata` and `__R_0.distcp` files."""
MODEL_FILE = "model.pt"
"""A full model state dict: stage_models/stage-K, and version 1 step folders."""
OPTIMIZER_FILE = "optimizer.pt"
"""Version 1 step folders only."""
STATE_FILE = "trainer_state.pt"
CHECKPOINT_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
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


@contextlib.contextmanager
def _one_process_is_meant() -> Iterator[None]:
    """Silence DCP's warning that it saves or loads in one process without a process group:
    that is what a one-process run and `mathcorpus eval` mean."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is .*unavailable")
        yield


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
    # This rank's shards only (DTensors under FSDP, the local replica under DDP: DCP writes
    # each replicated tensor once); the small per-rank states are gathered to rank 0.
    model_state, optim_state = get_state_dict(model, optimizer)
    data_states = gather_objects(data_state, ctx)
    rng_states = gather_objects(rng_state(ctx), ctx)
    root = Path(output_dir) / CHECKPOINTS_DIR
    final = root / step_dir_name(step)
    tmp = root / (final.name + ".tmp")
    if ctx.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    barrier(ctx)  # the empty tmp folder exists before any rank writes into it
    with _one_process_is_meant():
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=tmp / DCP_DIR)
    if ctx.is_main:
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
    barrier(ctx)  # every rank's shards are on disk before the folder is declared whole
    if ctx.is_main:
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


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict on CPU, our parameter names (collective under FSDP: every
    rank calls it; only rank 0's copy is filled, the other ranks get an empty dict)."""
    return get_model_state_dict(model, options=_FULL)


def is_model_folder(folder: str | Path) -> bool:
    """A folder `load_model_state` reads: a step folder (either format) or a stage model."""
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() or (folder / DCP_DIR / ".metadata").is_file()


def load_model_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """The full model state dict (CPU, float32, our names) of a step folder or stage model,
    read by one process: model.pt, or the `model` entries of the DCP shards (without a process
    group, as `mathcorpus eval` does; under one every rank calls it and each gets it whole)."""
    folder = Path(folder)
    if (folder / MODEL_FILE).is_file():
        return torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    if not (folder / DCP_DIR / ".metadata").is_file():
        raise FileNotFoundError(f"{folder} holds neither {MODEL_FILE} nor {DCP_DIR}/.metadata")
    with _one_process_is_meant():
        loaded = _load_state_dict_from_keys({"model"}, checkpoint_id=folder / DCP_DIR)
    return dict(loaded["model"])


def load_model_weights(model: nn.Module, folder: str | Path) -> None:
    """Only the model weights of a checkpoint (init.kind = "checkpoint")."""
    state = load_model_state(folder)
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))


def reshard_data_states(
    states: Sequence[Mapping[str, Any]], world_size: int, units_per_key: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The batches' states of `world_size` ranks continuing a run saved by len(states) ranks.

    Per mixture key the new ranks continue the same epoch from the first row group (unit) that
    some old rank had not finished: no row group is skipped, and the documents of row groups
    an old rank had started (its packing buffer's included) are read again. Stage and token
    counts are the old ranks' sums split evenly; packing starts a fresh buffer.
    `units_per_key`: row groups of each key's bucket (they decide how ranks split the data:
    shard_source.DocumentStream)."""
    old_world = len(states)
    samplers = [s["sampler"] for s in states]
    stage = min(int(s["stage"]) for s in samplers)
    at_stage = [s for s in samplers if int(s["stage"]) == stage]
    stage_keys = sorted({k for s in at_stage for k in s["stage_tokens"]})
    stage_tokens = {k: sum(int(s["stage_tokens"].get(k, 0)) for s in at_stage) for k in stage_keys}
    total_keys = sorted({k for s in samplers for k in s["total_tokens"]})
    total_tokens = {k: sum(int(s["total_tokens"].get(k, 0)) for s in samplers) for k in total_keys}
    new_states = []
    for rank in range(world_size):
        streams = {}
        for key, units in sorted(units_per_key.items()):
            old = [s["streams"][key] for s in samplers]
            epoch = min(int(o["epoch"]) for o in old)
            # Index (in the epoch's unit order) of the first unit some old rank had not finished.
            if units >= old_world:  # old ranks took every old_world-th unit
                first = min(
                    r + old_world * int(o["unit_pos"])
                    for r, o in enumerate(old)
                    if int(o["epoch"]) == epoch
                )
            else:  # every old rank read a share of every unit
                first = min(int(o["unit_pos"]) for o in old if int(o["epoch"]) == epoch)
            if units >= world_size:  # this rank's units are rank, rank + W, ...
                unit_pos = max(0, math.ceil((first - rank) / world_size))
            else:
                unit_pos = first
            streams[key] = {"epoch": epoch, "unit_pos": unit_pos, "doc_pos": 0}
        sampler = {
            "stage": stage,
            "stage_tokens": {k: v // world_size for k, v in stage_tokens.items()},
            "total_tokens": {k: v // world_size for k, v in total_tokens.items()},
            "streams": streams,
        }
        # A fresh buffer, numbered after every old rank's (its shuffle seed is new).
        buffer_index = max(int(s["buffer_index"]) for s in states) + 1
        new_states.append({"sampler": sampler, "buffer_index": buffer_index, "consumed": 0})
    return new_states


def load_checkpoint(
    folder: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    ctx: DistContext,
    units_per_key: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and this rank's RNG; returns trainer_state, whose
    `data` holds one batches' state per rank of this run (the caller hands this rank's to the
    batches). A version 2 checkpoint of another world size is resharded (`units_per_key`, row
    groups per mixture key, is then needed: `reshard_data_states`); version 1 (one full
    model.pt and optimizer.pt) is still read, at its own world size only."""
    folder = Path(folder)
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    version = int(state.get("format_version", 1))
    if version not in _READABLE_VERSIONS:
        raise ValueError(
            f"{folder}: checkpoint format version {version}; this trainer reads versions "
            f"{list(_READABLE_VERSIONS)}"
        )
    saved_world = int(state["world_size"])
    if version == 1:
        if saved_world != ctx.world_size:
            raise ValueError(
                f"{folder} is a format version 1 checkpoint of {saved_world} process(es), this "
                f"run has {ctx.world_size}: version 1 resumes only at its own world size"
            )
        options = StateDictOptions(full_state_dict=True)
        model_state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        set_model_state_dict(model, model_state, options=options)
        optim_state = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        set_optimizer_state_dict(model, optimizer, optim_state, options=options)
    else:
        # The state dicts of this run's layout (an empty optimizer gets its state made first),
        # filled in place from the shards: DCP reads only what this rank holds.
        model_state, optim_state = get_state_dict(model, optimizer)
        shards = {"model": model_state, "optim": optim_state}
        with _one_process_is_meant():
            dcp.load(shards, checkpoint_id=folder / DCP_DIR)
        set_state_dict(
            model,
            optimizer,
            model_state_dict=shards["model"],
            optim_state_dict=shards["optim"],
        )
    scheduler.load_state_dict(state["scheduler"])
    if saved_world != ctx.world_size:
        if units_per_key is None:
            raise ValueError(
                f"{folder} was written by {saved_world} process(es), this run has "
                f"{ctx.world_size}: resharding the data position needs units_per_key"
            )
        state["data"] = reshard_data_states(state["data"], ctx.world_size, units_per_key)
        # Extra ranks reuse an old rank's generator (the model has no random layers).
        state["rng"] = [state["rng"][r % saved_world] for r in range(ctx.world_size)]
        state["resharded_from"] = saved_world
    set_rng_state(state["rng"][ctx.rank], ctx)
    return state
