"""Sharded checkpoints (format version 2): every rank writes its own DCP shards; a run resumes
at another world size (2 processes save and 1 resumes, 1 saves and 2 resume under FSDP) from the
same step, tokens and data position; the eval loader and init.kind="checkpoint" read the shards
in one process; version 1 folders are still read; FSDP runs export their Hugging Face folder."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT
from tests.trainer.test_training import rows, run_doc
from trainer.checkpoint import (
    DCP_DIR,
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    _load_state_dict_from_keys,
    is_model_folder,
    latest_checkpoint,
    list_checkpoints,
    load_model_state,
    reshard_data_states,
)
from trainer.config_loader import config_from_dict
from trainer.training_loop import train


def _doc(out: Path, shards: dict[str, Path], **changes) -> dict:
    doc = run_doc(out, shards, **changes)
    doc["train"].update(steps=4, batch_tokens=512, micro_batch_size=2)
    doc["checkpoint"].update(interval_steps=2, keep_last=3)
    return doc


def _torchrun(doc: dict, path: Path, *overrides: str) -> subprocess.CompletedProcess:
    path.write_text(json.dumps(doc))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "trainer", "--config", str(path), "train.device=cpu", *overrides]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _assert_continues(out: Path, resumed_from: int) -> None:
    """Steps 1..4 in the log, tokens = step x batch, finite losses after the resume."""
    log = rows(out / "train_log.csv")
    assert [int(r["step"]) for r in log] == [1, 2, 3, 4]
    assert [int(r["tokens"]) for r in log] == [512 * s for s in (1, 2, 3, 4)]
    after = [float(r["loss"]) for r in log[resumed_from:]]
    assert after and all(math.isfinite(x) and 0 < x < 10 for x in after)
    state = torch.load(latest_checkpoint(out) / STATE_FILE, weights_only=True)
    assert state["format_version"] == 2 and state["step"] == 4
    assert state["progress"]["tokens"] == 4 * 512


def test_two_processes_save_one_resumes(tmp_path: Path, real_shards, trainer_tokenizer) -> None:
    out = tmp_path / "run"
    _torchrun(_doc(out, real_shards), tmp_path / "run.json")
    folder = latest_checkpoint(out)
    assert [s for s, _ in list_checkpoints(out)] == [2, 4]
    # Each rank wrote its own shard file; no full model.pt or optimizer.pt.
    files = sorted(p.name for p in (folder / DCP_DIR).iterdir())
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    assert not (folder / MODEL_FILE).exists() and not (folder / OPTIMIZER_FILE).exists()
    assert is_model_folder(folder)
    weights = load_model_state(folder)  # one process, no process group
    assert weights["tok_embeddings.weight"].shape[0] == 512
    two_rank_log = rows(out / "train_log.csv")

    # Resume step 2's checkpoint in one process.
    shutil.rmtree(folder)
    result = train(config_from_dict(_doc(out, real_shards)))
    assert result.resumed_from == 2 and result.steps == 4 and len(result.losses) == 2
    _assert_continues(out, 2)
    assert rows(out / "train_log.csv")[:2] == two_rank_log[:2]
    state = torch.load(latest_checkpoint(out) / STATE_FILE, weights_only=True)
    assert state["world_size"] == 1 and len(state["data"]) == 1

    # The eval loader reads the shards into one plain model.
    from trainer.benchmarks.runner import load_checkpoint_for_eval

    tokenizer_json = tmp_path / "tokenizer.json"
    trainer_tokenizer.save(str(tokenizer_json))
    loaded = load_checkpoint_for_eval(out, tokenizer_json, device="cpu", dtype="float32")
    final = load_model_state(latest_checkpoint(out))
    got = loaded.model.state_dict()
    assert all(torch.equal(got[k], final[k]) for k in final)


def test_one_process_saves_two_resume_under_fsdp_and_export(tmp_path: Path, real_shards) -> None:
    out = tmp_path / "run"
    first = train(config_from_dict(_doc(out, real_shards)), stop_after_step=3)
    assert first.steps == 3 and [s for s, _ in list_checkpoints(out)] == [2]
    # FSDP shards every tensor over the two ranks: DCP reshards the one-process checkpoint.
    done = _torchrun(
        _doc(out, real_shards),
        tmp_path / "run.json",
        "distributed.strategy=fsdp",
        "checkpoint.export_hf=true",
    )
    assert "resumed from step 2" in done.stdout
    _assert_continues(out, 2)
    state = torch.load(latest_checkpoint(out) / STATE_FILE, weights_only=True)
    assert state["world_size"] == 2 and len(state["data"]) == 2
    # Each rank went on from where the single process had stopped in every source.
    assert all(d["buffer_index"] >= 1 for d in state["data"])
    # The Hugging Face export gathered the FSDP shards: the final weights.
    from trainer.hf_checkpoint import load_hf_checkpoint

    exported = load_hf_checkpoint(out / "hf").state_dict()
    final = load_model_state(latest_checkpoint(out))
    assert all(torch.equal(exported[k], final[k]) for k in final)


@pytest.mark.filterwarnings("ignore:torch.distributed is")
def test_same_world_size_resume_reads_version_1_and_refuses_unknown(
    tmp_path: Path, real_shards
) -> None:
    out = tmp_path / "run"
    config = config_from_dict(_doc(out, real_shards))
    whole = train(config_from_dict(_doc(tmp_path / "whole", real_shards)))
    train(config, stop_after_step=3)
    folder = latest_checkpoint(out)
    # Rewrite step 2 as a format version 1 folder: full model.pt and optimizer.pt.
    torch.save(load_model_state(folder), folder / MODEL_FILE)
    optim = _load_state_dict_from_keys({"optim"}, checkpoint_id=folder / DCP_DIR)["optim"]
    torch.save(optim, folder / OPTIMIZER_FILE)
    shutil.rmtree(folder / DCP_DIR)
    state = torch.load(folder / STATE_FILE, weights_only=True)
    torch.save({**state, "format_version": 99}, folder / STATE_FILE)
    with pytest.raises(ValueError, match="format version 99"):
        train(config)
    torch.save({**state, "format_version": 1}, folder / STATE_FILE)
    second = train(config)
    assert second.resumed_from == 2 and second.losses == whole.losses[2:]


def _remaining(stream: dict, rank: int, world: int, units: int) -> list[int]:
    """Indices (in the epoch's unit order) a rank reads from its stream position on."""
    if units >= world:
        return list(range(rank + world * stream["unit_pos"], units, world))
    return list(range(stream["unit_pos"], units))


@pytest.mark.parametrize(("old", "new"), [(2, 1), (2, 3), (1, 2), (4, 2), (3, 8)])
def test_reshard_skips_no_row_group(old: int, new: int) -> None:
    units = 6
    positions = [1, 2, 0, 1][:old]  # the slowest old rank decides where the new ones start
    states = [
        {
            "sampler": {
                "stage": 0,
                "stage_tokens": {"math": 100 * (r + 1)},
                "total_tokens": {"math": 100 * (r + 1)},
                "streams": {"math": {"epoch": 1, "unit_pos": positions[r], "doc_pos": 3}},
            },
            "buffer_index": 4 + r,
            "consumed": 2,
        }
        for r in range(old)
    ]
    resharded = reshard_data_states(states, new, {"math": units})
    assert len(resharded) == new
    if units >= old:
        first = min(r + old * p for r, p in enumerate(positions[:old]))
    else:
        first = min(positions[:old])
    read = sorted(
        i
        for r, s in enumerate(resharded)
        for i in _remaining(s["sampler"]["streams"]["math"], r, new, units)
    )
    # Together the new ranks read every unit from the first unfinished one, each once (or,
    # with more ranks than units, every rank a share of each).
    expected = list(range(first, units)) * (1 if units >= new else new)
    assert read == sorted(expected)
    total = sum(100 * (r + 1) for r in range(old))
    assert all(s["sampler"]["stage_tokens"]["math"] == total // new for s in resharded)
    assert all(s["buffer_index"] == 4 + old and s["consumed"] == 0 for s in resharded)
    assert all(s["sampler"]["streams"]["math"]["epoch"] == 1 for s in resharded)
