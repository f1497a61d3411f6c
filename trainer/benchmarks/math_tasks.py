"""The math benchmarks: their local files, prompts, stop strings and scoring rules.

Generation (greedy, chain of thought): GSM8K 8-shot with the exemplars of Wei et al. 2022 (as
lm-eval's `gsm8k_cot`; answer = last number), MATH 4-shot with Minerva's exemplars (Lewkowycz
et al. 2022, as lm-eval's `minerva_math`; answer = last `\\boxed{}`), CMATH zero-shot (our prompt;
answer = last number or fraction). Multiple choice by log-likelihood: MMLU-STEM (letters, as
lm-eval's `mmlu`), AQuA-RAT and MathQA (the choice texts, as lm-eval's `mathqa`). Each item also
carries the gold text whose NLL is reported. Files are read from the benchmark root (docs/eval.md);
nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainer.benchmarks import answers

# --- GSM8K: the 8 exemplars of Wei et al. 2022 (chain-of-thought prompting, appendix G),
# as lm-eval's gsm8k-cot and DeepSeekMath's few-shot GSM8K use them.
GSM8K_EXEMPLARS: tuple[tuple[str, str], ...] = (
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. "
        "After they are done, there will be 21 trees. How many trees did the grove workers plant "
        "today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. "
        "So there must have been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the "
        "parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they "
        "have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = "
        "74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How "
        "many lollipops did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave "
        "Denny 20 - 12 = 8. The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many "
        "toys does he have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 "
        "more toys. 5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each "
        "day, from monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So "
        "5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 "
        "more. How many golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. "
        "After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she "
        "has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
    ),
)

# --- MATH: Minerva's 4 exemplars (Lewkowycz et al. 2022, appendix D.2), as lm-eval's
# minerva_math uses them: a boxed answer and the "Final Answer" line.
MATH_EXEMPLARS: tuple[tuple[str, str], ...] = (
    (
        "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, "
        "so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal "
        "to zero, so $5-x>0$, which gives $x<5$. Therefore, the domain of the expression is "
        "$\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct.",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find "
        "$\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) "
        "= (2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is "
        "correct.",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights "
        "instead, how many times must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of "
        "$2\\cdot 12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead "
        "for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  "
        "Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n"
        "\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final "
        "answer is $16$. I hope it is correct.",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n"
        "\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find "
        "$\\frac{a}{b},$ assuming $b$ is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n"
        "$$6y-9x=-\\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have\n\n"
        "$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: The "
        "final answer is $-\\frac{2}{3}$. I hope it is correct.",
    ),
)

Kind = Literal["generate", "choice", "code"]


@dataclass(frozen=True)
class Item:
    """One benchmark question, ready for the model."""

    id: str
    """Stable id within the benchmark (the file's id field, else the line number)."""
    prompt: str
    """The text the model continues (few-shot exemplars included)."""
    gold: str
    """The gold answer as compared (a number, a boxed answer, a choice letter)."""
    gold_text: str
    """The continuation whose mean NLL is reported (gold solution, gold choice text, ...)."""
    choices: tuple[str, ...] = ()
    """Multiple choice: the continuations scored, in order; empty otherwise."""
    gold_index: int = -1
    """Multiple choice: index of the gold continuation in `choices`."""
    data: dict[str, Any] = field(default_factory=dict)
    """The original row (code benchmarks hand it to the sandbox scorer)."""


@dataclass(frozen=True)
class Benchmark:
    """How one benchmark is read, prompted and scored."""

    name: str
    """Name on the command line and in the outputs."""
    kind: Kind
    """`generate` (greedy chain of thought), `choice` (log-likelihood) or `code` (pass@1)."""
    path: str
    """File under the benchmark root."""
    load: Callable[[list[dict[str, Any]]], list[Item]]
    """Rows of the JSONL file -> items, in file order."""
    stop: tuple[str, ...] = ()
    """Generation stops at the first of these (the text is cut before it)."""
    max_new_tokens: int = 0
    """Generation budget (tokens)."""
    extract: Callable[[str], str | None] | None = None
    """Generated text -> the answer compared with Item.gold."""
    is_correct: Callable[[str | None, str], bool] | None = None
    """(extracted, gold) -> correct."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def gsm8k_prompt(question: str) -> str:
    shots = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in GSM8K_EXEMPLARS)
    return f"{shots}Q: {question}\nA:"


def math_prompt(problem: str) -> str:
    shots = "".join(f"Problem:\n{p}\n\nSolution:\n{s}\n\n" for p, s in MATH_EXEMPLARS)
    return f"{shots}Problem:\n{problem}\n\nSolution:"


def _gsm8k(rows: list[dict[str, Any]]) -> list[Item]:
    return [
        Item(
            id=str(i),
            prompt=gsm8k_prompt(row["question"]),
            gold=answers.gsm8k_gold_answer(row["answer"]),
            gold_text=" " + answers.gsm8k_gold_chain(row["answer"]),
        )
        for i, row in enumerate(rows)
    ]


def _math(rows: list[dict[str, Any]]) -> list[Item]:
    items = []
    for i, row in enumerate(rows):
        gold = answers.last_boxed(row["solution"]) or ""
        final = f"\nFinal Answer: The final answer is ${gold}$. I hope it is correct."
        items.append(
            Item(
                id=str(row.get("idx", row.get("unique_id", i))),
                prompt=math_prompt(row["problem"]),
                gold=gold,
                gold_text="\n" + row["solution"] + final,
            )
        )
    return items


def _cmath(rows: list[dict[str, Any]]) -> list[Item]:
    return [
        Item(
            id=str(i),
            prompt=f"问题：{row['question']}\n答案：",
            gold=str(row["golden"]),
            gold_text=str(row["golden"]),
        )
        for i, row in enumerate(rows)
    ]


LETTERS = "ABCDE"


def _mmlu(rows: list[dict[str, Any]]) -> list[Item]:
    items = []
    for i, row in enumerate(rows):
        topic = str(row.get("topic", "")).replace("_", " ")
        options = "".join(f"{LETTERS[k]}. {o}\n" for k, o in enumerate(row["options"]))
        prompt = (
            f"The following are multiple choice questions (with answers) about {topic}.\n\n"
            f"{row['question'].strip()}\n{options}Answer:"
        )
        gold_index = LETTERS.index(row["answer"])
        choices = tuple(f" {LETTERS[k]}" for k in range(len(row["options"])))
        items.append(
            Item(
                id=str(row.get("id", i)),
                prompt=prompt,
                gold=row["answer"],
                gold_text=choices[gold_index],
                choices=choices,
                gold_index=gold_index,
            )
        )
    return items


def _aqua(rows: list[dict[str, Any]]) -> list[Item]:
    items = []
    for i, row in enumerate(rows):
        # "A)5(√3 + 1)" -> "5(√3 + 1)"
        texts = [re.sub(r"^[A-E]\)\s*", "", o).strip() for o in row["options"]]
        choices = tuple(f" {t}" for t in texts)
        gold_index = LETTERS.index(row["correct"])
        items.append(
            Item(
                id=str(i),
                prompt=f"Question: {row['question'].strip()}\nAnswer:",
                gold=row["correct"],
                gold_text=choices[gold_index],
                choices=choices,
                gold_index=gold_index,
            )
        )
    return items


def mathqa_options(options: str) -> list[str]:
    """`a ) 12 , b ) 16 , ...` -> ["12", "16", ...] (lm-eval's mathqa split)."""
    found = re.findall(r"[abcd] \) .*?, |e \) .*?$", options)
    return [re.sub(r"^[a-e] \) ", "", o).rstrip(", ").strip() for o in found]


def _mathqa(rows: list[dict[str, Any]]) -> list[Item]:
    items = []
    for i, row in enumerate(rows):
        choices = tuple(f" {t}" for t in mathqa_options(row["options"]))
        gold_index = "abcde".index(row["correct"])
        items.append(
            Item(
                id=str(i),
                prompt=f"Question: {row['problem'].strip()}\nAnswer:",
                gold=row["correct"],
                gold_text=choices[gold_index] if gold_index < len(choices) else "",
                choices=choices,
                gold_index=gold_index,
            )
        )
    return items


MATH_BENCHMARKS: dict[str, Benchmark] = {
    "gsm8k": Benchmark(
        name="gsm8k",
        kind="generate",
        path="gsm8k/test.jsonl",
        load=_gsm8k,
        # lm-eval's gsm8k-cot stops: the next exemplar or a blank line. 256 tokens as lm-eval.
        stop=("Q:", "\n\n"),
        max_new_tokens=256,
        extract=answers.last_number,
        is_correct=answers.numbers_equal,
    ),
    "math": Benchmark(
        name="math",
        kind="generate",
        path="math_hendrycks/test.jsonl",
        load=_math,
        stop=("Problem:",),  # lm-eval's minerva_math; 512 tokens as DeepSeekMath's harness
        max_new_tokens=512,
        extract=answers.math_answer,
        is_correct=answers.math_equal,
    ),
    "math500": Benchmark(
        name="math500",
        kind="generate",
        path="math_hendrycks/math500_test.jsonl",
        load=_math,
        stop=("Problem:",),
        max_new_tokens=512,
        extract=answers.math_answer,
        is_correct=answers.math_equal,
    ),
    "cmath": Benchmark(
        name="cmath",
        kind="generate",
        path="cmath/test.jsonl",
        load=_cmath,
        stop=("问题：", "\n\n"),
        max_new_tokens=256,
        extract=answers.last_number_or_fraction,
        is_correct=answers.numbers_equal,
    ),
    "mmlu_stem": Benchmark(
        name="mmlu_stem", kind="choice", path="mmlu_stem/test.jsonl", load=_mmlu
    ),
    "aqua_rat": Benchmark(name="aqua_rat", kind="choice", path="aqua_rat/test.jsonl", load=_aqua),
    "mathqa": Benchmark(name="mathqa", kind="choice", path="mathqa/test.jsonl", load=_mathqa),
}


def load_items(benchmark: Benchmark, root: Path, limit: int | None = None) -> list[Item]:
    """The first `limit` items (all when None) of a benchmark, in file order."""
    path = root / benchmark.path
    if not path.is_file():
        raise FileNotFoundError(f"{benchmark.name}: {path} is absent (benchmark root {root})")
    rows = read_jsonl(path)
    return benchmark.load(rows if limit is None else rows[:limit])
