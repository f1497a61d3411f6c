"""GPU name -> dense bf16 peak, with the names torch.cuda.get_device_name() really returns."""

from __future__ import annotations

import warnings

import pytest

from trainer.peak_flops import GPU_PEAKS, gpu_peak, match_gpu, peak_bf16_flops


@pytest.mark.parametrize(
    ("device_name", "label", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.4),
        ("NVIDIA H100 PCIe", "H100 PCIe", 756),
        ("NVIDIA H100 NVL", "H100 NVL", 835),
        ("NVIDIA H200", "H200", 989.4),
        ("NVIDIA H200 NVL", "H200 NVL", 835),
        ("NVIDIA GH200 480GB", "GH200", 989.4),
        ("NVIDIA A100-SXM4-80GB", "A100", 312),
        ("NVIDIA A100-SXM4-40GB", "A100", 312),
        ("NVIDIA A100-PCIE-40GB", "A100", 312),
        ("NVIDIA A100 80GB PCIe", "A100", 312),
        ("NVIDIA L40S", "L40S", 362.05),
        ("NVIDIA L40", "L40", 181.05),
        ("NVIDIA L4", "L4", 121),
        ("NVIDIA A10", "A10", 125),
    ],
)
def test_device_names_map_to_their_own_peak(device_name: str, label: str, tflops: float) -> None:
    row = match_gpu(device_name)
    assert row is not None and row.label == label
    assert peak_bf16_flops(device_name) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize(
    "device_name", ["NVIDIA A10G", "NVIDIA GeForce RTX 4090", "NVIDIA H100", "Tesla V100-SXM2-16GB"]
)
def test_unknown_gpus_get_no_peak_and_one_warning(device_name: str) -> None:
    with pytest.warns(UserWarning, match="train.peak_flops"):
        assert peak_bf16_flops(device_name) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second lookup is silent
        assert peak_bf16_flops(device_name) is None


def test_labels_are_unique_and_looked_up() -> None:
    labels = [row.label for row in GPU_PEAKS]
    assert len(labels) == len(set(labels))
    assert gpu_peak("H100 PCIe") == 756e12
    with pytest.raises(KeyError):
        gpu_peak("TPU v5p")
