"""What the benchmark ran on, and the CPU's peak rate per precision it runs natively.

The peak is cores x clock x operations per cycle per core. The operations per cycle come from
the table below, picked from /proc/cpuinfo's vendor, family and the features oneDNN may use
(`core/cpu.py`: the flags, capped by ONEDNN_MAX_CPU_ISA); each row carries its reason, printed
with the figure. Only precisions the CPU runs natively (`core.cpu.native_precisions`) get a
peak: no BF16 figure on a CPU without AVX512_BF16 or AMX.

| cores | FP32 FLOP/cycle | BF16 | INT8 ops |
| --- | --- | --- | --- |
| AMD Zen 2 / Zen 3 (family 23 / 25, AVX2) | 32: two 256-bit FMA pipes | - | 64: vpmaddubsw, twice FP32 at best |
| AMD Zen 4 (family 25 with AVX-512) | 32: two 256-bit pipes (AVX-512 runs in halves) | 64 (AVX512_BF16) | 128 (VNNI) |
| AMD Zen 5 (family 26) | 64: 512-bit FMA pipes | 128 | 256 |
| Intel with AVX-512 and AMX (Sapphire / Emerald / Granite Rapids) | 64: two 512-bit FMA units | 1024 (AMX tiles) | 2048 (AMX) |
| Intel with AVX-512, no AMX | 64 (two FMA units; some parts have one: then half) | 128 with AVX512_BF16 | 256 with VNNI, else 128 |
| AVX2 + FMA | 32 | - | 128 with AVX-VNNI, else 64 (vpmaddubsw) |
| older | 16 | - | - |

The clock is the highest the machine states, with its source: cpufreq's maximum where the
kernel exposes it; else the vendor's published maximum boost for a known model name
(`KNOWN_BOOST_GHZ`); else the "@ x.xGHz" in the model name; else /proc/cpuinfo's "cpu MHz" (in
a VM often the nominal clock: turbo makes the true peak higher). Any such table is an upper
bound on paper, so `probe_gflops` also measures a matrix product with torch in each native
precision, time-bounded (about a second each); where it beats the computed FP32 peak, the clock
it implies replaces the stated one (a lower bound of the real clock).
"""

from __future__ import annotations

import os
import platform
import re
import time
from typing import Dict, Optional, Sequence, Tuple

from ..core import cpu

# Published maximum boost clocks (GHz) of models seen on cloud machines, by model-name text.
# Source: the vendors' product pages (AMD EPYC 7B12 / 7B13 / 9R14 are cloud-only parts: the
# figures are those the cloud providers publish for them).
KNOWN_BOOST_GHZ = {
    "AMD EPYC 7B12": 3.3, "AMD EPYC 7B13": 3.5, "AMD EPYC 7R32": 3.3, "AMD EPYC 7R13": 3.6,
    "AMD EPYC 9R14": 3.7, "AMD EPYC 7742": 3.4, "AMD EPYC 7763": 3.5,
}


def _cpuinfo() -> dict:
    return dict(cpu.cpuinfo())


def microarchitecture(info: Optional[dict] = None, environ=None) -> Tuple[str, Dict[str, int], str]:
    """-> (name, {precision: operations per cycle per core} for its native precisions, reason)."""
    info = _cpuinfo() if info is None else info
    have = cpu.features(info, environ)
    native = cpu.native_precisions(info, environ)
    vendor, family = info.get("vendor_id", ""), info.get("cpu family", "")
    avx512 = "avx512f" in have
    if vendor == "AuthenticAMD" and family == "26" and avx512:
        name, table, why = "AMD Zen 5", {"fp32": 64, "bf16": 128, "int8": 256}, "512-bit FMA pipes"
    elif vendor == "AuthenticAMD" and family == "25" and avx512:
        name, table, why = "AMD Zen 4", {"fp32": 32, "bf16": 64, "int8": 128}, \
            "two 256-bit FMA pipes (AVX-512 runs in halves); AVX512_BF16 and VNNI dot products"
    elif avx512 and {"amx_bf16", "amx_int8"} <= have:
        name, table, why = "Intel with AVX-512 and AMX", {"fp32": 64, "bf16": 1024, "int8": 2048}, \
            "two 512-bit FMA units; AMX tiles: 1024 BF16 / 2048 INT8 operations per cycle"
    elif avx512:
        name = "AVX-512 (two FMA units assumed)"
        table = {"fp32": 64, "bf16": 128, "int8": 256 if "avx512_vnni" in have else 128}
        why = "two 512-bit FMA units (some parts have one: then half); INT8 by " + \
              ("VNNI" if "avx512_vnni" in have else "vpmaddubsw")
    elif "avx2" in have and "fma" in have:
        zen = {"23": "AMD Zen 2", "25": "AMD Zen 3"}.get(family) if vendor == "AuthenticAMD" else None
        name = zen or "AVX2 + FMA"
        table = {"fp32": 32, "int8": 128 if "avx_vnni" in have else 64}
        why = "two 256-bit FMA pipes; INT8 by " + ("AVX-VNNI dot products" if "avx_vnni" in have else
                                                   "vpmaddubsw (u8 x s8 pairs), twice FP32 at best")
    else:
        name, table, why = "SSE", {"fp32": 16, "int8": 16}, "128-bit SIMD"
    return name, {p: n for p, n in table.items() if p in native}, why


