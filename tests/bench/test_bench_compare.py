"""hmmn-bench's peak per microarchitecture and precision, its run list (--run, the cross product
without pairs a backend lacks), and one --compare run with openvino's precisions (times are
reported, never asserted)."""

from __future__ import annotations

import json

import pytest

from hmmn_deploy.bench import cli, machine

ZEN4 = {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "cpu MHz": "3700.000",
        "model name": "AMD EPYC 9R14", "flags": "fma avx2 avx512f avx512_bf16 avx512_vnni"}
EMERALD_RAPIDS = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "207", "cpu MHz": "2100.000",
                  "model name": "Intel(R) Xeon(R) Processor",
                  "flags": "fma avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8"}
SKYLAKE_X = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "85", "model name": "Intel Xeon Gold 6148 @ 2.40GHz",
             "cpu MHz": "1000.000", "flags": "fma avx2 avx512f"}


ZEN2 = {"vendor_id": "AuthenticAMD", "cpu family": "23", "model": "49", "cpu MHz": "2250.000",
        "model name": "AMD EPYC 7B12 64-Core Processor", "flags": "fma avx2"}


def test_peak_is_per_microarchitecture_and_native_precision(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # the dicts' own flags, uncapped
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    # The clock from the dicts themselves (a real machine's cpufreq would otherwise win).
    monkeypatch.setattr(machine, "clock_ghz", lambda info=None: (float(info["cpu MHz"]) / 1000, "test"))
    name, per_cycle, why = machine.microarchitecture(ZEN4)
    assert name == "AMD Zen 4" and per_cycle["fp32"] == 32 and "256-bit" in why  # two 256-bit FMA pipes, not 64
    assert machine.cpu_peak_gflops(2, "fp32", ZEN4) == pytest.approx(2 * 3.7 * 32)
    assert machine.cpu_peak_gflops(2, "bf16", ZEN4) == pytest.approx(2 * 3.7 * 64)
    name, per_cycle, _ = machine.microarchitecture(EMERALD_RAPIDS)
    assert per_cycle == {"fp32": 64, "bf16": 1024, "int8": 2048}
    assert machine.cpu_peak_gflops(2, "fp32", EMERALD_RAPIDS) == pytest.approx(268.8)
    # AVX2 only: no BF16 figure at all (BF16 is not native there), INT8 twice FP32 (vpmaddubsw).
    name, per_cycle, why = machine.microarchitecture(ZEN2)
    assert name == "AMD Zen 2" and per_cycle == {"fp32": 32, "int8": 64} and "vpmaddubsw" in why
    assert machine.cpu_peak_gflops(2, "bf16", ZEN2) is None
    # The same AMX Xeon under ONEDNN_MAX_CPU_ISA=AVX2 is an AVX2 machine to oneDNN, and so to the table.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    name, per_cycle, _ = machine.microarchitecture(EMERALD_RAPIDS)
    assert name == "AVX2 + FMA" and per_cycle == {"fp32": 32, "int8": 64}


def test_clock_of_a_known_model_is_its_published_boost():
    ghz, source = machine.clock_ghz(ZEN2)
    assert (ghz, source) == (3.3, "AMD EPYC 7B12's published maximum boost") or source == "cpufreq maximum"


def test_clock_prefers_the_stated_maximum():
    ghz, source = machine.clock_ghz(SKYLAKE_X)
    # Without cpufreq (a VM, or this test's dict on such a machine) the model name's clock wins
    # over the momentary "cpu MHz".
    assert (ghz, source) == (2.4, "model name") or source == "cpufreq maximum"


def test_run_list(capsys):
    args = cli.build_parser().parse_args(["--run", "onnxruntime:fp32", "openvino:bf16", "openvino"])
    assert cli.run_pairs(args) == [("onnxruntime", "fp32"), ("openvino", "bf16"), ("openvino", None)]
    args = cli.build_parser().parse_args(["--backend", "onnxruntime", "openvino", "--precision", "fp32", "bf16", "fp16"])
    assert cli.run_pairs(args) == [("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("openvino", "fp32"),
                                   ("openvino", "bf16")]
    assert "onnxruntime has no bf16: skipped" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--run", "openvino:int4"])


def test_compare_lists_openvino_precisions_with_their_peaks(small_export, capsys):
    """onnxruntime and openvino FP32, and openvino BF16 where the CPU computes BF16 natively; the
    peaks listed are those of the native precisions only."""
    pytest.importorskip("openvino")
    from hmmn_deploy.core import cpu

    bf16 = "bf16" in cpu.native_precisions()
    code = cli.main(["--artifacts", str(small_export), "--size", "96x128", "--frames", "2", "--warmup", "1",
                     "--compare", "--json", "--no-probe",
                     "--run", "onnxruntime:fp32", "openvino:fp32", *(["openvino:bf16"] if bf16 else [])])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    names = [r["name"] for r in result["runs"]]
    assert names == ["baseline: hmmn_ref.run_video", "onnxruntime fp32", "openvino fp32"] + (["openvino bf16"] if bf16 else [])
    assert set(result["ratios"]) == set(names[1:])
    peaks = result["machine"]["cpu_peak_gflops"]
    assert set(peaks) == set(cpu.native_precisions()) and result["machine"]["native_precisions"] == list(cpu.native_precisions())
    assert result["machine"]["load_average"] is not None
    by_name = {r["name"]: r for r in result["runs"]}
    assert by_name["openvino fp32"]["mask_agreement"] >= 99.0
    assert by_name["openvino fp32"]["stages"]["match"]["median_ms"] > 0
    assert "% of fp32 peak" in captured.err and ("% of bf16 peak" in captured.err) == bf16
    assert "(warm-up)" not in captured.err and "warm-up (not timed)" in captured.err


def test_probe_is_bounded_and_skips_precisions_the_cpu_lacks(monkeypatch):
    """The probe grows its matrix only while a product is quick, and never probes BF16 on a CPU
    without BF16 units (on an AVX2-only Zen 2 torch's BF16 product ran at 0.2 GFLOP/s: minutes)."""
    probed = machine.probe_gflops(1, ("fp32",), seconds=0.0)
    assert probed["fp32"]["size"] == 256 and probed["fp32"]["gflops"] > 0  # no time: the first size only
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    asked = []
    monkeypatch.setattr(machine, "probe_gflops", lambda threads, precisions: asked.append(tuple(precisions)) or
                        {p: {"gflops": 1.0, "size": 256, "repeats": 1} for p in precisions})
    lines = []
    described = machine.describe(1, probe=True, log=lines.append)
    assert asked == [("fp32",)] and "bf16" not in described["cpu_peak_gflops"]
    assert any("no BF16 matrix-product probe" in line and "ONEDNN_MAX_CPU_ISA=AVX2" in line for line in lines)


def test_a_probe_above_the_computed_peak_raises_the_clock(monkeypatch):
    """The computed peak is an upper bound only if the clock is right: a matrix product measured
    faster than it means the clock is higher (turbo, a VM's nominal MHz), and the peak follows."""
    monkeypatch.setattr(machine, "_cpuinfo", lambda: EMERALD_RAPIDS)
    monkeypatch.setattr(machine, "clock_ghz", lambda info=None: (2.1, "test"))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(machine, "probe_gflops", lambda threads, precisions: {
        p: {"gflops": g, "size": 2048, "repeats": 3} for p, g in (("fp32", 320.0), ("bf16", 800.0)) if p in precisions})
    described = machine.describe(2, probe=True)
    assert described["clock_ghz"] == 2.5 and "implied by the matrix-product probe" in described["clock_source"]
    assert described["cpu_peak_gflops"]["fp32"] == pytest.approx(320.0)
    assert described["cpu_peak_gflops"]["bf16"] == pytest.approx(2 * 2.5 * 1024)
    monkeypatch.setattr(machine, "probe_gflops", lambda threads, precisions: {
        p: {"gflops": g, "size": 2048, "repeats": 3} for p, g in (("fp32", 100.0), ("bf16", 200.0)) if p in precisions})
    described = machine.describe(2, probe=True)
    assert described["clock_ghz"] == 2.1 and described["cpu_peak_gflops"]["fp32"] == pytest.approx(268.8)
