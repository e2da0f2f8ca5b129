"""core/cpu.py: the CPU's features and native precisions from its flags, capped like oneDNN by
ONEDNN_MAX_CPU_ISA; the rule every skip, probe, peak and --precision auto reads."""

from __future__ import annotations

from hmmn_deploy.core import cpu

ZEN2 = {"vendor_id": "AuthenticAMD", "cpu family": "23", "model": "49", "model name": "AMD EPYC 7B12",
        "flags": "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2"}
SAPPHIRE_RAPIDS = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "143",
                   "flags": "sse4_2 avx fma avx2 avx512f avx512bw avx512_vnni avx512_bf16 avx_vnni amx_bf16 "
                            "amx_tile amx_int8"}
SSE_ONLY = {"flags": "fpu sse sse2 ssse3 sse4_1 sse4_2"}


def test_native_precisions_follow_the_flags():
    assert cpu.native_precisions(ZEN2, {}) == ("fp32", "int8")  # vpmaddubsw; no BF16 units
    assert cpu.native_precisions(SAPPHIRE_RAPIDS, {}) == ("fp32", "int8", "bf16")
    assert cpu.native_precisions(SSE_ONLY, {}) == ("fp32",)
    assert cpu.features(ZEN2, {}) == {"avx2", "fma"}


def test_onednn_isa_cap_removes_what_onednn_would_not_use():
    avx2 = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert cpu.native_precisions(SAPPHIRE_RAPIDS, avx2) == ("fp32", "int8")
    assert cpu.features(SAPPHIRE_RAPIDS, avx2) == {"avx2", "fma"}
    assert cpu.features(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "avx2_vnni"}) == {"avx2", "fma", "avx_vnni"}
    bf16 = cpu.features(SAPPHIRE_RAPIDS, {"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"})
    assert "avx512_bf16" in bf16 and "amx_bf16" not in bf16
    assert "amx_int8" in cpu.features(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "AVX10_1_512_AMX"})  # newer name
    for uncapped in ("ALL", "DEFAULT", "", "NONSENSE"):
        assert cpu.isa_cap({"ONEDNN_MAX_CPU_ISA": uncapped}) is None
        assert cpu.native_precisions(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": uncapped}) == ("fp32", "int8", "bf16")


def test_why_not_native_names_what_is_missing():
    assert cpu.why_not_native("fp32", ZEN2, {}) is None and cpu.why_not_native("int8", ZEN2, {}) is None
    why = cpu.why_not_native("bf16", ZEN2, {})
    assert "AVX512_BF16 or AMX-BF16" in why and "avx2, fma" in why
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in cpu.why_not_native("bf16", SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert "no AVX2, VNNI or AMX-INT8" in cpu.why_not_native("int8", SSE_ONLY, {})


def test_this_machine_reads():
    """Whatever this machine is, its answers are consistent (the rule tests skip by)."""
    native = cpu.native_precisions()
    assert native[0] == "fp32" and set(native) <= {"fp32", "int8", "bf16"}
    assert ("bf16" in native) == (cpu.why_not_native("bf16") is None)