def clock_ghz(info: Optional[dict] = None) -> Tuple[Optional[float], str]:
    """-> (GHz, where it came from)."""
    info = _cpuinfo() if info is None else info
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read().strip()) / 1e6, "cpufreq maximum"
    except (OSError, ValueError):
        pass
    model = info.get("model name", "")
    for known, ghz in KNOWN_BOOST_GHZ.items():
        if known in model:
            return ghz, f"{known}'s published maximum boost"
    named = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if named:
        return float(named.group(1)), "model name"
    try:
        return float(info["cpu MHz"]) / 1000.0, "/proc/cpuinfo cpu MHz (nominal; turbo may be higher)"
    except (KeyError, ValueError):
        return None, "unknown"


def cpu_peak_gflops(threads: int, precision: str = "fp32", info: Optional[dict] = None) -> Optional[float]:
    """threads x clock x operations per cycle per core for `precision` (fp32, bf16, int8; fp16
    counts as fp32 on the CPU); None when the clock is unknown or the CPU lacks the precision."""
    info = _cpuinfo() if info is None else info
    ghz, _ = clock_ghz(info)
    _, per_cycle, _ = microarchitecture(info)
    per = per_cycle.get("fp32" if precision == "fp16" else precision)
    if ghz is None or per is None:
        return None
    return round(threads * ghz * per, 1)


def stage_precision(precision: Optional[str], stage: str, plan: Optional[Dict[str, str]] = None) -> str:
    """The precision a stage computes in: the backend's plan where it has one (OpenVINO's: its
    FP32 graphs), else its run's precision, FP32 for match (which runs in FP32 in every plan)."""
    if plan and stage in plan:
        return plan[stage]
    return "fp32" if stage == "match" else (precision or "fp32")


def stage_peak(peaks: Dict[str, float], precision: Optional[str], stage: str,
               plan: Optional[Dict[str, str]] = None) -> Optional[float]:
    """GFLOP/s a stage's rate is measured against: the peak of the precision it computes in
    (stage_precision), FP32's for a precision without a peak of its own."""
    return peaks.get(stage_precision(precision, stage, plan), peaks.get("fp32"))


_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def probe_gflops(threads: int, precisions: Sequence[str] = ("fp32",), seconds: float = 1.0,
                 largest: int = 2048) -> Dict[str, dict]:
    """A square matrix product with torch in each precision, time-bounded: the size doubles from
    256 while one product takes under a tenth of `seconds` (up to `largest`), then the best of
    the products that fit in `seconds`. -> {precision: {"gflops", "size", "repeats"}}."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    out = {}
    try:
        for name in precisions:
            dtype = getattr(torch, _TORCH_DTYPES[name])
            size, took = 256, 0.0
            while True:
                a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
                t0 = time.perf_counter()
                torch.mm(a, b)
                took = time.perf_counter() - t0
                if took > seconds / 10 or size >= largest:
                    break
                size *= 2
            best, repeats, start = took, 0, time.perf_counter()
            while repeats < 3 and time.perf_counter() - start + best < seconds:
                t0 = time.perf_counter()
                torch.mm(a, b)
                best = min(best, time.perf_counter() - t0)
                repeats += 1
            out[name] = {"gflops": round(2 * size**3 / best / 1e9, 1), "size": size, "repeats": repeats + 1}
    finally:
        torch.set_num_threads(previous)
    return out


def describe(threads: int, probe: bool = False, log=None) -> dict:
    import torch

    info = _cpuinfo()
    arch, per_cycle, why = microarchitecture(info)
    ghz, clock_source = clock_ghz(info)
    native = cpu.native_precisions(info)
    machine = {
        "cpu": info.get("model name", platform.processor() or platform.machine()),
        "cpu_vendor": info.get("vendor_id"), "cpu_family": info.get("cpu family"), "cpu_model": info.get("model"),
        "cpu_features": sorted(cpu.features(info)), "onednn_max_cpu_isa": cpu.isa_cap(),
        "native_precisions": list(native),
        "microarchitecture": arch, "ops_per_cycle_per_core": per_cycle, "ops_per_cycle_source": why,
        "clock_ghz": ghz, "clock_source": clock_source,
        "cpu_count": os.cpu_count(), "threads": threads,
        "cpu_peak_gflops_estimate": cpu_peak_gflops(threads, "fp32", info),
        "cpu_peak_gflops": {p: cpu_peak_gflops(threads, p, info) for p in per_cycle},
        "python": platform.python_version(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    try:
        machine["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        machine["load_average"] = None
    if probe:
        probed_precisions = [p for p in ("fp32", "bf16") if p in native]
        if log is not None and "bf16" not in native:
            log(f"no BF16 matrix-product probe: {cpu.why_not_native('bf16', info)}")
        machine["matmul_probe"] = probed = probe_gflops(threads, probed_precisions)
        machine["matmul_probe_gflops"] = {p: r["gflops"] for p, r in probed.items()}
        fp32 = probed["fp32"]["gflops"]
        # A measured rate above the computed peak means the clock ran above the stated one (turbo,
        # or a VM's nominal "cpu MHz"): the clock is then raised to what the probe implies, a lower
        # bound of the true clock, and every precision's peak with it.
        if ghz and fp32 > threads * ghz * per_cycle["fp32"]:
            implied = fp32 / (threads * per_cycle["fp32"])
            machine["clock_ghz"] = round(implied, 2)
            machine["clock_source"] = (f"implied by the matrix-product probe ({fp32} GFLOP/s FP32 exceeds "
                                       f"{threads} x {ghz} GHz ({clock_source}) x {per_cycle['fp32']}): at least this")
            machine["cpu_peak_gflops"] = {p: round(threads * implied * n, 1) for p, n in per_cycle.items()}
            machine["cpu_peak_gflops_estimate"] = machine["cpu_peak_gflops"]["fp32"]
    for module in ("onnxruntime", "tensorrt", "openvino"):
        try:
            machine[module] = __import__(module).__version__
        except ImportError:
            machine[module] = None
    return machine
