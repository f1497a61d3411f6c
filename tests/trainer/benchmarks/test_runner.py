"""trainer/benchmarks/runner.py: multiple-choice scoring with a fake model, and `mathcorpus
eval` end to end on tiny random checkpoints (ours and a Hugging Face export), offline."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from mathcorpus.cli import main as mathcorpus_main
from tests.helpers import require_shared, write_tiny_tokenizer
from trainer.benchmarks.generation import LogLikelihood
from trainer.benchmarks.math_tasks import MATH_BENCHMARKS, load_items
from trainer.benchmarks.runner import ALL_BENCHMARKS, EvalConfig, evaluate, run_choice
from trainer.hf_checkpoint import export_hf_checkpoint
from trainer.model import Transformer
from trainer.model_configs import ModelConfig


class GoldFavouringModel:
    """A fake model: the gold continuation of every question gets log-likelihood -1, others -10,000;
    generations echo a fixed text."""

    def __init__(self, gold: dict[str, str]) -> None:
        self.gold = gold  # prompt -> gold continuation

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str], max_new_tokens: int
    ) -> list[str]:
        return ["The answer is 0." for _ in prompts]

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[LogLikelihood]:
        return [
            LogLikelihood(-1.0 if self.gold.get(ctx) == cont else -1e4, 1, False)
            for ctx, cont in requests
        ]


@pytest.mark.parametrize("name", ["mmlu_stem", "aqua_rat", "mathqa"])
def test_multiple_choice_with_a_gold_favouring_model_scores_one(name: str) -> None:
    items = load_items(MATH_BENCHMARKS[name], require_shared("benchmarks"), limit=200)
    # A few AQuA/MathQA questions list the same text twice, and a few questions come twice with
    # other choices: the fake model (keyed by prompt and text) cannot tell those apart.
    prompts = Counter(it.prompt for it in items)
    items = [
        it for it in items if len(set(it.choices)) == len(it.choices) and prompts[it.prompt] == 1
    ]
    assert len(items) > 150
    fake = GoldFavouringModel({it.prompt: it.choices[it.gold_index] for it in items})
    result, records = run_choice(fake, items)
    assert result["accuracy"] == 1.0
    assert result["acc_norm"] == 1.0
    assert result["gold_nll"] == pytest.approx(1.0)
    assert len(records) == len(items)


def test_evaluate_with_a_fake_model_writes_every_output(tmp_path: Path) -> None:
    root = require_shared("benchmarks")
    items = load_items(MATH_BENCHMARKS["aqua_rat"], root, limit=5)
    fake = GoldFavouringModel({it.prompt: it.choices[it.gold_index] for it in items})
    config = EvalConfig(
        checkpoint=str(tmp_path),
        output=str(tmp_path / "out"),
        benchmark_root=str(root),
        benchmarks=("aqua_rat", "gsm8k"),
        limit=5,
    )
    doc = evaluate(config, lm=fake)
    assert doc["benchmarks"]["aqua_rat"]["accuracy"] == 1.0
    assert doc["benchmarks"]["gsm8k"]["n"] == 5
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == doc
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_config_lists_every_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="4 problem") as err:
        EvalConfig(
            checkpoint=str(tmp_path / "absent"),
            output=str(tmp_path),
            benchmark_root=str(tmp_path / "absent"),
            benchmarks=("gsm8k", "nope"),
            limit=0,
        )
    assert "nope" in str(err.value) and "MATHCORPUS_BENCHMARKS" in str(err.value)


def tiny_model(vocab_size: int) -> Transformer:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=vocab_size,
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        intermediate_size=64,
        max_seq_len=256,
    )
    return Transformer(config)


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random model saved both ways: one of our step folders and a HF export."""
    folder = tmp_path_factory.mktemp("eval_checkpoints")
    tokenizer_json = write_tiny_tokenizer(folder / "tokenizer", vocab_size=512)
    model = tiny_model(512)
    step = folder / "run" / "checkpoints" / "step-00000001"
    step.mkdir(parents=True)
    torch.save(model.state_dict(), step / "model.pt")
    train_config = {
        # add_bos as a HF export implies it: bos first when the tokenizer has one.
        "data": {"manifests": [], "add_bos": True, "add_eos": True},
        "packing": {"seq_len": 256},
        "model": {
            "name": "tiny",
            "dim": 32,
            "n_layers": 2,
            "n_heads": 4,
            "n_kv_heads": 2,
            "intermediate_size": 64,
        },
    }
    (step / "train_config.json").write_text(json.dumps(train_config))
    hf = export_hf_checkpoint(model, folder / "hf", tokenizer_json=tokenizer_json)
    return {"run": folder / "run", "hf": hf, "tokenizer": tokenizer_json}


def test_mathcorpus_eval_end_to_end_on_every_benchmark(
    tiny_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    root = require_shared("benchmarks")
    out = tmp_path / "eval"
    argv = [
        "eval",
        "--checkpoint", str(tiny_checkpoints["run"]),
        "--tokenizer", str(tiny_checkpoints["tokenizer"]),
        "--benchmark-root", str(root),
        "--benchmarks", "all",
        "--limit", "3",
        "--max-new-tokens", "16",
        "--device", "cpu",
        "--output", str(out),
    ]  # fmt: skip
    assert mathcorpus_main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    assert list(doc["benchmarks"]) == list(ALL_BENCHMARKS)
    for name, row in doc["benchmarks"].items():
        if row["status"] == "skipped":  # only the code benchmarks, when code_tasks is absent
            assert name in ("humaneval", "mbpp"), row
            continue
        assert row["n"] == 3, name
        assert 0.0 <= row["accuracy"] <= 1.0
        assert math.isfinite(row["gold_nll"]) and row["gold_nll"] > 0, name
        records = (out / row["items_file"]).read_text().splitlines()
        assert len(records) == 3
        assert {"id", "extracted", "correct"} <= set(json.loads(records[0]))
    with (out / "results.csv").open(newline="") as fh:
        assert [r["benchmark"] for r in csv.DictReader(fh)] == list(ALL_BENCHMARKS)


def test_hf_export_evaluates_like_our_checkpoint(
    tiny_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    root = require_shared("benchmarks")
    docs = []
    for kind in ("run", "hf"):
        config = EvalConfig(
            checkpoint=str(tiny_checkpoints[kind]),
            tokenizer=str(tiny_checkpoints["tokenizer"]) if kind == "run" else None,
            output=str(tmp_path / kind),
            benchmark_root=str(root),
            benchmarks=("gsm8k", "mathqa"),
            limit=2,
            max_new_tokens=8,
            device="cpu",
        )
        docs.append(evaluate(config))
    ours, hf = docs
    assert ours["model"]["kind"] == "ours" and hf["model"]["kind"] == "hf"
    assert ours["model"]["tokenizer_fingerprint"] == hf["model"]["tokenizer_fingerprint"]
    for name in ("gsm8k", "mathqa"):
        # Same weights, same tokens (bos first in both): the same NLL.
        assert hf["benchmarks"][name]["gold_nll"] == pytest.approx(
            ours["benchmarks"][name]["gold_nll"], rel=1e-5
        )
