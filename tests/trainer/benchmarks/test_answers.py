"""Answer extraction and normalisation (trainer/benchmarks/answers.py) on the real benchmark
files: the gold solutions must score 1.0 through the same code that scores generations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import require_shared
from trainer.benchmarks import answers
from trainer.benchmarks.math_tasks import MATH_BENCHMARKS, load_items


def rows(*parts: str) -> list[dict]:
    path = require_shared("benchmarks", *parts)
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def test_gsm8k_gold_solutions_score_one_and_a_wrong_answer_zero() -> None:
    data = rows("gsm8k", "test.jsonl")
    assert len(data) == line_count(require_shared("benchmarks", "gsm8k", "test.jsonl"))
    gold_chains = [answers.gsm8k_gold_chain(r["answer"]) for r in data]
    golds = [answers.gsm8k_gold_answer(r["answer"]) for r in data]
    right = [
        answers.numbers_equal(answers.last_number(c), g)
        for c, g in zip(gold_chains, golds, strict=True)
    ]
    assert sum(right) / len(data) == 1.0
    wrong = [
        answers.numbers_equal(answers.last_number(c + " So maybe 123456789."), g)
        for c, g in zip(gold_chains, golds, strict=True)
    ]
    assert sum(wrong) == 0


@pytest.mark.parametrize("name", ["math_hendrycks/test.jsonl", "math_hendrycks/math500_test.jsonl"])
def test_math_gold_boxed_answers_match_themselves(name: str) -> None:
    data = rows(*name.split("/"))
    boxed = [answers.last_boxed(r["solution"]) for r in data]
    assert None not in boxed
    assert all(answers.math_equal(b, b) for b in boxed)
    if "answer" in data[0]:  # MATH-500 also gives the answer field: the box must equal it
        assert all(answers.math_equal(b, r["answer"]) for b, r in zip(boxed, data, strict=True))


@pytest.mark.parametrize(
    ("predicted", "gold"),
    [
        ("\\frac12", "\\frac{1}{2}"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("\\tfrac34", "\\frac{3}{4}"),
        ("x=3", "3"),
        ("10\\%", "10"),
        ("5\\text{ cm}", "5"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("0.5", "\\frac{1}{2}"),
        ("3/4", "\\frac{3}{4}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("90^\\circ", "90"),
        ("$7$.", "7"),
    ],
)
def test_equivalent_math_forms_match(predicted: str, gold: str) -> None:
    assert answers.math_equal(predicted, gold)


@pytest.mark.parametrize(("predicted", "gold"), [("2", "3"), ("\\frac{1}{3}", "\\frac{1}{2}")])
def test_different_math_answers_do_not_match(predicted: str, gold: str) -> None:
    assert not answers.math_equal(predicted, gold)
    assert not answers.math_equal(None, gold)


def test_last_boxed_balances_braces_and_takes_the_last_box() -> None:
    text = "first \\boxed{1} then \\boxed{\\frac{a}{b^{2}}} end"
    assert answers.last_boxed(text) == "\\frac{a}{b^{2}}"
    assert answers.last_boxed("\\boxed 5$") == "5"
    assert answers.last_boxed("\\boxed{\\frac{1}{") is None  # cut inside the box
    final = "so.\nFinal Answer: The final answer is $24$. I hope it is correct."
    assert answers.math_answer(final) == "24"


def test_numbers_are_normalised() -> None:
    assert answers.last_number("costs $1,234.50 in all.") == "1234.5"
    assert answers.numbers_equal("18.00", "18")
    assert answers.numbers_equal("72/180", "2/5")  # CMATH writes unreduced fractions
    assert answers.last_number("no digits") is None


def test_cmath_gold_answers_score_one() -> None:
    data = rows("cmath", "test.jsonl")
    assert all(
        answers.numbers_equal(answers.last_number_or_fraction(r["golden"]), r["golden"])
        for r in data
    )


def test_every_benchmark_loads_with_the_file_s_item_count() -> None:
    root = require_shared("benchmarks")
    for bench in MATH_BENCHMARKS.values():
        items = load_items(bench, root)
        assert len(items) == line_count(root / bench.path), bench.name
        if bench.kind == "choice":
            assert all(
                len(it.choices) >= 4 and 0 <= it.gold_index < len(it.choices) for it in items
            )
        assert len(load_items(bench, root, limit=3)) == 3
