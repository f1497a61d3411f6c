"""Benchmark files -> benchmark items whose texts (questions AND answers) must not leak.

Readers for the `gsm8k`, `math_hendrycks`, `cmath`, `mathqa`, `aqua_rat`, `mmlu_stem` and generic
`jsonl` layouts; a spec is `[FORMAT=]PATH` (a file, or a folder of `*.jsonl`). Fields read, item
ids, benchmark names and format detection: docs/stages/decontaminate.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.core.config_errors import ConfigError
from pipeline.core.files import match_files

KNOWN_FORMATS: tuple[str, ...] = (
    "gsm8k",
    "math_hendrycks",
    "cmath",
    "mathqa",
    "aqua_rat",
    "mmlu_stem",
)
FORMATS: tuple[str, ...] = (*KNOWN_FORMATS, "jsonl")
# The generic loader's default text fields: the union of the usual names, so AGIEval,
# GSM8K-like and MATH-like files load without options.
DEFAULT_TEXT_FIELDS: tuple[str, ...] = (
    "passage",
    "question",
    "problem",
    "options",
    "answer",
    "solution",
    "rationale",
)
DEFAULT_ID_FIELD = "id"
# Bad lines listed in one error before "... and N more".
MAX_LISTED_PROBLEMS = 10

_GSM8K_CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True, slots=True)
class BenchmarkItem:
    """One benchmark problem and the texts that identify it."""

    benchmark: str
    """Benchmark name (docs/stages/decontaminate.md), e.g. `gsm8k` or `math_hendrycks/test`."""
    item_id: str
    """The item's id in its file (its own id field, else the 0-based line number)."""
    texts: tuple[tuple[str, str], ...]
    """(field, text) pairs: each text is matched on its own (e.g. question, solution)."""


@dataclass(frozen=True, slots=True)
class BenchmarkSpec:
    """A benchmark file to load and how."""

    path: str
    format: str
    name: str


def _read_lines(path: str) -> list[str]:
    with FileSystems.open(path) as fh:
        data = fh.read()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError("benchmark file", [f"{path}: not UTF-8 ({exc})"]) from None


def _records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line; ConfigError listing all bad lines."""
    problems: list[str] = []
    records: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(_read_lines(path)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number + 1}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{path}:{number + 1}: a JSON {type(record).__name__}, not an object")
            continue
        records.append((number, record))
    if problems:
        extra = len(problems) - MAX_LISTED_PROBLEMS
        listed = problems[:MAX_LISTED_PROBLEMS] + ([f"... and {extra} more"] if extra > 0 else [])
        raise ConfigError("benchmark file", listed)
    yield from records


def _as_text(value: Any) -> str | None:
    """A field value as text: strings as they are, lists joined by a space, numbers printed."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        parts = [_as_text(v) for v in value]
        return " ".join(p for p in parts if p)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _require(record: dict[str, Any], fields: Sequence[str], where: str) -> None:
    missing = [f for f in fields if not isinstance(record.get(f), (str, list))]
    if missing:
        raise ConfigError("benchmark file", [f"{where}: no text in field(s) {', '.join(missing)}"])


