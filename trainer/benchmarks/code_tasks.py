"""HumanEval and MBPP: prompts, programs from completions, and pass@1 scored in the sandbox.

DeepSeekMath reports code ability on these two (Tables 6/7) to show that math training keeps
coding skill (section 5.1.1). We follow DeepSeek-Coder's evaluation (Evaluation/HumanEval and
Evaluation/MBPP at commit 2f9fd85, the source of the data files) and write our own code:

- HumanEval: the model continues the prompt (imports, signature, docstring). The completion is
  cut at the first stop sequence ("\\ndef", "\\nclass", "\\nif", "\\n#", "\\nprint": a new
  top-level statement ends the function). Program = a fixed header of standard-library imports
  (DeepSeek-Coder's IMPORT_HELPER without numpy, which the sandbox may not have) + prompt +
  completion + the file's `test` (which defines `check` and calls `check(entry_point)`).
- MBPP (test split, task ids 11-510): a 3-shot prompt from tasks 2, 3 and 4 of mbpp.jsonl,
  each "You are an expert Python programmer, and here is your task: {text} Your code should
  pass these tests:\\n\\n{tests}\\n[BEGIN]\\n{code}\\n[DONE]\\n", then the task in the same form
  ending at "[BEGIN]"; generation stops at "[DONE]". Program = the code before "[DONE]" (or
  the first fenced code block, if the model wrote one) + test_setup_code + the asserts.
  Deviation: DeepSeek-Coder leaves out test_setup_code (absent from mbpp_test.jsonl), so task
  367, whose asserts use trees built there, can never pass; we take it from mbpp.jsonl.

pass@1 with greedy decoding is the fraction of problems whose program passes.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trainer.benchmarks.sandbox import Status, run_many

Benchmark = Literal["humaneval", "mbpp"]

HUMANEVAL_STOP: tuple[str, ...] = ("\ndef", "\nclass", "\nif", "\n#", "\nprint")
MBPP_STOP: tuple[str, ...] = ("[DONE]",)
# MBPP task ids of the 3-shot prompt (mbpp.jsonl), as in DeepSeek-Coder and the MBPP paper.
MBPP_FEWSHOT_IDS: tuple[int, ...] = (2, 3, 4)
# Prepended to every HumanEval program (DeepSeek-Coder's IMPORT_HELPER["python"], less numpy).
HUMANEVAL_IMPORTS = "\n".join(
    [
        "import math",
        "import re",
        "import sys",
        "import copy",
        "import datetime",
        "import itertools",
        "import collections",
        "import heapq",
        "import functools",
        "import hashlib",
        "import string",
        "from typing import *",
        "from collections import *",
    ]
)
_FENCED = re.compile(r"```(?:[Pp]ython3?|py)?[ \t]*\n(.*?)```", re.DOTALL)
_CHECK_CALL = re.compile(r"^check\((\w+)\)\s*$", re.MULTILINE)
_CALL = re.compile(r"(?<![\w.])(\w+)\s*\(")
_NOT_ENTRY = frozenset(dir(builtins)) | {"isclose", "math"}
_DEF = re.compile(r"^def (\w+)\s*\(", re.MULTILINE)


@dataclass(frozen=True)
class CodeProblem:
    """One benchmark problem: what the model sees and the pieces of the test program."""

    benchmark: Benchmark
    """"humaneval" or "mbpp"."""
    task_id: str
    """As in the file for HumanEval ("Python/0"); "MBPP/<task_id>" for MBPP."""
    prompt: str
    """The text given to the model (MBPP: the 3-shot prompt, then the task, up to "[BEGIN]")."""
    stop: tuple[str, ...]
    """Generation stops at the first of these; `completion_to_program` cuts there too."""
    test_setup: str
    """Code run after the solution and before the tests (MBPP test_setup_code; HumanEval "")."""
    test: str
    """The tests: HumanEval's `check` function and its call; MBPP's asserts, one a line."""
    entry_point: str
    """The function under test (HumanEval: from `check(name)`; MBPP: the first asserted call)."""
    reference: str
    """The gold solution in completion form: HumanEval canonical_solution (the body after the
    prompt), MBPP the reference code."""


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one problem's completion."""

    task_id: str
    """CodeProblem.task_id."""
    status: Status | Literal["missing"]
    """The sandbox status, or "missing" when no completion was given (counts as failed)."""
    detail: str
    """The sandbox's stderr tail or reason."""


@dataclass(frozen=True)
class CodeScore:
    """pass@1 over a benchmark (greedy decoding: one completion per problem)."""

    pass_at_1: float
    """Fraction of problems passed (0.0 when there are none)."""
    passed: int
    """Problems whose program passed."""
    total: int
    """Problems scored (missing completions included, as failures)."""
    results: list[TaskResult]
    """One per problem, in the order of the problems."""


