"""What the benchmark ran on, and an estimate of the CPU's peak FP32 rate."""

from __future__ import annotations

import os
import platform
from typing import Optional


def _cpuinfo() -> dict:
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, value = (part.strip() for part in line.split(":", 1))
                    info.setdefault(key, value)
    except OSError:
        pass
    return info


def cpu_peak_gflops(threads: int) -> Optional[float]:
    """threads x clock x FP32 FLOPs per cycle (two FMA units: 64 with AVX-512, 32 with AVX2,
    16 with SSE). An upper bound from /proc/cpuinfo, not a measurement; None when unknown."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    try:
        ghz = float(info["cpu MHz"]) / 1000.0
    except (KeyError, ValueError):
        return None
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 16
    return round(threads * ghz * per_cycle, 1)


def describe(threads: int) -> dict:
    import torch

    info = _cpuinfo()
    machine = {
        "cpu": info.get("model name", platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(), "threads": threads,
        "cpu_peak_gflops_estimate": cpu_peak_gflops(threads),
        "python": platform.python_version(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        machine["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        machine["onnxruntime"] = None
    try:
        import tensorrt

        machine["tensorrt"] = tensorrt.__version__
    except ImportError:
        machine["tensorrt"] = None
    return machine
