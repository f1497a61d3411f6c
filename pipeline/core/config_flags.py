"""Command-line flags made from a config dataclass: one place for a default and its help.

A flag's name, type, default and help all come from the config field (its annotation, its
default and its attribute docstring). `flag(...)` in a field's metadata renames the flag or
hides it; nested config dataclasses add their flags in a group. Pure argparse, no Beam.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pipeline.core.config_errors import ConfigError


@dataclass(frozen=True)
class Flag:
    """How one config field appears on the command line."""

    name: str | None = None
    """The flag (e.g. `--input`); None: `--field-name`, or `--no-field-name` for a field that
    defaults to True."""
    metavar: str | None = None
    """The value's name in --help."""
    required: bool | None = None
    """Must be given; None: required exactly when the field has no default."""
    choices: tuple[str, ...] | None = None
    """Allowed values, where the field's type does not list them."""
    hidden: bool = False
    """Not a flag: the field keeps its default (or is derived by the config's `from_flags`)."""
    empty_list: bool = False
    """A tuple flag that may be given with no value (`nargs='*'`): an explicit empty list."""


def flag(
    name: str | None = None,
    *,
    metavar: str | None = None,
    required: bool | None = None,
    choices: Sequence[str] | None = None,
    hidden: bool = False,
    empty_list: bool = False,
) -> dict[str, Flag]:
    """Field metadata for `dataclasses.field(metadata=flag(...))`."""
    return {
        "flag": Flag(
            name, metavar, required, tuple(choices) if choices else None, hidden, empty_list
        )
    }


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal under each field), one line."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (frozen app): flags without help
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _choices_of(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    return None


def _dest(path: tuple[str, ...]) -> str:
    return "__".join(path)


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _help(doc: str, default: Any, show_default: bool) -> str:
    text = doc.replace("%", "%%")
    if show_default and default not in (None, dataclasses.MISSING, (), "", False):
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    return text


def add_config_flags(
    parser: argparse.ArgumentParser | Any, cls: type, path: tuple[str, ...] = ()
) -> None:
    """Add a flag for every field of the config dataclass `cls` (recursively for nested config
    dataclasses, each in its own argument group)."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        spec: Flag = f.metadata.get("flag", Flag())
        if spec.hidden:
            continue
        hint, _ = _unwrap_optional(hints[f.name])
        default = _default_of(f)
        here = (*path, f.name)
        if dataclasses.is_dataclass(hint):
            title = (inspect.getdoc(hint) or hint.__name__).splitlines()[0]
            group = (
                parser.add_argument_group(title)
                if isinstance(parser, argparse.ArgumentParser)
                else parser
            )
            add_config_flags(group, hint, here)
            continue
        dest = _dest(here)
        doc = docs.get(f.name, "")
        required = spec.required if spec.required is not None else default is dataclasses.MISSING
        kwargs: dict[str, Any] = {"dest": dest, "help": _help(doc, default, not required)}
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        name = spec.name or "--" + f.name.replace("_", "-")
        if hint is bool:
            if default is True:
                name = spec.name or "--no-" + f.name.replace("_", "-")
                kwargs["action"] = "store_false"
            else:
                kwargs["action"] = "store_true"
        elif typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            kwargs["type"] = item
            kwargs["nargs"] = "*" if spec.empty_list else "+"
        else:
            choices = spec.choices or _choices_of(hint)
            if choices:
                kwargs["choices"] = choices
                kwargs["type"] = type(choices[0])
            else:
                kwargs["type"] = hint
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs["metavar"] = spec.metavar or name.lstrip("-").replace("-", "_").upper()
        parser.add_argument(name, **kwargs)


def config_from_flags(cls: type, args: argparse.Namespace, path: tuple[str, ...] = ()) -> Any:
    """Build the config dataclass `cls` from parsed flags; every problem, of nested configs
    too, is reported in one ConfigError. A class may define `from_flags(**fields)` to derive
    hidden fields (e.g. MinHash's num_perm = bands * rows)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    for f in dataclasses.fields(cls):
        spec: Flag = f.metadata.get("flag", Flag())
        if spec.hidden:
            continue
        hint, optional = _unwrap_optional(hints[f.name])
        here = (*path, f.name)
        if dataclasses.is_dataclass(hint):
            try:
                kwargs[f.name] = config_from_flags(hint, args, here)
            except ConfigError as exc:
                problems.extend(exc.problems)
            continue
        value = getattr(args, _dest(here))
        if typing.get_origin(hint) is tuple and value is not None:
            value = tuple(value)
        elif hint is str and optional:
            value = value or None  # an empty value means none (e.g. `--url-field ''`)
        kwargs[f.name] = value
    build = getattr(cls, "from_flags", cls)
    try:
        config = build(**kwargs)
    except ConfigError as exc:
        raise ConfigError(cls.__name__, [*problems, *exc.problems]) from None
    if problems:
        raise ConfigError(cls.__name__, problems)
    return config
