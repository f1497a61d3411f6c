"""HumanEval and MBPP on the real files: prompts in DeepSeek-Coder's format, every gold
solution passes in the sandbox (pass@1 = 1.0), wrong completions score 0.0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import require_shared
from trainer.benchmarks.code_tasks import (
    HUMANEVAL_STOP,
    CodeProblem,
    completion_to_program,
    extract_mbpp_code,
    load_humaneval,
    load_mbpp,
    reference_completions,
    score_completions,
    truncate_at_stop,
)
from trainer.benchmarks.sandbox import run_python

# Two sandbox processes at a time: the test machines have 2 cores.
WORKERS = 2


def line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


@pytest.fixture(scope="module")
def humaneval_path() -> Path:
    return require_shared("benchmarks", "humaneval", "humaneval-python.jsonl")


@pytest.fixture(scope="module")
def mbpp_paths() -> tuple[Path, Path]:
    return (
        require_shared("benchmarks", "mbpp", "mbpp_test.jsonl"),
        require_shared("benchmarks", "mbpp", "mbpp.jsonl"),
    )


@pytest.fixture(scope="module")
def humaneval(humaneval_path: Path) -> list[CodeProblem]:
    return load_humaneval(humaneval_path)


@pytest.fixture(scope="module")
def mbpp(mbpp_paths: tuple[Path, Path]) -> list[CodeProblem]:
    return load_mbpp(*mbpp_paths)


def test_humaneval_loads_every_problem(humaneval: list[CodeProblem], humaneval_path: Path) -> None:
    assert len(humaneval) == line_count(humaneval_path)
    assert len({p.task_id for p in humaneval}) == len(humaneval)
    first = humaneval[0]
    assert first.entry_point == "has_close_elements"
    assert first.prompt.rstrip().endswith('"""')
    assert first.stop == HUMANEVAL_STOP


def test_mbpp_prompt_is_three_shot(mbpp: list[CodeProblem], mbpp_paths: tuple[Path, Path]) -> None:
    assert len(mbpp) == line_count(mbpp_paths[0])
    p = mbpp[0]
    assert p.task_id == "MBPP/11"
    assert p.entry_point == "remove_Occ"
    assert p.prompt.startswith("You are an expert Python programmer, and here is your task: ")
    assert p.prompt.count("[DONE]") == 3
    assert p.prompt.count("You are an expert Python programmer") == 4
    assert "similar_elements" in p.prompt and "is_not_prime" in p.prompt
    assert "heap_queue_largest" in p.prompt
    assert "\r" not in p.prompt and "\t" not in p.prompt
    assert p.prompt.endswith('assert remove_Occ("PHP","P") == "H"\n[BEGIN]')
    assert p.stop == ("[DONE]",)
    # test_setup_code comes from mbpp.jsonl (the test file lacks it).
    assert "root1 = Node(1)" in next(q for q in mbpp if q.task_id == "MBPP/367").test_setup


def test_humaneval_gold_solutions_all_pass(humaneval: list[CodeProblem]) -> None:
    score = score_completions(humaneval, reference_completions(humaneval), workers=WORKERS)
    failures = [
        (r.task_id, r.status, r.detail[-200:]) for r in score.results if r.status != "passed"
    ]
    assert failures == []
    assert score.pass_at_1 == 1.0 and score.total == len(humaneval)


def test_mbpp_gold_solutions_all_pass(mbpp: list[CodeProblem]) -> None:
    score = score_completions(mbpp, reference_completions(mbpp), workers=WORKERS)
    failures = [
        (r.task_id, r.status, r.detail[-200:]) for r in score.results if r.status != "passed"
    ]
    assert failures == []
    assert score.pass_at_1 == 1.0 and score.total == len(mbpp)


def test_humaneval_wrong_completions_score_zero(humaneval: list[CodeProblem]) -> None:
    # A quarter of the problems each ("return None" and "pass"): the gold runs above already
    # cover every problem, and each full pass over 164 costs 10-20 s on 2 busy cores.
    none, empty = humaneval[::4], humaneval[1::4]
    wrong = {p.task_id: "    return None\n" for p in none}
    wrong |= {p.task_id: "    pass\n" for p in empty}
    assert score_completions(none + empty, wrong, workers=WORKERS).pass_at_1 == 0.0


def test_mbpp_wrong_completions_score_zero(mbpp: list[CodeProblem]) -> None:
    some = mbpp[::10]  # 50 of the 500 (time, as above)
    wrong = {p.task_id: f"def {p.entry_point}(*args):\n    return None\n[DONE]" for p in some}
    assert score_completions(some, wrong, workers=WORKERS).pass_at_1 == 0.0


def test_humaneval_completion_is_cut_at_stop_sequences(humaneval: list[CodeProblem]) -> None:
    p = humaneval[0]
    # What a base model writes after the function: more top-level code that would fail.
    tail = "\n\ndef main():\n    raise SystemExit(1)\n\nprint(main())\n"
    program = completion_to_program(p, p.reference + tail)
    assert "def main" not in program
    assert run_python(program).passed
    assert truncate_at_stop("a\n#b\nif c", HUMANEVAL_STOP) == "a"


def test_mbpp_code_extraction() -> None:
    assert (
        extract_mbpp_code("def f():\n    return 1\n[DONE]\nmore text") == "def f():\n    return 1"
    )
    assert extract_mbpp_code("[BEGIN]\nx = 1\n[DONE]") == "x = 1"
    fenced = "Here it is:\n```python\ndef f():\n    return 2\n```\nDone.[DONE]"
    assert extract_mbpp_code(fenced) == "def f():\n    return 2"


def test_mbpp_program_passes_only_correct_code(mbpp: list[CodeProblem]) -> None:
    p = mbpp[0]
    good = "def remove_Occ(s, ch):\n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n"
    good += "    return s if i < 0 else s[:i] + s[i + 1:]\n[DONE]"
    assert run_python(completion_to_program(p, good)).passed
    early_exit = "import sys\nsys.exit(0)\n[DONE]"
    assert not run_python(completion_to_program(p, early_exit)).passed


def test_missing_and_unknown_completions(mbpp: list[CodeProblem]) -> None:
    some = mbpp[:2]
    score = score_completions(some, {some[0].task_id: f"{some[0].reference}\n[DONE]"})
    assert [r.status for r in score.results] == ["passed", "missing"]
    assert score.pass_at_1 == 0.5
    with pytest.raises(ValueError, match="unknown task ids"):
        score_completions(some, {"Python/0": "    pass\n"})


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "humaneval.jsonl"
    row = {"task_id": "t/0", "prompt": "def f():\n", "canonical_solution": "  return 1\n"}
    row["test"] = "def check(f):\n    assert f() == 1\n\ncheck(f)"
    path.write_text(json.dumps(row) + "\n{not json\n")
    with pytest.raises(ValueError, match=rf"{path.name}:2: not valid JSON"):
        load_humaneval(path)
    path.write_text(json.dumps({"task_id": "t/0"}) + "\n")
    with pytest.raises(ValueError, match=r":1: missing field"):
        load_humaneval(path)
