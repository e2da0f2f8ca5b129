"""Per-operator profile of the slowest stage graph, with the profiler of the run's backend:
ONNX Runtime's profiler, the torch profiler, or TensorRT's layer profiler."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Callable, Dict

import torch

from hmmn_ref.shell import detail

GRAPHS = ("encode_query", "encode_memory", "match", "decode")
REPEATS = 3


def capture_inputs(run, frame, graph: str):
    """One more step of the run; its timer keeps copies of `graph`'s inputs and outputs."""
    run.timer.capture(graph)
    run.step(frame, timed=False)
    captured = run.timer.captured.pop(graph)
    return captured["inputs"], captured["outputs"]


def profile_slowest_stage(run, frames, mask, folder: str, log: Callable[[str], None]) -> dict:
    stages = {k: v for k, v in run.stages().items() if k in GRAPHS}
    graph = max(stages, key=lambda k: stages[k]["median_ms"])
    os.makedirs(folder, exist_ok=True)
    inputs, outputs = capture_inputs(run, frames[-1], graph)
    log(f"profiling {graph} ({stages[graph]['median_ms']:.1f} ms median) on {run.name} -> {folder}")
    if run.backend == "onnxruntime":
        result = _onnxruntime(run, graph, inputs, folder)
    elif run.backend == "torch":
        result = _torch(run, graph, inputs, outputs, folder)
    elif run.backend == "openvino":
        result = {"file": None, "top_ops": _top(run.session.backend.profile(graph, inputs, outputs, repeats=REPEATS))}
    else:
        result = _tensorrt(run, graph, inputs, outputs, folder)
    result.update({"stage": graph, "backend": run.backend})
    lines = [f"{'operator':<28} {'ms per call':>12} {'share %':>8}"]
    total = sum(ms for _, ms in result["top_ops"]) or 1.0
    lines += [f"{op:<28} {ms:>12.2f} {100 * ms / total:>8.1f}" for op, ms in result["top_ops"]]
    with open(os.path.join(folder, f"{graph}_operators.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    detail(log, "\n".join("    " + line for line in lines[:12]))
    return result


def _top(per_op: Dict[str, float], limit: int = 15):
    return [(op, round(ms, 3)) for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:limit]]


def _onnxruntime(run, graph: str, inputs, folder: str) -> dict:
    from ..runtime.backends import ort_session

    backend = run.session.backend
    session = backend.sessions[graph]
    profiled = ort_session(backend.paths[graph], session.get_providers(),
                           session.get_session_options().intra_op_num_threads,
                           profile_prefix=os.path.join(folder, f"{graph}_ort"))
    feeds = {k: v.cpu().numpy() for k, v in inputs.items()}
    for _ in range(REPEATS):
        profiled.run(None, feeds)
    trace = profiled.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    per_op: Dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_op[e.get("args", {}).get("op_name", "?")] += e["dur"] / 1000.0 / REPEATS
    return {"file": trace, "top_ops": _top(per_op)}


def _torch(run, graph: str, inputs, outputs, folder: str) -> dict:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    backend = run.session.backend
    with profile(activities=activities) as prof:
        for _ in range(REPEATS):
            backend.run(graph, inputs, outputs)
        backend.synchronize()
    trace = os.path.join(folder, f"{graph}_torch_trace.json")
    prof.export_chrome_trace(trace)
    per_op = {e.key: e.self_cpu_time_total / 1000.0 / REPEATS for e in prof.key_averages()}
    return {"file": trace, "top_ops": _top(per_op)}


def _tensorrt(run, graph: str, inputs, outputs, folder: str) -> dict:
    """TensorRT's layer profiler (IProfiler) on the stage's execution context."""
    import tensorrt as trt

    class LayerTimes(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.ms: Dict[str, float] = defaultdict(float)

        def report_layer_time(self, layer_name, ms):
            self.ms[layer_name] += ms / REPEATS

    backend = run.session.backend
    context = backend.contexts[graph]
    times = LayerTimes()
    context.profiler = times
    try:
        for _ in range(REPEATS):
            backend.run(graph, inputs, outputs)
        backend.synchronize()
    finally:
        context.profiler = None
    path = os.path.join(folder, f"{graph}_trt_layers.json")
    with open(path, "w") as f:
        json.dump(times.ms, f, indent=2)
    return {"file": path, "top_ops": _top(times.ms)}

