"""Per-operator profile of the match graph on ONNX Runtime and OpenVINO, at one size, object
count and slot count, on synthetic inputs of the contract's shapes (match's cost does not
depend on the values, only on N, T and the frame size).

    python -m hmmn_deploy.bench.match_profile FOLDER --size 480x854 --objects 2 --slots 3

Prints, per runtime, the operator types by total time (and the share of the graph), so that
the time spent in element-wise work over the N x T x hw x hw affinities, top-k and gathers
can be told apart from the matrix products that the FLOP count sees.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np


def match_inputs(folder: str, height: int, width: int, objects: int, slots: int, seed: int = 0) -> Dict[str, np.ndarray]:
    import hmmn_ref

    from ..core import manifest as manifest_io
    from ..core.contracts import frame_dims, graph_specs
    from ..export.onnx_export import example_inputs

    record = manifest_io.read_manifest(folder)
    config = hmmn_ref.HMMNConfig.from_dict(record["model"]["config"])
    spec = graph_specs(config, record["precision"]["name"])["match"]
    dims = frame_dims(objects, slots, height, width)
    return example_inputs(spec, dims, seed)  # random, within the contract


def profile_openvino(path: str, feeds, repeats: int, threads: Optional[int], precision: str = "f32") -> List[dict]:
    import openvino as ov

    core = ov.Core()
    config = {"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()
    request.infer(feeds)  # warm-up
    totals: Dict[str, float] = defaultdict(float)
    for _ in range(repeats):
        request.infer(feeds)
        for info in request.get_profiling_info():
            totals[info.node_type] += info.real_time.total_seconds() * 1000.0 / repeats
    return _rank(totals)


def profile_onnxruntime(path: str, feeds, repeats: int, threads: Optional[int]) -> List[dict]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "match")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)  # warm-up (profiled too: dropped below)
        for _ in range(repeats):
            session.run(None, feeds)
        events = json.load(open(session.end_profiling()))
    runs = [e for e in events if e.get("name") == "model_run"]
    first_end = runs[0]["ts"] + runs[0]["dur"] if runs else 0
    totals: Dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= first_end:
            totals[e["args"]["op_name"]] += e["dur"] / 1000.0 / repeats
    return _rank(totals)


def _rank(totals: Dict[str, float]) -> List[dict]:
    whole = sum(totals.values()) or 1.0
    return [{"op": op, "ms": round(ms, 2), "share_%": round(100 * ms / whole, 1)}
            for op, ms in sorted(totals.items(), key=lambda kv: -kv[1]) if ms > 0]


def main(argv: Optional[List[str]] = None) -> int:
    from hmmn_ref.shell import parse_size

    p = argparse.ArgumentParser(prog="python -m hmmn_deploy.bench.match_profile", description=__doc__.split("\n")[0])
    p.add_argument("folder")
    p.add_argument("--size", type=parse_size, default=(480, 854))
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--slots", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--json", help="write the profiles here")
    args = p.parse_args(argv)
    feeds = match_inputs(args.folder, args.size[0], args.size[1], args.objects, args.slots)
    path = os.path.join(args.folder, "match.onnx")
    result = {"size": list(args.size), "objects": args.objects, "slots": args.slots,
              "openvino_fp32": profile_openvino(path, feeds, args.repeats, args.threads),
              "onnxruntime_fp32": profile_onnxruntime(path, feeds, args.repeats, args.threads)}
    for name in ("onnxruntime_fp32", "openvino_fp32"):
        rows = result[name]
        print(f"{name}: match at {args.size[0]}x{args.size[1]}, N={args.objects}, T={args.slots}: "
              f"{sum(r['ms'] for r in rows):.1f} ms in operators")
        for r in rows[: args.top]:
            print(f"    {r['op']:<28} {r['ms']:>9.2f} ms {r['share_%']:>6.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
