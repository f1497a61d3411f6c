"""Benchmark loaders on the real files in ../shared/data/benchmarks, the generic JSONL loader
(AGIEval layout, the demo's benchmark) and the errors a bad benchmark file gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathcorpus.sample_crawl import write_sample_crawl
from pipeline.core.config_errors import ConfigError
from pipeline.decontaminate.benchmarks import (
    BenchmarkSpec,
    detect_format,
    gsm8k_answer_text,
    load_benchmarks,
    load_items,
    resolve_specs,
)
from tests.helpers import require_shared

# (folder, file, detected format, rows) of the real benchmark files.
REAL_FILES = [
    ("gsm8k", "test.jsonl", "gsm8k", 1319),
    ("math_hendrycks", "test.jsonl", "math_hendrycks", 5000),
    ("math_hendrycks", "math500_test.jsonl", "math_hendrycks", 500),
    ("cmath", "test.jsonl", "cmath", 1098),
    ("mathqa", "test.jsonl", "mathqa", 1000),
    ("aqua_rat", "test.jsonl", "aqua_rat", 254),
    ("mmlu_stem", "test.jsonl", "mmlu_stem", 3018),
    ("mmlu_stem", "mmlu_math_subset.jsonl", "mmlu_stem", 1064),
]


@pytest.mark.parametrize(("folder", "name", "fmt", "rows"), REAL_FILES)
def test_real_files_load_with_detected_format(folder: str, name: str, fmt: str, rows: int) -> None:
    path = require_shared("benchmarks", folder, name)
    (spec,) = resolve_specs([str(path)])
    assert spec.format == fmt
    items = load_items(spec)
    assert len(items) == rows
    assert len({i.item_id for i in items}) == rows  # ids are unique within a file
    for item in items:
        fields = dict(item.texts)
        assert any(f in fields for f in ("question", "problem"))


def test_questions_and_answers_both_count() -> None:
    gsm = load_items(
        BenchmarkSpec(str(require_shared("benchmarks", "gsm8k", "test.jsonl")), "gsm8k", "gsm8k")
    )[0]
    fields = dict(gsm.texts)
    assert fields["question"].startswith("Janet\u2019s ducks lay 16 eggs")
    # The calculator notes are gone; the reasoning and the final answer stay.
    assert "<<" not in fields["answer"]
    assert "Janet sells 16 - 3 - 4 = 9 duck eggs a day." in fields["answer"]
    assert fields["answer"].endswith("#### 18")
    # ... and the raw answer too, for pages that copied the dataset with its notes.
    assert fields["answer_raw"].count("<<") == 2

    math = load_items(
        BenchmarkSpec(
            str(require_shared("benchmarks", "math_hendrycks", "math500_test.jsonl")),
            "math_hendrycks",
            "math500",
        )
    )[0]
    assert math.item_id == "test/precalculus/807.json"
    assert set(dict(math.texts)) == {"problem", "solution"}

    mmlu = load_items(
        BenchmarkSpec(
            str(require_shared("benchmarks", "mmlu_stem", "test.jsonl")), "mmlu_stem", "mmlu"
        )
    )[0]
    assert mmlu.item_id == "abstract_algebra/0"
    assert dict(mmlu.texts)["question_options"].endswith("0 4 2 6")

    aqua = load_items(
        BenchmarkSpec(
            str(require_shared("benchmarks", "aqua_rat", "test.jsonl")), "aqua_rat", "aqua"
        )
    )[0]
    assert set(dict(aqua.texts)) == {"question", "question_options", "rationale"}

    cmath = load_items(
        BenchmarkSpec(str(require_shared("benchmarks", "cmath", "test.jsonl")), "cmath", "cmath")
    )[0]
    assert dict(cmath.texts) == {
        "question": "妈咪买了3盒茶叶，一盒茶叶有6小包，一共买了多少小包茶叶？",
        "golden": "18",
    }


def test_gsm8k_calculator_notes() -> None:
    assert gsm8k_answer_text("He pays 3*4=<<3*4=12>>12 dollars") == "He pays 3*4=12 dollars"


def test_folder_specs_and_names(shared_data: Path) -> None:
    specs = resolve_specs(
        [
            str(shared_data / "benchmarks" / d)
            for d in ("gsm8k", "math_hendrycks", "mmlu_stem", "cmath")
        ]
    )
    names = sorted(s.name for s in specs)
    # One format with two files gets <format>/<stem> names.
    assert names == [
        "cmath",
        "gsm8k",
        "math_hendrycks/math500_test",
        "math_hendrycks/test",
        "mmlu_stem/mmlu_math_subset",
        "mmlu_stem/test",
    ]


def test_explicit_format_prefix(shared_data: Path) -> None:
    path = shared_data / "benchmarks" / "gsm8k" / "test.jsonl"
    (spec,) = resolve_specs([f"jsonl={path}"])
    assert (spec.format, spec.name) == ("jsonl", "test")
    items = load_items(spec)
    assert dict(items[0].texts)["answer"].count("<<") == 2  # generic: text as it is


def test_generic_loader_agieval_layout(tmp_path: Path) -> None:
    # AGIEval's math subsets: passage (often null), question, options, label, answer.
    records = [
        {
            "passage": None,
            "question": "If $3x + 7 = 25$, what is the value of $6x + 5$?",
            "options": ["(A)11", "(B)31", "(C)41", "(D)50"],
            "label": "C",
            "answer": None,
        },
        {
            "passage": None,
            "question": "What is the remainder when 2024 is divided by 7?",
            "options": None,
            "label": None,
            "answer": "1",
            "other": "ignored",
        },
    ]
    path = tmp_path / "sat-math.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    (spec,) = resolve_specs([str(path)])
    assert (spec.format, spec.name) == ("jsonl", "sat-math")
    items = load_items(spec)
    assert [i.item_id for i in items] == ["0", "1"]
    assert dict(items[0].texts) == {
        "question": records[0]["question"],
        "options": "(A)11 (B)31 (C)41 (D)50",
    }
    assert dict(items[1].texts) == {"question": records[1]["question"], "answer": "1"}
    # Configured fields and id field.
    custom = load_items(spec, text_fields=("question",), id_field="label")
    assert [i.item_id for i in custom] == ["C", "1"]
    assert all(set(dict(i.texts)) == {"question"} for i in custom)


def test_demo_benchmark_loads_through_the_generic_loader(tmp_path: Path) -> None:
    sample = write_sample_crawl(tmp_path / "sample", seed=3, scale=0.02)
    items = load_benchmarks([sample.benchmark_file])
    assert len(items) == 40
    assert {i.benchmark for i in items} == {"demo_bench"}
    assert [i.item_id for i in items[:2]] == ["demo-000", "demo-001"]
    assert all(set(dict(i.texts)) == {"question", "answer"} for i in items)
    assert set(sample.planted_benchmark_ids) <= {i.item_id for i in items}


def test_detect_format() -> None:
    assert detect_format({"question": "q", "answer": "a\n#### 4"}) == "gsm8k"
    assert detect_format({"question": "q", "answer": "4"}) == "jsonl"
    assert detect_format({"problem": "p", "solution": "s"}) == "math_hendrycks"
    assert detect_format({"question": "q", "golden": "1"}) == "cmath"


def test_bad_lines_are_listed_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"question": "ok"}\nnot json\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_benchmarks([f"jsonl={path}"])
    message = str(err.value)
    assert f"{path}:2: not JSON" in message
    assert f"{path}:4: a JSON list, not an object" in message


def test_missing_fields_and_files_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"g.jsonl:1: no text in field\(s\) answer"):
        load_benchmarks([f"gsm8k={path}"])
    with pytest.raises(ConfigError, match="no benchmark file there"):
        resolve_specs([str(tmp_path / "absent.jsonl")])
    with pytest.raises(ConfigError, match="unknown format 'gsm9k'"):
        resolve_specs([f"gsm9k={tmp_path / 'absent.jsonl'}"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty benchmark file"):
        resolve_specs([str(empty)])


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "bench.jsonl").write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="benchmark name 'bench' is used by"):
        resolve_specs([str(tmp_path / "a"), str(tmp_path / "b")])
