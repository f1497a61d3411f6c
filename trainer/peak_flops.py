"""Dense bf16 peak FLOP/s of GPUs, by the name CUDA reports: the one table for MFU and estimates.

The training loop divides achieved FLOP/s by `peak_bf16_flops(torch.cuda.get_device_name())`;
trainer/experiment.py sizes paper-scale runs from the same table. Figures are NVIDIA datasheet
tensor-core peaks without sparsity (the datasheets print the 2:4-sparse figure, twice these).
Form factors differ: an H100 PCIe card (756 TFLOP/s) is not an H100 SXM (989.4), so names are
matched most specific first, and a name matching no entry gives None (no MFU) rather than a
guess; `train.peak_flops` overrides the lookup.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuPeak:
    """One row of the table."""

    label: str
    """Short name used in tables and logs (`H100 SXM`)."""
    pattern: str
    """Regular expression (case-insensitive, searched) over torch.cuda.get_device_name()."""
    bf16_flops: float
    """Dense bf16 tensor-core peak of one GPU, FLOP/s."""


# Most specific first: the first row whose pattern matches wins. \b keeps A10 off A100 / A10G
# and H200 off GH200. Device names as CUDA reports them are in tests/trainer/test_peak_flops.py.
GPU_PEAKS: tuple[GpuPeak, ...] = (
    GpuPeak("H100 NVL", r"\bH100\b.*\bNVL\b", 835e12),
    GpuPeak("H100 PCIe", r"\bH100\b.*\bPCIe\b", 756e12),
    GpuPeak("H100 SXM", r"\bH100\b.*(\bSXM|\bHBM3\b)", 989.4e12),  # "NVIDIA H100 80GB HBM3"
    GpuPeak("H200 NVL", r"\bH200\b.*\bNVL\b", 835e12),
    GpuPeak("H200", r"\bH200\b", 989.4e12),  # SXM: "NVIDIA H200"
    GpuPeak("GH200", r"\bGH200\b", 989.4e12),
    GpuPeak("A100", r"\bA100\b", 312e12),  # SXM4 and PCIe, 40 and 80 GB alike
    GpuPeak("L40S", r"\bL40S\b", 362.05e12),
    GpuPeak("L40", r"\bL40\b", 181.05e12),
    GpuPeak("L4", r"\bL4\b", 121e12),
    GpuPeak("A10", r"\bA10\b", 125e12),
)


def gpu_peak(label: str) -> float:
    """The bf16 peak of the row labelled `label` (KeyError when there is none)."""
    for row in GPU_PEAKS:
        if row.label == label:
            return row.bf16_flops
    raise KeyError(f"no GPU labelled {label!r} in GPU_PEAKS")


def match_gpu(device_name: str) -> GpuPeak | None:
    """The first row of GPU_PEAKS whose pattern occurs in device_name, or None."""
    for row in GPU_PEAKS:
        if re.search(row.pattern, device_name, flags=re.IGNORECASE):
            return row
    return None


_warned: set[str] = set()


def peak_bf16_flops(device_name: str) -> float | None:
    """Dense bf16 peak FLOP/s of the GPU called device_name; None (and a warning, once per
    name) when the table does not know it."""
    row = match_gpu(device_name)
    if row is None:
        if device_name not in _warned:
            _warned.add(device_name)
            warnings.warn(
                f"unknown GPU {device_name!r}: no MFU is logged; set train.peak_flops to the "
                "device's dense bf16 peak FLOP/s to get one",
                stacklevel=2,
            )
        return None
    return row.bf16_flops
