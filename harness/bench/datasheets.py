"""Peak memory bandwidth of GPUs as their vendor's datasheet states it (decimal GB/s).

The second denominator of GPU rows, beside the copy bandwidth measured in the same process: a
datasheet figure is the ceiling nobody reaches (a device-to-device copy gets 85-90 % of it), so
a row can be read against both. Matched on the device name the framework reports.

Sources: NVIDIA H200 datasheet (4.8 TB/s HBM3e), https://www.nvidia.com/en-us/data-center/h200/;
NVIDIA H100 datasheet (SXM 3.35 TB/s, NVL 3.9 TB/s, PCIe 2 TB/s),
https://www.nvidia.com/en-us/data-center/h100/; NVIDIA A100 datasheet (80GB SXM 2,039 GB/s,
80GB PCIe 1,935 GB/s, 40GB 1,555 GB/s), https://www.nvidia.com/en-us/data-center/a100/.
"""

from __future__ import annotations

# (words that must all appear in the device name, GB/s, the datasheet's name for it); first match wins.
PEAK_BANDWIDTH: tuple[tuple[tuple[str, ...], float, str], ...] = (
    (("H200",), 4800.0, "H200 (HBM3e)"),
    (("H100", "NVL"), 3900.0, "H100 NVL"),
    (("H100", "PCIe"), 2000.0, "H100 PCIe"),
    (("H100",), 3350.0, "H100 SXM (HBM3)"),
    (("A100", "80GB", "PCIe"), 1935.0, "A100 80GB PCIe"),
    (("A100", "80GB"), 2039.0, "A100 80GB SXM"),
    (("A100",), 1555.0, "A100 40GB"),
)


def peak_bandwidth(device_name: str | None) -> tuple[float, str] | None:
    """(GB/s, datasheet name) for a device name such as 'NVIDIA H100 80GB HBM3'; None if unknown."""
    if not device_name:
        return None
    words = device_name.upper()
    for needles, gbps, label in PEAK_BANDWIDTH:
        if all(n.upper() in words for n in needles):
            return gbps, label
    return None
