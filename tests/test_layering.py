"""The layering rule, read statically from every module's imports (those inside functions too).

tokenizer/ is the shard and manifest contract: it imports neither half. pipeline/ (Beam workers)
never imports trainer/ or torch; trainer/ (GPU hosts) never imports pipeline/ or apache_beam;
none of the three imports the app layer (mathcorpus/), the only code that sees all of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

# package -> top-level modules it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "tokenizer": frozenset({"pipeline", "trainer", "apache_beam", "torch", "mathcorpus"}),
    "pipeline": frozenset({"trainer", "torch", "mathcorpus"}),
    "trainer": frozenset({"pipeline", "apache_beam", "mathcorpus"}),
}


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth of the tree;
    relative imports are resolved against `module` (the dotted name of the file)."""
    found: list[tuple[int, str]] = []
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return sorted(found)


def violations(root: Path, package: str) -> list[str]:
    forbidden = FORBIDDEN[package]
    bad: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root)
        module = ".".join(rel.with_suffix("").parts)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module):
            if name.split(".")[0] in forbidden:
                bad.append(f"{rel}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_its_layer(package: str) -> None:
    assert (REPO_ROOT / package / "__init__.py").exists()
    assert violations(REPO_ROOT, package) == []


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    (tmp_path / "pipeline" / "stage").mkdir(parents=True)
    (tmp_path / "pipeline" / "stage" / "ok.py").write_text("import numpy\nfrom . import sibling\n")
    (tmp_path / "pipeline" / "stage" / "bad.py").write_text(
        "def f():\n    import torch.nn\n\n"
        "class C:\n    def g(self):\n        from trainer.model import x\n"
        "from ...mathcorpus import cli\n"
    )
    assert violations(tmp_path, "pipeline") == [
        "pipeline/stage/bad.py:2 imports torch.nn",
        "pipeline/stage/bad.py:6 imports trainer.model",
        "pipeline/stage/bad.py:7 imports mathcorpus",
    ]