def _texts(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    return tuple((name, text) for name, text in pairs if text and text.strip())


def gsm8k_answer_text(answer: str) -> str:
    """GSM8K's solution as a reader sees it: the `<<3*4=12>>` calculator notes removed."""
    return _GSM8K_CALCULATOR.sub("", answer)


def _item_gsm8k(name: str, number: int, r: dict[str, Any], where: str) -> BenchmarkItem:
    _require(r, ("question", "answer"), where)
    answer = gsm8k_answer_text(r["answer"])
    # Pages copying the raw dataset keep the notes, which break every n-gram across them.
    raw = r["answer"] if answer != r["answer"] else None
    texts = _texts(("question", r["question"]), ("answer", answer), ("answer_raw", raw))
    return BenchmarkItem(name, str(number), texts)


def _item_math(name: str, number: int, r: dict[str, Any], where: str) -> BenchmarkItem:
    _require(r, ("problem", "solution"), where)
    item_id = r.get("unique_id", r.get("idx", number))
    return BenchmarkItem(
        name, str(item_id), _texts(("problem", r["problem"]), ("solution", r["solution"]))
    )


def _item_cmath(name: str, number: int, r: dict[str, Any], where: str) -> BenchmarkItem:
    _require(r, ("question",), where)
    texts = _texts(("question", r["question"]), ("golden", _as_text(r.get("golden"))))
    return BenchmarkItem(name, str(number), texts)


def _with_options(question: str, options: Any) -> str | None:
    joined = _as_text(options)
    return f"{question}\n{joined}" if joined else None


def _item_mathqa(name: str, number: int, r: dict[str, Any], where: str) -> BenchmarkItem:
    _require(r, ("problem",), where)
    texts = _texts(
        ("problem", r["problem"]),
        ("problem_options", _with_options(r["problem"], r.get("options"))),
        ("rationale", _as_text(r.get("rationale"))),
    )
    return BenchmarkItem(name, str(number), texts)


def _item_aqua(name: str, number: int, r: dict[str, Any], where: str) -> BenchmarkItem:
    _require(r, ("question",), where)
    texts = _texts(
        ("question", r["question"]),
        ("question_options", _with_options(r["question"], r.get("options"))),
        ("rationale", _as_text(r.get("rationale"))),
    )
    return BenchmarkItem(name, str(number), texts)


def _item_mmlu(name: str, number: int, r: dict[str, Any], where: str) -> BenchmarkItem:
    _require(r, ("question",), where)
    item_id = f"{r['topic']}/{r['id']}" if "topic" in r and "id" in r else str(number)
    texts = _texts(
        ("question", r["question"]),
        ("question_options", _with_options(r["question"], r.get("options"))),
    )
    return BenchmarkItem(name, item_id, texts)


_ITEM_BUILDERS = {
    "gsm8k": _item_gsm8k,
    "math_hendrycks": _item_math,
    "cmath": _item_cmath,
    "mathqa": _item_mathqa,
    "aqua_rat": _item_aqua,
    "mmlu_stem": _item_mmlu,
}


def detect_format(record: dict[str, Any]) -> str:
    """The known format whose fields a record has; `jsonl` when none fits."""
    keys = set(record)
    if {"question", "golden"} <= keys:
        return "cmath"
    if {"problem", "solution"} <= keys:
        return "math_hendrycks"
    if {"problem", "rationale", "options"} <= keys and isinstance(record["options"], str):
        return "mathqa"
    if {"question", "options", "rationale", "correct"} <= keys:
        return "aqua_rat"
    if {"question", "options", "answer", "topic"} <= keys:
        return "mmlu_stem"
    if keys == {"question", "answer"} and "####" in str(record["answer"]):
        return "gsm8k"
    return "jsonl"


def load_items(
    spec: BenchmarkSpec,
    text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
    id_field: str | None = DEFAULT_ID_FIELD,
) -> list[BenchmarkItem]:
    """Every item of one benchmark file. `text_fields`/`id_field` are for format `jsonl`."""
    items: list[BenchmarkItem] = []
    if spec.format == "jsonl":
        for number, record in _records(spec.path):
            texts = _texts(*((f, _as_text(record.get(f))) for f in text_fields))
            raw_id = record.get(id_field) if id_field else None
            item_id = str(raw_id) if raw_id is not None else str(number)
            items.append(BenchmarkItem(spec.name, item_id, texts))
        return items
    build = _ITEM_BUILDERS.get(spec.format)
    if build is None:
        raise ConfigError(
            "benchmarks", [f"unknown format {spec.format!r}: choose one of {FORMATS}"]
        )
    for number, record in _records(spec.path):
        items.append(build(spec.name, number, record, f"{spec.path}:{number + 1}"))
    return items


def _stem(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".jsonl", ".json", ".ndjson"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _first_record(path: str) -> dict[str, Any] | None:
    for _, record in _records(path):
        return record
    return None


def resolve_specs(specs: Iterable[str]) -> list[BenchmarkSpec]:
    """`[FORMAT=]PATH` strings -> one BenchmarkSpec per file, with unique names.

    A PATH that is a folder means every `*.jsonl` directly in it. ConfigError lists every
    problem (no such file, unknown format, empty file, duplicate names).
    """
    problems: list[str] = []
    found: list[tuple[str, str]] = []  # (path, format)
    for spec in specs:
        fmt, sep, path = spec.partition("=")
        if not sep or fmt not in FORMATS:
            # A path that contains `=` (and no known FORMAT= prefix) is still a path.
            fmt, path = "", spec
        files = match_files(path.rstrip("/") + "/*.jsonl") or match_files(path)
        if not files and sep and "/" not in spec.partition("=")[0]:
            prefix = spec.partition("=")[0]
            problems.append(f"{spec!r}: unknown format {prefix!r}; choose one of {FORMATS}")
            continue
        if not files:
            problems.append(f"{spec!r}: no benchmark file there")
            continue
        for f in files:
            if fmt:
                found.append((f, fmt))
                continue
            try:
                first = _first_record(f)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            if first is None:
                problems.append(f"{f}: empty benchmark file")
                continue
            found.append((f, detect_format(first)))
    if problems:
        raise ConfigError("benchmarks", problems)
    found = list(dict.fromkeys(found))
    per_format: dict[str, int] = {}
    for _, fmt in found:
        per_format[fmt] = per_format.get(fmt, 0) + 1
    resolved: list[BenchmarkSpec] = []
    for path, fmt in found:
        if fmt == "jsonl":
            name = _stem(path)
        elif per_format[fmt] > 1:
            name = f"{fmt}/{_stem(path)}"
        else:
            name = fmt
        resolved.append(BenchmarkSpec(path, fmt, name))
    names: dict[str, list[str]] = {}
    for s in resolved:
        names.setdefault(s.name, []).append(s.path)
    clashes = [
        f"benchmark name {n!r} is used by {', '.join(paths)}: rename one of the files"
        for n, paths in names.items()
        if len(paths) > 1
    ]
    if clashes:
        raise ConfigError("benchmarks", clashes)
    return resolved


def load_benchmarks(
    specs: Iterable[str],
    text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
    id_field: str | None = DEFAULT_ID_FIELD,
) -> list[BenchmarkItem]:
    """All items of all benchmark specs (`[FORMAT=]PATH`), in spec then file order."""
    items: list[BenchmarkItem] = []
    for spec in resolve_specs(specs):
        items.extend(load_items(spec, text_fields, id_field))
    return items