def _read_jsonl(path: Path, required: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a bad line or a missing field raises ValueError naming both."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            missing = [key for key in required if key not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
            rows.append(row)
    return rows


def load_humaneval(path: Path | str) -> list[CodeProblem]:
    """HumanEval problems from DeepSeek-Coder's humaneval-python.jsonl (or OpenAI's file)."""
    path = Path(path)
    problems = []
    for row in _read_jsonl(path, ("task_id", "prompt", "canonical_solution", "test")):
        found = _CHECK_CALL.findall(row["test"])
        if "entry_point" in row:
            entry = row["entry_point"]
        elif found:
            entry = found[-1]
        else:
            defs = _DEF.findall(row["prompt"])
            if not defs:
                raise ValueError(f"{path}: {row['task_id']}: no entry point")
            entry = defs[-1]
        # OpenAI's file leaves the check call to the harness; DeepSeek-Coder's file has it.
        test = row["test"] if found else f"{row['test']}\n\ncheck({entry})\n"
        stop = tuple(row.get("stop_tokens") or ()) or HUMANEVAL_STOP
        problems.append(
            CodeProblem(
                benchmark="humaneval",
                task_id=str(row["task_id"]),
                prompt=row["prompt"],
                stop=stop,
                test_setup="",
                test=test,
                entry_point=entry,
                reference=row["canonical_solution"],
            )
        )
    return problems


def _mbpp_block(text: str, tests: Sequence[str]) -> str:
    """One task in DeepSeek-Coder's MBPP format, up to and including "[BEGIN]"."""
    joined = "\n".join(tests)
    return (
        f"You are an expert Python programmer, and here is your task: {text} "
        f"Your code should pass these tests:\n\n{joined}\n[BEGIN]"
    )


def mbpp_fewshot_prefix(rows_by_id: Mapping[int, Mapping[str, Any]]) -> str:
    """The 3-shot examples (tasks MBPP_FEWSHOT_IDS, code with CR removed and tabs as 4 spaces)."""
    parts = []
    for task_id in MBPP_FEWSHOT_IDS:
        row = rows_by_id[task_id]
        code = str(row["code"]).replace("\r", "").replace("\t", "    ")
        parts.append(f"{_mbpp_block(row['text'], row['test_list'])}\n{code}\n[DONE]\n")
    return "".join(parts)


def _asserted_function(tests: Sequence[str]) -> str:
    """The first called name in the asserts that is not a builtin or a math helper (else the
    first called name: MBPP/126's function is named `sum`)."""
    calls = [name for test in tests for name in _CALL.findall(test)]
    chosen = [name for name in calls if name not in _NOT_ENTRY] or calls
    return chosen[0] if chosen else ""


def load_mbpp(test_path: Path | str, fewshot_path: Path | str) -> list[CodeProblem]:
    """MBPP test problems (mbpp_test.jsonl) with the 3-shot prompt and test_setup_code taken
    from the full set (mbpp.jsonl)."""
    test_path, fewshot_path = Path(test_path), Path(fewshot_path)
    full = {
        int(row["task_id"]): row
        for row in _read_jsonl(fewshot_path, ("task_id", "text", "code", "test_list"))
    }
    absent = [i for i in MBPP_FEWSHOT_IDS if i not in full]
    if absent:
        raise ValueError(f"{fewshot_path}: few-shot task(s) {absent} absent")
    prefix = mbpp_fewshot_prefix(full)
    problems = []
    for row in _read_jsonl(test_path, ("task_id", "prompt", "code", "test")):
        task_id = int(row["task_id"])
        tests = [str(t).strip() for t in row["test"]]
        problems.append(
            CodeProblem(
                benchmark="mbpp",
                task_id=f"MBPP/{task_id}",
                prompt=prefix + _mbpp_block(row["prompt"], row["test"]),
                stop=MBPP_STOP,
                test_setup=str(full.get(task_id, {}).get("test_setup_code") or ""),
                test="\n".join(tests),
                entry_point=_asserted_function(tests),
                reference=row["code"],
            )
        )
    return problems


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop sequence."""
    cut = len(text)
    for s in stop:
        index = text.find(s)
        if 0 <= index < cut:
            cut = index
    return text[:cut]


def extract_mbpp_code(completion: str) -> str:
    """The code of an MBPP completion: before "[DONE]", without a repeated "[BEGIN]"; the
    first fenced block if the model wrote one."""
    code = completion.split("[DONE]")[0]
    if "[BEGIN]" in code:
        code = code.split("[BEGIN]", 1)[1]
    fenced = _FENCED.search(code)
    if fenced:
        code = fenced.group(1)
    return code.strip("\n")


def completion_to_program(problem: CodeProblem, completion: str) -> str:
    """The program the sandbox runs for `completion` (the model's text after the prompt)."""
    if problem.benchmark == "humaneval":
        body = truncate_at_stop(completion, problem.stop)
        return f"{HUMANEVAL_IMPORTS}\n{problem.prompt}{body}\n\n{problem.test}\n"
    code = extract_mbpp_code(completion)
    return f"{code}\n\n{problem.test_setup}\n{problem.test}\n"


def reference_completions(problems: Sequence[CodeProblem]) -> dict[str, str]:
    """The gold solutions as completions (a sanity check of the harness: pass@1 = 1.0)."""
    out = {}
    for p in problems:
        out[p.task_id] = p.reference if p.benchmark == "humaneval" else f"{p.reference}\n[DONE]"
    return out


def score_completions(
    problems: Sequence[CodeProblem],
    completions: Mapping[str, str],
    workers: int = 2,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> CodeScore:
    """pass@1 of one completion per problem (task_id -> completion text), run in the sandbox
    `workers` at a time. A problem without a completion fails ("missing"); a completion for
    an unknown task_id is a ValueError (completions of another benchmark, most likely)."""
    known = {p.task_id for p in problems}
    unknown = sorted(set(completions) - known)
    if unknown:
        raise ValueError(f"completions for unknown task ids: {unknown[:5]}")
    todo = [p for p in problems if p.task_id in completions]
    runs = run_many(
        [completion_to_program(p, completions[p.task_id]) for p in todo],
        workers=workers,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        site_packages=True,  # completions may import numpy, as DeepSeek-Coder's harness allows
    )
    by_id = {p.task_id: r for p, r in zip(todo, runs, strict=True)}
    results = []
    for p in problems:
        r = by_id.get(p.task_id)
        if r is None:
            results.append(TaskResult(p.task_id, "missing", "no completion"))
        else:
            results.append(TaskResult(p.task_id, r.status, r.detail))
    passed = sum(r.status == "passed" for r in results)
    total = len(results)
    return CodeScore(passed / total if total else 0.0, passed, total, results)
