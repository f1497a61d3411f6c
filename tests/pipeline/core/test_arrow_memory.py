"""Arrow's allocator for the pipeline's processes (pipeline/core/arrow_memory.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _backend_after_import(env: dict[str, str]) -> str:
    code = (
        "import pyarrow as pa, pipeline.dedup.parts; print(pa.default_memory_pool().backend_name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip().splitlines()[-1]


def test_a_pool_worker_uses_the_system_allocator():
    import os

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _backend_after_import(env) == "system"


def test_the_users_choice_wins():
    import os

    import pyarrow as pa

    try:
        pa.mimalloc_memory_pool()
        choice = "mimalloc"
    except NotImplementedError:
        pytest.skip("this pyarrow has no allocator but the system one")
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": choice}
    assert _backend_after_import(env) == choice
