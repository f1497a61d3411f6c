"""Experiment files: the code-vs-general experiment end to end at tiny scale (runs that start
from an earlier run's final weights), and the paper-scale files sized without training."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from tests.helpers import tokenized, write_run
from tokenizer.loading import tokenizer_info
from trainer.checkpoint import latest_checkpoint
from trainer.cli import train_main
from trainer.config_loader import config_from_dict, read_config_document
from trainer.experiment import (
    CODE_VS_GENERAL,
    CODE_VS_GENERAL_PAPER,
    PEAK_BF16_FLOPS,
    SECTION_5_1_1_PAPER,
    estimate_gpu_hours,
    experiment_plan,
    experiment_scale,
    run_code_vs_general,
    run_scale,
)
from trainer.train_config import TrainConfigError


def eval_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "eval.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def losses_at(rows: list[dict[str, str]], step: int) -> dict[str, float]:
    return {r["domain"]: float(r["loss"]) for r in rows if int(r["step"]) == step}


@pytest.fixture(scope="module")
def text_shards(tmp_path_factory: pytest.TempPathFactory, trainer_tokenizer: Tokenizer) -> Path:
    """General-text shards (domain `text`): generated English prose, 2 shards."""
    from mathcorpus.sample_pages import TOPICS, prose_paragraph

    rng = random.Random(7)
    topics = sorted(TOPICS)
    texts = [
        (
            f"prose-{i:04d}",
            "\n\n".join(prose_paragraph(rng, topics[i % len(topics)], 6) for _ in range(4)),
        )
        for i in range(400)
    ]
    docs = tokenized(trainer_tokenizer, texts, 2000)
    folder = tmp_path_factory.mktemp("text_shards") / "text"
    return write_run(folder, tokenizer_info(trainer_tokenizer), "prose", "text", docs, 2)


@pytest.mark.slow
def test_code_vs_general_chains_the_math_runs_to_their_bases(
    tmp_path: Path, real_shards: dict[str, Path], text_shards: Path
) -> None:
    overrides = [
        "train.steps=6",
        "train.batch_tokens=1024",
        "train.log_interval=3",
        "eval.interval_steps=3",
        "eval.tokens_per_domain=2048",
        "schedule.warmup_steps=2",
    ]
    out = tmp_path / "cvg"
    result = run_code_vs_general(
        real_shards["math"], real_shards["code"], text_shards, out, overrides
    )
    saved = json.loads((out / "comparison.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["experiment"] == "code-vs-general"
    assert set(saved["runs"]) == {
        "code_base",
        "general_base",
        "code_then_math",
        "general_then_math",
    }
    for arm, base in (("code_then_math", "code_base"), ("general_then_math", "general_base")):
        # the math run starts from its base's final weights: its loss before the first update
        # is its base's loss after the last one, on the same held-out sets
        base_last = losses_at(eval_rows(out / base), 6)
        arm_first = losses_at(eval_rows(out / arm), 0)
        assert set(base_last) == set(arm_first) == {"math", "code", "text"}
        for domain, loss in base_last.items():
            assert arm_first[domain] == pytest.approx(loss, rel=1e-5, abs=1e-6), (arm, domain)
        init = json.loads((out / arm / "train_config.json").read_text())["init"]
        assert init["kind"] == "checkpoint" and init["path"] == str(latest_checkpoint(out / base))
        figures = saved["arms"][arm]
        assert figures["from_run"] == base and figures["end"]["step"] == 6
        assert {"math", "code"} <= set(figures["end"])
        assert figures["base_end"] == saved["runs"][base]["end"]
        # trained on math only: the math loss falls
        assert figures["loss_change"]["math"] < 0
    # the bases started from the same random weights, so their start losses agree
    assert saved["runs"]["code_base"]["start"] == saved["runs"]["general_base"]["start"]
    # and then learned different things: each is best on its own domain
    code_end, general_end = saved["runs"]["code_base"]["end"], saved["runs"]["general_base"]["end"]
    assert code_end["code"] < general_end["code"] and general_end["text"] < code_end["text"]
    code_math = saved["arms"]["code_then_math"]["end"]["math"]
    general_math = saved["arms"]["general_then_math"]["end"]["math"]
    assert saved["code_start_final_math_loss_lower"] == (code_math < general_math)
    assert saved["final_math_loss_gap"] == pytest.approx(general_math - code_math, abs=1e-6)


def test_a_from_run_must_name_an_earlier_run(tmp_path: Path) -> None:
    doc = read_config_document(CODE_VS_GENERAL)
    doc["experiment"]["runs"] = ["code_then_math", "code_base", "general_base"]
    doc["runs"]["general_base"]["init"] = {"from_run": "no_such_run"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TrainConfigError) as caught:
        experiment_plan(path, tmp_path / "out", ["m"])
    message = str(caught.value)
    assert "runs.code_then_math.init.from_run = 'code_base' names no earlier run" in message
    assert "runs.general_base.init.from_run = 'no_such_run' names no earlier run" in message
    assert "earlier runs: code_then_math, code_base" in message


def test_a_from_run_needs_the_same_model_shape(tmp_path: Path) -> None:
    doc = read_config_document(CODE_VS_GENERAL)
    doc["runs"]["code_then_math"]["model"] = {"dim": 64}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TrainConfigError, match=r"runs\.code_then_math\.model differs"):
        experiment_plan(path, tmp_path / "out", ["m"])


# --- paper scale: sizes from the configs alone ---------------------------------------------

# DeepSeekMath sec. 2.3 / 5.1.1: the 1.3B runs take batches of 4M tokens (here 1,024 sequences
# of 4,096 tokens) at 4K context.
BATCH_TOKENS = 1024 * 4096
B = 10**9


def printed_configs(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> dict:
    """Run name -> the config `mathcorpus train --print-config` prints for it."""
    plan = experiment_plan(path, tmp_path / "out", ["runs/shards/math", "runs/shards/code"])
    printed = {}
    for run, document in plan.documents.items():
        if run in plan.from_runs:  # as it will be once the earlier run has finished
            Path(document["init"]["path"]).mkdir(parents=True)
        config_file = tmp_path / f"{run}.json"
        config_file.write_text(json.dumps(document))
        assert train_main(["--config", str(config_file), "--print-config"]) == 0
        printed[run] = json.loads(capsys.readouterr().out)
    return printed


def check_paper_shape(run: str, printed: dict) -> None:
    config = config_from_dict(printed)
    scale = run_scale(config)
    assert printed["model"]["name"] == "deepseek-llm-1.3b", run
    # DeepSeek-LLM 1.3B with its 102,400-token vocabulary: 1.63B parameters, 1.42B in matmuls
    # (the "1.3B" is DeepSeek-Coder-1.3B's count with a 32,256 vocabulary; docs/trainer.md)
    assert 1.2 * B < scale.matmul_params < scale.params < 1.7 * B, run
    assert printed["packing"]["seq_len"] == 4096  # sec. 2.3: 4K context
    assert printed["train"]["batch_tokens"] == BATCH_TOKENS
    assert printed["optim"]["lr"] == 5.3e-4  # sec. 2.3: the 1.3B peak
    assert printed["optim"]["betas"] == [0.9, 0.95] and printed["optim"]["weight_decay"] == 0.1
    schedule = printed["schedule"]
    assert schedule["kind"] == "multi_step" and schedule["warmup_steps"] == 2000
    assert schedule["milestones"] == [0.8, 0.9] and schedule["factors"] == [0.316, 0.1]


def test_section_5_1_1_paper_trains_550b_tokens_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    printed = printed_configs(SECTION_5_1_1_PAPER, tmp_path, capsys)
    assert list(printed) == ["two_stage", "one_stage"]
    for run, document in printed.items():
        check_paper_shape(run, document)
        scale = run_scale(config_from_dict(document))
        # 400B code + 150B math tokens (sec. 5.1.1), to within one update
        assert 0 <= scale.tokens - 550 * B < BATCH_TOKENS, run
    two = run_scale(config_from_dict(printed["two_stage"]))
    assert two.stage_weights == ({"code": 1.0}, {"math": 1.0})
    assert two.stage_tokens[0] == 400 * B
    assert 0 <= two.stage_tokens[1] - 150 * B < BATCH_TOKENS
    one = run_scale(config_from_dict(printed["one_stage"]))
    assert one.stage_weights == ({"code": 400.0, "math": 150.0},)


def test_code_vs_general_paper_trains_400b_then_150b(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    printed = printed_configs(CODE_VS_GENERAL_PAPER, tmp_path, capsys)
    assert list(printed) == ["code_base", "general_base", "code_then_math", "general_then_math"]
    expected = {"code_base": 400, "general_base": 400, "code_then_math": 150}
    expected["general_then_math"] = 150
    weights = {
        "code_base": {"code": 1.0},
        "general_base": {"text": 1.0},
        "code_then_math": {"math": 1.0},
        "general_then_math": {"math": 1.0},
    }
    for run, document in printed.items():
        check_paper_shape(run, document)
        scale = run_scale(config_from_dict(document))
        assert 0 <= scale.tokens - expected[run] * B < BATCH_TOKENS, run
        assert scale.stage_weights == (weights[run],)
    for arm, base in (("code_then_math", "code_base"), ("general_then_math", "general_base")):
        assert printed[arm]["init"]["kind"] == "checkpoint"
        assert printed[arm]["init"]["path"] == str(
            tmp_path / "out" / base / "checkpoints" / "step-00095368"
        )


def test_gpu_hour_estimates_of_the_paper_scale_files() -> None:
    """6 N D over peak * MFU (an assumed 0.4): printed with -s; the table in docs/trainer.md."""
    assert estimate_gpu_hours(1e9, 1e12, 1e15, 0.5) == pytest.approx(6e21 / 5e14 / 3600)
    with pytest.raises(ValueError):
        estimate_gpu_hours(1e9, 1e12, 1e15, 0.0)
    lines = ["run | N (matmul) | tokens | " + " | ".join(PEAK_BF16_FLOPS) + " (GPU-hours)"]
    totals = dict.fromkeys(PEAK_BF16_FLOPS, 0.0)
    for path in (SECTION_5_1_1_PAPER, CODE_VS_GENERAL_PAPER):
        for run, scale in experiment_scale(path).items():
            hours = {gpu: scale.gpu_hours(peak) for gpu, peak in PEAK_BF16_FLOPS.items()}
            for gpu, value in hours.items():
                totals[gpu] += value
            cells = " | ".join(f"{value:,.0f}" for value in hours.values())
            lines.append(
                f"{path.stem}.{run} | {scale.matmul_params / B:.2f}B | "
                f"{scale.tokens / B:.1f}B | {cells}"
            )
            assert scale.matmul_params == 1_424_066_560
    lines.append("total | | | " + " | ".join(f"{v:,.0f}" for v in totals.values()))
    print("\n".join(lines))
    # 6 x 1.424B x 550B = 4.70e21 FLOPs: ~3,300 H100 SXM hours at 0.4 MFU per 5.1.1 run
    five = experiment_scale(SECTION_5_1_1_PAPER)["two_stage"]
    assert 3_200 < five.gpu_hours(PEAK_BF16_FLOPS["H100 SXM"]) < 3_400


def test_experiment_cli_lists_config_problems(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    from trainer.cli import experiment_main
    from trainer.experiment import SECTION_5_1_1

    code = experiment_main([str(SECTION_5_1_1), "--output", str(tmp_path / "exp")])
    assert code == 2
    err = capsys.readouterr().err
    assert "runs.two_stage: data.manifests is empty" in err
    assert "runs.one_stage: data.manifests is empty" in err
