"""The training loop on real shards (stdlib code, GSM8K math): it learns, writes its logs,
evaluation and checkpoints, resumes after a kill on the same loss curve, starts from our
checkpoint or a Hugging Face folder, runs under torchrun with 2 gloo processes, and the sec.
5.1.1 experiment writes its comparison."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT
from trainer.checkpoint import latest_checkpoint, list_checkpoints, load_model_state
from trainer.cli import train_main
from trainer.config_loader import config_from_dict
from trainer.experiment import SECTION_5_1_1, run_experiment
from trainer.training_loop import train


def run_doc(out: Path, shards: dict[str, Path], **changes) -> dict:
    doc = {
        "output_dir": str(out),
        "seed": 4,
        "data": {"manifests": [str(shards["math"]), str(shards["code"])]},
        "mixture": {"weights": {"code": 400, "math": 150}},
        "packing": {"seq_len": 64, "buffer_sequences": 8},
        "model": {"name": "tiny"},
        "optim": {"lr": 3e-3},
        "schedule": {"warmup_steps": 2},
        "train": {"steps": 8, "batch_tokens": 512, "micro_batch_size": 4, "log_interval": 4},
        "eval": {"holdout_shards_per_source": 1, "tokens_per_domain": 2048, "interval_steps": 4},
        "checkpoint": {"interval_steps": 3, "keep_last": 3},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            doc[section][name] = value
        else:
            doc[section] = value
    return doc


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_resume_after_a_kill_gives_the_same_loss_curve(tmp_path: Path, real_shards) -> None:
    whole = train(config_from_dict(run_doc(tmp_path / "whole", real_shards)))
    assert len(whole.losses) == 8 and whole.losses[-1] < whole.losses[0]
    config = config_from_dict(run_doc(tmp_path / "killed", real_shards))
    first = train(config, stop_after_step=5)  # checkpoint at 3, killed after step 5
    assert first.steps == 5 and [s for s, _ in list_checkpoints(tmp_path / "killed")] == [3]
    second = train(config)
    assert second.resumed_from == 3
    assert first.losses[:3] + second.losses == whole.losses  # bit for bit on CPU
    a = [(r["step"], r["loss"]) for r in rows(tmp_path / "killed" / "train_log.csv")]
    b = [(r["step"], r["loss"]) for r in rows(tmp_path / "whole" / "train_log.csv")]
    assert a == b
    ea = [(r["step"], r["domain"], r["loss"]) for r in rows(tmp_path / "killed" / "eval.csv")]
    eb = [(r["step"], r["domain"], r["loss"]) for r in rows(tmp_path / "whole" / "eval.csv")]
    assert ea == eb and {d for _, d, _ in ea} == {"code", "math"}


def test_cli_run_writes_logs_eval_plot_and_safe_checkpoints(
    tmp_path: Path, real_shards, trainer_tokenizer, capsys: pytest.CaptureFixture
) -> None:
    doc = run_doc(tmp_path / "cli", real_shards, packing__algorithm="concat")
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    tokenizer_json = tmp_path / "tokenizer.json"
    trainer_tokenizer.save(str(tokenizer_json))
    other = tmp_path / "other.json"
    other.write_text(tokenizer_json.read_text().replace('"<|pad|>"', '"<|padding|>"'))
    # A tokenizer other than the shards' is refused before any training.
    wrong = ["--config", str(path), "checkpoint.export_hf=true"]
    assert train_main([*wrong, f"checkpoint.export_tokenizer={other}"]) == 2
    assert "fingerprint" in capsys.readouterr().err
    assert not (tmp_path / "cli" / "train_log.csv").exists()
    args = [
        "train.steps=6",
        "checkpoint.export_hf=true",
        f"checkpoint.export_tokenizer={tokenizer_json}",
    ]
    assert train_main(["--config", str(path), *args]) == 0
    out = tmp_path / "cli"
    log = rows(out / "train_log.csv")
    assert [int(r["step"]) for r in log] == list(range(1, 7))
    assert abs(sum(float(x.split("=")[1]) for x in log[-1]["mixture"].split(";")) - 1) < 1e-3
    evals = rows(out / "eval.csv")
    assert sorted({int(r["step"]) for r in evals}) == [0, 4, 6]
    assert (out / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    folder = latest_checkpoint(out)
    assert folder is not None and folder.name == "step-00000006"
    assert not list((out / "checkpoints").glob("*.tmp"))
    state = torch.load(folder / "trainer_state.pt", weights_only=True)
    assert state["step"] == 6 and state["world_size"] == 1 and len(state["data"]) == 1
    model = load_model_state(folder)  # the DCP shards, read in one process
    assert model["tok_embeddings.weight"].shape[0] == 512  # the tokenizer's vocabulary
    assert (
        json.loads((folder / "train_config.json").read_text())["packing"]["algorithm"] == "concat"
    )
    assert (out / "hf" / "model.safetensors").exists()
    assert (out / "hf" / "tokenizer.json").read_bytes() == tokenizer_json.read_bytes()

    # starting points: our checkpoint, and the Hugging Face export of it, give the same start
    for kind, where in (("checkpoint", folder), ("hf", out / "hf")):
        doc2 = run_doc(tmp_path / kind, real_shards, init={"kind": kind, "path": str(where)})
        doc2["train"]["steps"] = 2
        doc2["schedule"]["warmup_steps"] = 0
        result = train(config_from_dict(doc2))
        assert result.resumed_from is None
        first_eval = rows(tmp_path / kind / "eval.csv")[:2]
        assert [r["loss"] for r in first_eval] == [r["loss"] for r in evals if r["step"] == "6"]


def test_torchrun_two_gloo_processes(tmp_path: Path, real_shards) -> None:
    doc = run_doc(tmp_path / "ddp", real_shards)
    doc["train"].update(steps=4, batch_tokens=512, micro_batch_size=2)
    doc["checkpoint"]["interval_steps"] = 2
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(doc))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "trainer",
        "--config",
        str(path),
        "train.device=cpu",
    ]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es)" in done.stdout
    state = torch.load(latest_checkpoint(tmp_path / "ddp") / "trainer_state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["data"]) == 2
    log = rows(tmp_path / "ddp" / "train_log.csv")
    assert len(log) == 4 and all(float(r["loss"]) > 0 for r in log)


@pytest.mark.slow
def test_section_5_1_1_experiment_writes_its_comparison(tmp_path: Path, real_shards) -> None:
    doc = tomllib.loads(SECTION_5_1_1.read_text())
    doc["base"]["train"].update(steps=8, batch_tokens=1024)
    doc["base"]["eval"].update(interval_steps=4, tokens_per_domain=2048)
    doc["base"]["schedule"]["warmup_steps"] = 2
    doc["runs"]["two_stage"]["mixture"]["stages"][0]["tokens"] = 5000
    small = tmp_path / "small.json"
    small.write_text(json.dumps(doc))
    manifests = [str(real_shards["math"]), str(real_shards["code"])]
    result = run_experiment(small, tmp_path / "exp", manifests)
    saved = json.loads((tmp_path / "exp" / "comparison.json").read_text())
    assert saved == json.loads(json.dumps(result))
    change = saved["math_stage_starts_at_step"]
    assert 3 <= change <= 6  # 5,000 code tokens of 8 x 1,024 slots
    two = saved["runs"]["two_stage"]
    assert two["before_math"]["step"] == change and two["end"]["step"] == 8
    assert set(two["end"]) == {"step", "code", "math"}
    # the two-stage run trained on math only after the change; the one-stage run on both
    log = rows(tmp_path / "exp" / "two_stage" / "train_log.csv")
    assert {r["stage"] for r in log[:change]} == {"0"} and log[-1]["stage"] == "1"
    assert saved["two_stage_forgets_code"] == (two["code_loss_change_after_math"] > 0)


@pytest.mark.slow
@pytest.mark.parametrize("micro_steps", [1, 2])  # 2: the stage may end inside an update
def test_stage_end_weights_are_kept_for_the_benchmarks(
    tmp_path: Path, real_shards, micro_steps: int
) -> None:
    import torch

    from trainer.checkpoint import MODEL_FILE
    from trainer.experiment import evaluation_points

    doc = tomllib.loads(SECTION_5_1_1.read_text())
    doc["experiment"]["runs"] = ["two_stage"]
    doc["base"]["train"].update(steps=8, batch_tokens=1024 * micro_steps)
    doc["base"]["eval"].update(interval_steps=4, tokens_per_domain=2048)
    doc["base"]["schedule"]["warmup_steps"] = 2
    doc["runs"]["two_stage"]["mixture"]["stages"][0]["tokens"] = 5000
    small = tmp_path / "small.json"
    small.write_text(json.dumps(doc))
    manifests = [str(real_shards["math"]), str(real_shards["code"])]
    saved = run_experiment(
        small, tmp_path / "exp", manifests, overrides=["checkpoint.at_stage_change=true"]
    )
    run_dir = tmp_path / "exp" / "two_stage"
    points = evaluation_points(run_dir)
    assert [label for label, _ in points] == ["stage-0", "end"]
    stage_end = torch.load(points[0][1] / MODEL_FILE, weights_only=True)
    final = load_model_state(points[1][1])  # a step folder: DCP shards
    assert any(not torch.equal(stage_end[k], final[k]) for k in final)  # math came after
    assert saved["math_stage_starts_at_step"] is not None


@pytest.mark.slow
def test_sigkill_of_the_train_command_then_the_same_command_again(
    tmp_path: Path, real_shards
) -> None:
    """A real SIGKILL of `python -m trainer` once a checkpoint exists, then the same command:
    the run resumes from that checkpoint and its loss curve equals an uninterrupted run's."""
    import signal
    import time

    whole_doc = run_doc(tmp_path / "whole", real_shards)
    whole_doc["train"]["steps"] = 24
    whole = train(config_from_dict(whole_doc))
    doc = run_doc(tmp_path / "killed", real_shards)
    doc["train"]["steps"] = 24
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    cmd = [sys.executable, "-m", "trainer", "--config", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    log = tmp_path / "killed" / "train_log.csv"
    deadline = time.monotonic() + 240
    # Killed after the first checkpoint (step 3) and at least one more logged update.
    while time.monotonic() < deadline and proc.poll() is None:
        if list_checkpoints(tmp_path / "killed") and log.exists() and len(rows(log)) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert latest_checkpoint(tmp_path / "killed") is not None
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from step" in done.stdout
    resumed = [(r["step"], r["loss"]) for r in rows(log)]
    assert [int(s) for s, _ in resumed] == list(range(1, 25))
    assert len(whole.losses) == 24
    uninterrupted = [(r["step"], r["loss"]) for r in rows(tmp_path / "whole" / "train_log.csv")]
    assert resumed == uninterrupted  # the logged losses, to their 6 decimals
