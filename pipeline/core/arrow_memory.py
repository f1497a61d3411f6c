"""Arrow's buffers from the C library's allocator, in every process that reads or writes pages.

pyarrow's default pool (mimalloc or jemalloc) keeps freed pages for reuse: the pool's peak RSS
was 508 -> 469 MiB (552 real pages) and 531 -> 475 MiB (4,000) with the system allocator, at
the same speed (bench/pool_scale.py). Parquet row groups here are small (64-256 rows), so the
faster pools gain nothing. `ARROW_DEFAULT_MEMORY_POOL`, when set, still decides.
"""

from __future__ import annotations

import os

import pyarrow as pa

ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_allocator() -> None:
    """Make the system allocator Arrow's default pool (once; a no-op when the user chose)."""
    if os.environ.get(ENV):
        return
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
