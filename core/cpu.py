"""What this CPU's vector and matrix units run natively: one rule for the runtime, hmmn-bench and
the tests.

Features come from /proc/cpuinfo's flags, capped the way oneDNN (OpenVINO's CPU plugin and
torch's CPU kernels) caps itself when `ONEDNN_MAX_CPU_ISA` (or the older `DNNL_MAX_CPU_ISA`)
is set: `ONEDNN_MAX_CPU_ISA=AVX2` on an AMX machine behaves, for oneDNN, like an AVX2-only CPU,
and so do these answers. OpenVINO's own OPTIMIZATION_CAPABILITIES read the hardware and ignore
that cap (it lists BF16 under ONEDNN_MAX_CPU_ISA=AVX2 on an AMX Xeon).

A precision is native when the CPU has instructions that compute in it:
- fp32: always (FMA where present);
- int8: AVX2's u8 x s8 products (vpmaddubsw, up to twice FP32's rate), VNNI's fused dot products
  (avx_vnni, avx512_vnni) or AMX tiles (amx_int8);
- bf16: AVX512_BF16 dot products or AMX tiles (amx_bf16). Without them oneDNN converts BF16
  through FP32 (torch's BF16 matrix product ran at 0.2 GFLOP/s on an AVX2-only Zen 2).
"""

from __future__ import annotations

import functools
import os
from typing import Dict, FrozenSet, Mapping, Optional, Tuple

# The flags this project reads (the x86 names /proc/cpuinfo uses).
FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")

# oneDNN's ISA levels, lowest first (its ONEDNN_MAX_CPU_ISA values; the AVX10 names are the newer
# spellings of AVX512_CORE_FP16 and AVX512_CORE_AMX).
_ISA_LEVELS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
               "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16")
_ALIASES = {"AVX10_1_512": "AVX512_CORE_FP16", "AVX10_1_512_AMX": "AVX512_CORE_AMX",
            "AVX10_1_512_AMX_FP16": "AVX512_CORE_AMX_FP16"}
# The lowest ISA level at which oneDNN uses each flag.
_FLAG_LEVEL = {"avx2": "AVX2", "fma": "AVX2", "avx_vnni": "AVX2_VNNI", "avx512f": "AVX512_CORE",
               "avx512_vnni": "AVX512_CORE_VNNI", "avx512_bf16": "AVX512_CORE_BF16",
               "amx_bf16": "AVX512_CORE_AMX", "amx_int8": "AVX512_CORE_AMX"}


@functools.lru_cache(maxsize=1)
def cpuinfo() -> Dict[str, str]:
    """/proc/cpuinfo's first processor as {key: value} (empty where there is none)."""
    info: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, value = (part.strip() for part in line.split(":", 1))
                    info.setdefault(key, value)
    except OSError:
        pass
    return info


def isa_cap(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """oneDNN's ISA cap from the environment, or None when uncapped (unset, ALL, DEFAULT or unknown)."""
    environ = os.environ if environ is None else environ
    value = (environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    value = _ALIASES.get(value, value)
    return value if value in _ISA_LEVELS else None


def features(info: Optional[Mapping[str, str]] = None, environ: Optional[Mapping[str, str]] = None) -> FrozenSet[str]:
    """The FEATURES this CPU has, less those above oneDNN's ISA cap."""
    flags = set((cpuinfo() if info is None else info).get("flags", "").split())
    cap = isa_cap(environ)
    have = {f for f in FEATURES if f in flags}
    if cap is not None:
        limit = _ISA_LEVELS.index(cap)
        have = {f for f in have if _ISA_LEVELS.index(_FLAG_LEVEL[f]) <= limit}
    return frozenset(have)


def native_precisions(info: Optional[Mapping[str, str]] = None,
                      environ: Optional[Mapping[str, str]] = None) -> Tuple[str, ...]:
    """-> the precisions this CPU computes in natively, of fp32, int8, bf16 (see the module's note)."""
    have = features(info, environ)
    out = ["fp32"]
    if have & {"avx2", "avx_vnni", "avx512_vnni", "amx_int8"}:
        out.append("int8")
    if have & {"avx512_bf16", "amx_bf16"}:
        out.append("bf16")
    return tuple(out)


def why_not_native(precision: str, info: Optional[Mapping[str, str]] = None,
                   environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """None when `precision` is native here; else a sentence saying why not (for skips and logs)."""
    if precision in native_precisions(info, environ):
        return None
    cap = isa_cap(environ)
    capped = f" under ONEDNN_MAX_CPU_ISA={cap}" if cap else ""
    need = {"bf16": "AVX512_BF16 or AMX-BF16", "int8": "AVX2, VNNI or AMX-INT8"}.get(precision, precision)
    have = ", ".join(sorted(features(info, environ))) or "none of " + ", ".join(FEATURES)
    return f"this CPU has no {need}{capped} (its features: {have}), so it does not run {precision.upper()} natively"
