"""trainer/ never imports pipeline/ or apache_beam (it runs on GPU hosts without Beam)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_trainer_modules_import_neither_beam_nor_pipeline() -> None:
    code = (
        "import sys, pkgutil, importlib, trainer\n"
        "for m in pkgutil.iter_modules(trainer.__path__):\n"
        "    if m.name != '__main__':\n"
        "        importlib.import_module('trainer.' + m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'pipeline'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"
