"""TrainConfig: TOML/YAML/JSON, overrides, one error listing every problem, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.cli import train_main
from trainer.config_loader import (
    config_from_dict,
    config_to_dict,
    load_train_config,
    write_config,
)
from trainer.train_config import TrainConfigError

TOML = """
output_dir = "runs/x"
seed = 3
[data]
manifests = ["a", "b"]
[mixture]
weights = { math = 56, algebraic_stack = 4, arxiv = 10, github = 20, text = 10 }
[packing]
seq_len = 256
[train]
steps = 100
batch_tokens = 2048
micro_batch_size = 4
[schedule]
warmup_steps = 10
"""


def test_toml_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    config = load_train_config(
        path, ["train.steps=200", "optim.lr=4.2e-4", "packing.algorithm=concat", "seed=7"]
    )
    assert config.train.steps == 200 and config.optim.lr == 4.2e-4 and config.seed == 7
    assert config.packing.algorithm == "concat"
    assert config.data.manifests == ("a", "b")
    assert config.mixture.weights["math"] == 56.0
    # DeepSeekMath sec. 2.3 defaults
    assert config.optim.betas == (0.9, 0.95) and config.optim.weight_decay == 0.1
    assert config.schedule.kind == "multi_step" and config.schedule.factors == (0.316, 0.1)
    assert config.micro_steps(world_size=2) == 1


def test_yaml_and_json_round_trip(tmp_path: Path) -> None:
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text(
        "output_dir: runs/y\ndata:\n  manifests: [m]\nmixture:\n  stages:\n"
        "    - {tokens: 4000, weights: {code: 1}}\n    - {tokens: 0, weights: {math: 1}}\n"
        "packing: {seq_len: 64}\ntrain: {steps: 100, batch_tokens: 128, micro_batch_size: 2}\n"
        "schedule: {warmup_steps: 5}\n"
    )
    config = load_train_config(yaml_path)
    assert [s.tokens for s in config.mixture.stages] == [4000, 0]
    written = write_config(config, tmp_path / "out")
    again = load_train_config(written)
    assert again == config
    assert json.loads(written.read_text())["mixture"]["stages"][1]["weights"] == {"math": 1.0}


def test_one_error_lists_every_problem(tmp_path: Path) -> None:
    bad = {
        "output_dir": "",
        "data": {"manifests": []},
        "mixture": {"weights": {"code": 1}, "stages": [{"weights": {"math": 1}}]},
        "packing": {"seq_len": 0, "algorithm": "greedy"},
        "train": {"steps": "ten", "batch_tokens": 1000, "colour": "blue"},
        "optim": {"betas": [0.9]},
    }
    with pytest.raises(TrainConfigError) as info:
        config_from_dict(bad)
    text = str(info.value)
    for expected in (
        "output_dir is empty",
        "data.manifests is empty",
        "mixture.give either weights",
        "packing.algorithm must be one of",
        "packing.seq_len must be >= 1",
        "train.steps must be an integer",
        "train.colour: unknown key",
        "optim.betas must have 2 entries",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert len(info.value.problems) >= 8


def test_stages_must_fit_in_the_run_and_batch_must_divide() -> None:
    doc = config_to_dict(config_from_dict(json.loads(json.dumps(_minimal()))))
    doc["mixture"] = {"weights": {}, "stages": [{"tokens": 10**9, "weights": {"code": 1}}]}
    doc["train"]["batch_tokens"] = 1000
    with pytest.raises(TrainConfigError) as info:
        config_from_dict(doc)
    assert "mixture.stages need 1,000,000,000 tokens" in str(info.value)
    assert "must be a multiple of micro_batch_size * seq_len" in str(info.value)


def _minimal() -> dict:
    return {
        "output_dir": "runs/z",
        "data": {"manifests": ["m"]},
        "mixture": {"weights": {"code": 1}},
        "packing": {"seq_len": 64},
        "train": {"steps": 100, "batch_tokens": 128, "micro_batch_size": 2},
        "schedule": {"warmup_steps": 5},
    }


def test_cli_reports_config_problems_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    assert train_main(["--config", str(path), "train.steps=0", "packing.seq_len=-1"]) == 2
    err = capsys.readouterr().err
    assert "train.steps must be >= 1" in err and "packing.seq_len must be >= 1" in err
    assert train_main(["--config", str(path), "--print-config", "seed=9"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 9
