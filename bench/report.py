"""`hmmn-bench ... --report DIR`: the benchmark as one HTML page, drawn from the JSON result that
hmmn-bench prints with --json (so a saved result can be drawn again: `write_report(dir, json)`).

The page: the machine and the versions; frames per second against the baseline; each run's
frame split into its stages; each stage's achieved rate as a % of the machine's peak for its
precision (the precision it computes in, as hmmn-bench's table says: match always FP32); the
scaling curves when --scaling ran. Self-contained and published whole (core/report_page.py).
"""

from __future__ import annotations

from typing import Dict

from ..core.report_page import esc, image, page, publish, table
from .machine import stage_peak
from .report_plots import fps_bars, peak_bars, scaling_curves, stage_bars

MACHINE_FIELDS = (("cpu", "CPU"), ("microarchitecture", "microarchitecture"), ("clock_ghz", "clock GHz"),
                  ("clock_source", "clock from"), ("cpu_count", "CPUs"), ("threads", "threads"), ("gpu", "GPU"),
                  ("load_average", "load average"), ("peak_host_memory_mb", "peak host memory MB"),
                  ("python", "Python"), ("torch", "torch"), ("onnxruntime", "ONNX Runtime"),
                  ("tensorrt", "TensorRT"), ("openvino", "OpenVINO"))


def write_report(folder: str, result: dict) -> str:
    """-> DIR/index.html. ReportError when DIR cannot be written."""
    return publish(folder, lambda work: _page(result))


def peak_shares(result: dict) -> Dict[str, Dict[str, float]]:
    """{run: {stage: achieved rate as % of its peak}}, for the stages with a FLOP count."""
    peaks = result["machine"].get("cpu_peak_gflops") or {}
    shares: Dict[str, Dict[str, float]] = {}
    for run in result["runs"]:
        for stage, stats in run.get("stages", {}).items():
            peak = stage_peak(peaks, run.get("precision"), stage, run.get("stage_precisions"))
            if stats.get("achieved_gflops") and peak:
                shares.setdefault(run["name"], {})[stage] = 100 * stats["achieved_gflops"] / peak
    return shares


def _page(result: dict) -> str:
    runs, ratios = result["runs"], result.get("ratios") or {}
    parts = ["<h2>Runs</h2>", _runs_table(result), image(fps_bars(runs, ratios), "frames per second")]
    if any(r.get("stages") for r in runs):
        parts += ["<h2>Stages</h2>", image(stage_bars(runs), "time per stage"), _stages_table(result)]
    shares = peak_shares(result)
    if shares:
        parts += ["<h2>Share of the machine's peak</h2>", image(peak_bars(shares), "% of peak"), _peaks_note(result)]
    if result.get("scaling"):
        parts += ["<h2>Scaling</h2>", image(scaling_curves(result["scaling"]), "scaling curves",
                                            caption="latency (solid) and memory (dashed) against memory slots, "
                                                    "objects and frame size")]
    parts += ["<h2>Machine and versions</h2>", _machine_table(result["machine"]), "<h2>Settings</h2>",
              table(["setting", "value"], [(k, _text(v)) for k, v in result.get("settings", {}).items()])]
    settings = result.get("settings", {})
    size = settings.get("size")
    title = "hmmn-bench" + (f": {size[0]}x{size[1]}, {settings.get('objects')} objects" if size else "")
    return page(title, "\n".join(parts))


def _runs_table(result: dict) -> str:
    ratios = result.get("ratios") or {}
    header = ["run", "median ms", "p90 ms", "frames/s", "speed-up", "GFLOP/s", "state MB", "masks agree %"]
    rows, classes = [], []
    for r in result["runs"]:
        ratio = ratios.get(r["name"])
        rows.append([r["name"], _num(r.get("median_ms"), 1), _num(r.get("p90_ms"), 1), _num(r.get("fps"), 3),
                     f"{ratio:.2f}x" if ratio else "baseline" if ratios and r is result["runs"][0] else "-",
                     _num(r.get("achieved_gflops"), 2), _text(r.get("peak_mem_mb")), _num(r.get("mask_agreement"), 3)])
        css = [""] * len(rows[-1])
        if ratio:
            css[4] = "better" if ratio > 1 else "worse"
        if r.get("mask_agreement") is not None and r["mask_agreement"] < 99.0:
            css[7] = "worse"
        classes.append(css)
    return table(header, rows, classes)


def _stages_table(result: dict) -> str:
    """Rows: stages; per run its median ms and, where counted, GFLOP/s and % of peak."""
    peaks = result["machine"].get("cpu_peak_gflops") or {}
    staged = [r for r in result["runs"] if r.get("stages")]
    stages = []
    for r in staged:
        stages += [s for s in r["stages"] if s not in stages]
    rows = []
    for stage in stages:
        row = [stage]
        for r in staged:
            s = r["stages"].get(stage)
            if not s:
                row.append("-")
                continue
            cell = f"{s['median_ms']:.1f} ms"
            peak = stage_peak(peaks, r.get("precision"), stage, r.get("stage_precisions"))
            if s.get("achieved_gflops"):
                cell += f", {s['achieved_gflops']:.1f} GFLOP/s"
                if peak:
                    cell += f" ({100 * s['achieved_gflops'] / peak:.1f}% of peak)"
            row.append(cell)
        rows.append(row)
    return table(["stage"] + [r["name"] for r in staged], rows)


def _peaks_note(result: dict) -> str:
    m = result["machine"]
    peaks = m.get("cpu_peak_gflops") or {}
    per_cycle = m.get("ops_per_cycle_per_core") or {}
    listed = ", ".join(f"{p} {v} GFLOP/s ({per_cycle.get(p)} per cycle per core)" for p, v in peaks.items())
    probe = m.get("matmul_probe_gflops")
    text = (f"Peak: {m.get('threads')} threads x {m.get('clock_ghz')} GHz x operations per cycle per core of "
            f"{m.get('microarchitecture')}: {listed}. Each stage against its run's precision, match against FP32.")
    if probe:
        text += " A matrix-product probe reached " + ", ".join(f"{p} {v} GFLOP/s" for p, v in probe.items()) + "."
    return f'<p class="note">{esc(text)}</p>'


def _machine_table(machine: dict) -> str:
    from importlib import metadata

    rows = [(label, _text(machine.get(key))) for key, label in MACHINE_FIELDS if machine.get(key) is not None]
    try:
        rows.append(("hmmn-deploy", metadata.version("hmmn-deploy")))
    except metadata.PackageNotFoundError:
        pass
    return table(["", ""], rows)


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items())
    return "-" if value is None else str(value)
