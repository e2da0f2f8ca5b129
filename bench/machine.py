"""What the benchmark ran on, and the CPU's peak rate per precision.

The peak is computed per microarchitecture, not assumed: cores x clock x operations per cycle
per core for the precision, where the operations per cycle come from what the cores' vector
and matrix units issue (`MICROARCHITECTURES`, picked from /proc/cpuinfo's vendor, family and
flags):

| cores | FP32 FLOP/cycle | BF16 | INT8 ops |
| --- | --- | --- | --- |
| AMD Zen 4 (family 25 with AVX-512) | 32: two 256-bit FMA pipes (AVX-512 runs in halves) | 64 (AVX512_BF16 dot products) | 128 (VNNI) |
| AMD Zen 5 (family 26) | 64: 512-bit FMA pipes | 128 | 256 |
| Intel with AVX-512 and AMX (Sapphire / Emerald / Granite Rapids) | 64: two 512-bit FMA units | 1024 (AMX tiles) | 2048 (AMX) |
| Intel with AVX-512, no AMX | 64 (two FMA units; some parts have one: then half) | 128 with AVX512_BF16, else 64 | 256 with VNNI |
| AVX2 + FMA | 32 | 32 | 64 with AVX-VNNI, else 32 |
| older | 16 | 16 | 16 |

The clock is the highest the machine states: cpufreq's maximum where the kernel exposes it,
else the "@ x.xGHz" in the model name, else /proc/cpuinfo's current "cpu MHz" (in a VM often
the nominal clock: turbo makes the true peak higher). Because any such table is an upper
bound on paper, `probe_gflops` also measures what a large matrix product reaches here
(torch, FP32 and BF16), and the bench prints both; where the probe beats the computed FP32
peak, the clock it implies replaces the stated one (a lower bound of the real clock).
"""

from __future__ import annotations

import os
import platform
import re
import time
from typing import Dict, Optional, Tuple


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


def microarchitecture(info: Optional[dict] = None) -> Tuple[str, Dict[str, int]]:
    """-> (name, {precision: operations per cycle per core}) for fp32, bf16, int8."""
    info = _cpuinfo() if info is None else info
    flags = set(info.get("flags", "").split())
    vendor, family = info.get("vendor_id", ""), info.get("cpu family", "")
    avx512 = "avx512f" in flags
    if vendor == "AuthenticAMD" and family == "25" and avx512:
        return "AMD Zen 4", {"fp32": 32, "bf16": 64, "int8": 128}
    if vendor == "AuthenticAMD" and family == "26":
        return "AMD Zen 5", {"fp32": 64, "bf16": 128, "int8": 256}
    if avx512 and {"amx_bf16", "amx_int8"} <= flags:
        return "Intel with AVX-512 and AMX", {"fp32": 64, "bf16": 1024, "int8": 2048}
    if avx512:
        return "AVX-512 (two FMA units assumed)", {
            "fp32": 64, "bf16": 128 if "avx512_bf16" in flags else 64, "int8": 256 if "avx512_vnni" in flags else 64}
    if "avx2" in flags and "fma" in flags:
        return "AVX2 + FMA", {"fp32": 32, "bf16": 32, "int8": 64 if "avx_vnni" in flags else 32}
    return "SSE", {"fp32": 16, "bf16": 16, "int8": 16}


def clock_ghz(info: Optional[dict] = None) -> Tuple[Optional[float], str]:
    """-> (GHz, where it came from)."""
    info = _cpuinfo() if info is None else info
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read().strip()) / 1e6, "cpufreq maximum"
    except (OSError, ValueError):
        pass
    named = re.search(r"@\s*([\d.]+)\s*GHz", info.get("model name", ""))
    if named:
        return float(named.group(1)), "model name"
    try:
        return float(info["cpu MHz"]) / 1000.0, "/proc/cpuinfo cpu MHz (nominal; turbo may be higher)"
    except (KeyError, ValueError):
        return None, "unknown"


def cpu_peak_gflops(threads: int, precision: str = "fp32", info: Optional[dict] = None) -> Optional[float]:
    """threads x clock x operations per cycle per core for `precision` (fp32, bf16, int8; fp16
    counts as fp32 on the CPU); None when the clock is unknown."""
    info = _cpuinfo() if info is None else info
    ghz, _ = clock_ghz(info)
    if ghz is None:
        return None
    _, per_cycle = microarchitecture(info)
    return round(threads * ghz * per_cycle.get(precision, per_cycle["fp32"]), 1)


def probe_gflops(threads: int, size: int = 2048, repeats: int = 3) -> Dict[str, float]:
    """What a size x size matrix product reaches here with torch (best of `repeats`), FP32 and BF16."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    out = {}
    try:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
            torch.mm(a, b)  # warm-up (oneDNN kernels)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                torch.mm(a, b)
                best = min(best, time.perf_counter() - t0)
            out[name] = round(2 * size**3 / best / 1e9, 1)
    finally:
        torch.set_num_threads(previous)
    return out


def describe(threads: int, probe: bool = False) -> dict:
    import torch

    info = _cpuinfo()
    arch, per_cycle = microarchitecture(info)
    ghz, clock_source = clock_ghz(info)
    machine = {
        "cpu": info.get("model name", platform.processor() or platform.machine()),
        "cpu_vendor": info.get("vendor_id"), "cpu_family": info.get("cpu family"), "cpu_model": info.get("model"),
        "microarchitecture": arch, "ops_per_cycle_per_core": per_cycle,
        "clock_ghz": ghz, "clock_source": clock_source,
        "cpu_count": os.cpu_count(), "threads": threads,
        "cpu_peak_gflops_estimate": cpu_peak_gflops(threads, "fp32", info),
        "cpu_peak_gflops": {p: cpu_peak_gflops(threads, p, info) for p in ("fp32", "bf16", "int8")},
        "python": platform.python_version(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    try:
        machine["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        machine["load_average"] = None
    if probe:
        machine["matmul_probe_gflops"] = probed = probe_gflops(threads)
        # A measured rate above the computed peak means the clock ran above the stated one (turbo,
        # or a VM's nominal "cpu MHz"): the clock is then raised to what the probe implies, a lower
        # bound of the true clock, and every precision's peak with it.
        if ghz and probed.get("fp32", 0) > threads * ghz * per_cycle["fp32"]:
            implied = probed["fp32"] / (threads * per_cycle["fp32"])
            machine["clock_ghz"] = round(implied, 2)
            machine["clock_source"] = (f"implied by the matrix-product probe ({probed['fp32']} GFLOP/s FP32 exceeds "
                                       f"{threads} x {ghz} GHz ({clock_source}) x {per_cycle['fp32']}): at least this")
            machine["cpu_peak_gflops"] = {p: round(threads * implied * n, 1) for p, n in per_cycle.items()}
            machine["cpu_peak_gflops_estimate"] = machine["cpu_peak_gflops"]["fp32"]
    for module in ("onnxruntime", "tensorrt", "openvino"):
        try:
            machine[module] = __import__(module).__version__
        except ImportError:
            machine[module] = None
    return machine
