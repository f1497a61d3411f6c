"""Reading and writing the train config: file -> document -> typed dataclasses -> JSON.

A config file (TOML, YAML or JSON) is read into a plain document (dicts and lists),
`key.sub=value` overrides are applied to it, and it is converted into the dataclasses of
trainer/train_config.py field by field, following their type hints. Wrong types and unknown
keys are collected along the way; the TrainConfig constructor adds the value checks of every
section, and one `TrainConfigError` lists them all. `write_config` writes the resolved config as
`train_config.json`, which `load_train_config` reads back.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from trainer.run_files import CONFIG_FILE
from trainer.train_config import TrainConfig, TrainConfigError


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _convert(value: Any, hint: Any, where: str, problems: list[str]) -> Any:
    """`value` as type `hint`, or a problem appended and None returned."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where, problems)
    if origin is Literal:
        if value not in args:
            problems.append(f"{where} must be one of {list(args)}, got {value!r}")
            return None
        return value
    if dataclasses.is_dataclass(hint):
        return _dataclass_from(value, hint, where, problems)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            problems.append(f"{where} must be a list, got {type(value).__name__} {value!r}")
            return None
        item = args[0]
        if len(args) == 2 and args[1] is not Ellipsis and len(value) != 2:
            problems.append(f"{where} must have 2 entries, got {len(value)}")
            return None
        out = [_convert(v, item, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(out)
    if origin is dict:
        if not isinstance(value, Mapping):
            problems.append(f"{where} must be a table (key = value), got {value!r}")
            return None
        return {str(k): _convert(v, args[1], f"{where}.{k}", problems) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            problems.append(f"{where} must be true or false, got {value!r}")
        return value if isinstance(value, bool) else None
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where} must be an integer, got {value!r}")
            return None
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where} must be a number, got {value!r}")
            return None
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            problems.append(f"{where} must be a string, got {value!r}")
            return None
        return value
    problems.append(f"{where}: unsupported type {_type_name(hint)}")
    return None


def _dataclass_from(data: Any, cls: type, where: str, problems: list[str]) -> Any:
    """`cls` built by its constructor from a mapping, or None when the constructor refuses.

    A bad field is reported and left out, so it takes its default and the checks of the rest
    still run. A constructor that checks its values (TrainConfig) raises TrainConfigError; its
    problems are added after those of the fields, so one error can list everything.
    """
    if not isinstance(data, Mapping):
        problems.append(f"{where or 'config'} must be a table, got {data!r}")
        data = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in fields:
            problems.append(f"{prefix}{key}: unknown key (known: {', '.join(fields)})")
    kwargs = {}
    for name in fields:
        if name in data:
            before = len(problems)
            value = _convert(data[name], hints[name], f"{prefix}{name}", problems)
            # A nested section keeps its good fields even when some of its fields were bad
            # (None: its constructor refused it, so it keeps its default).
            nested = dataclasses.is_dataclass(hints[name])
            if len(problems) == before or (nested and value is not None):
                kwargs[name] = value
    try:
        return cls(**kwargs)
    except TrainConfigError as exc:
        problems += [f"{prefix}{p}" for p in exc.problems]
        return None


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """A checked TrainConfig from a document; one TrainConfigError lists every problem."""
    problems: list[str] = []
    config = _dataclass_from(data, TrainConfig, "", problems)
    if problems:
        raise TrainConfigError(problems)
    return config


def read_config_document(path: str | Path) -> dict[str, Any]:
    """The document in a .toml, .yaml/.yml or .json file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrainConfigError([f"cannot read config file {path}: {exc}"]) from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise TrainConfigError([f"{path}: config files are .toml, .yaml, .yml or .json"])
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, TrainConfigError):
            raise
        raise TrainConfigError([f"{path} is not valid {suffix[1:].upper()}: {exc}"]) from exc
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        raise TrainConfigError([f"{path} is not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise TrainConfigError([f"{path}: the top level must be a table / mapping"])
    return data


def parse_override_value(text: str) -> Any:
    """A TOML value (`3`, `1e-4`, `true`, `[1, 2]`, `"x"`, `{a = 1}`), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each `key.sub=value` set (tables created as needed)."""
    result = json.loads(json.dumps(data))  # deep copy of plain data
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            problems.append(f"override {item!r} is not key.sub=value")
            continue
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"override {item!r}: {part} is not a table")
                break
            node = child
        else:
            node[parts[-1]] = parse_override_value(value.strip())
    if problems:
        raise TrainConfigError(problems)
    return result


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a config file, apply the overrides, check everything; one error lists it all."""
    return config_from_dict(apply_overrides(read_config_document(path), overrides))


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able data (tuples become lists) that config_from_dict reads back."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def write_config(config: TrainConfig, folder: str | Path) -> Path:
    """Write train_config.json into `folder` (temp file, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config_to_dict(config), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
