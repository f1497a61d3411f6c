"""A wheel built from the repository (not an editable install) carries every package and the
experiment configs the demo loads, and its commands run from outside the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

PACKAGES = ("pipeline", "tokenizer", "trainer", "mathcorpus")
IGNORE = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel file, folder the wheel was installed into with pip --target)."""
    root = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ and *.egg-info into the source folder.
    source = root / "source"
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, source / package, ignore=IGNORE)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(root), str(source)], check=True, capture_output=True)
    (wheel,) = root.glob("mathcorpus-*.whl")
    target = root / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    return wheel, target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The wheel's folder first on the path and a working directory outside the repository:
    # nothing can come from the source tree.
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_wheel_carries_every_module_and_the_experiment_configs(
    installed: tuple[Path, Path],
) -> None:
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            assert str(path.relative_to(REPO_ROOT)) in names
    tomls = sorted(p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "trainer").rglob("*.toml"))
    assert tomls and all(str(p) in names for p in tomls)


def test_the_installed_commands_run_outside_the_repository(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, target = installed
    code = (
        "import mathcorpus, trainer.experiment as e\n"
        "name, runs = e.experiment_documents(e.SECTION_5_1_1, 'out', ['m', 'c'])\n"
        "print(mathcorpus.__file__); print(name, sorted(runs))\n"
    )
    result = run_installed(target, tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    where, runs = result.stdout.splitlines()[-2:]
    assert where.startswith(str(target)) and "one_stage" in runs.replace("-", "_"), runs
    assert run_installed(target, tmp_path, "-m", "mathcorpus", "demo", "--help").returncode == 0

    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.html").write_text("<p>" + "Let $x^2 = 4$, so x is 2 or -2. " * 8 + "</p>")
    extract = ["-m", "mathcorpus", "extract", "--input", str(pages / "*.html")]
    result = run_installed(target, tmp_path, *extract, "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1 pages)" in result.stdout
