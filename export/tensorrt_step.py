"""hmmn-export's TensorRT steps: NVIDIA's verdict on every graph, then the engines.

The verdict runs whenever a TensorRT flavour is installed (with or without --engines); without
one, the transcribed operator table of `audit` stands in, and the manifest says which ran.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import onnx

from hmmn_ref.errors import Exit
from hmmn_ref.shell import detail

from ..core import tensorrt_lib
from ..core.tensorrt_lib import Flavor, TensorRTUnavailable
from . import audit, engines, manifest
from ..core.contracts import GraphSpec
from .trt_network import check_graph

RUNTIME_CACHE = "rtx_runtime.cache"  # TensorRT-RTX's JIT kernels, filled on first load, beside the engines


def choose_builder(requested: str, gpu_arch: Optional[Sequence[str]]) -> Union[Flavor, str]:
    """The builder flavour, or why there is none. ValueError for --gpu-arch with enterprise TensorRT."""
    try:
        flavor = tensorrt_lib.choose_builder(requested)
    except TensorRTUnavailable as exc:
        return str(exc)
    if gpu_arch and flavor is not tensorrt_lib.TENSORRT_RTX:
        raise ValueError("--gpu-arch picks TensorRT-RTX's targets; enterprise TensorRT builds for the GPU it runs "
                         "on. Drop --gpu-arch, or pass --builder tensorrt-rtx")
    trt = tensorrt_lib.load(flavor)
    for target in gpu_arch or ():
        tensorrt_lib.compute_capability_enum(trt, target)  # ValueError naming the targets it knows
    return flavor


def verdict(folder: str, specs: Mapping[str, GraphSpec], precision: str, preferred: Optional[Flavor], log
            ) -> Tuple[bool, dict]:
    """Each graph through TensorRT's parser (or, with no TensorRT here, the transcribed audit).
    -> (passed, the manifest's `tensorrt_network` record)."""
    flavor = tensorrt_lib.parser_flavor(preferred)
    if flavor is None:
        detail(log, "TensorRT check: no TensorRT is installed, so the transcribed TensorRT 10 operator table stands in "
                    f"(NVIDIA's own parser runs when one is: {tensorrt_lib.TENSORRT_RTX.install}):")
        models = {name: onnx.load(os.path.join(folder, f"{name}.onnx"), load_external_data=False) for name in specs}
        findings = audit.audit_models(models)
        for name, items in findings.items():
            detail(log, f"  {'PASS' if not items else 'FAIL'}  {name}: {len(models[name].graph.node)} nodes"
                        + "".join(f"\n        {f}" for f in items))
        return not any(findings.values()), {
            "checked_by": None, "note": "no TensorRT installed: the transcribed operator table (audit) was checked",
            "audit": {name: [str(f) for f in items] for name, items in findings.items()}}
    detail(log, f"TensorRT check: each graph parsed by {flavor.name} {tensorrt_lib.version(flavor)}'s ONNX parser into a "
                "strongly typed network (no GPU needed):")
    graphs = {}
    for name, spec in specs.items():
        result = check_graph(flavor, os.path.join(folder, f"{name}.onnx"), spec, precision)
        graphs[name] = result.to_dict()
        islands = "; ".join(f"{k}: {v}" for k, v in result.islands.items())
        detail(log, f"  {'PASS' if result.passed else 'FAIL'}  {name}: {result.layers} layers, {result.precision_line()}"
                    + (f"; {islands}" if islands else "") + "".join(f"\n        {p}" for p in result.problems))
    passed = all(g["passed"] for g in graphs.values())
    return passed, {"checked_by": f"{flavor.name} {tensorrt_lib.version(flavor)}", "graphs": graphs}


def not_built(reason: str) -> Dict:
    return {"built": False, "reason": reason, "builder": None, "targets": [], "targets_are_default": False,
            "gpu": None, "runtime_cache": None, "files": {}}


def build(folder: str, specs: Mapping[str, GraphSpec], size, max_objects: int, capacity: int, flavor: Flavor,
          gpu_arch: Optional[Sequence[str]], timing_cache: Optional[str], log) -> Tuple[Dict, int]:
    """Engines for every graph -> (the manifest's `engines` section, exit code 0 or 3). A failed
    build removes every engine file it wrote: the folder holds all four engines or none."""
    if flavor is tensorrt_lib.TENSORRT:
        timing_cache = timing_cache or engines.default_timing_cache()
    try:
        files = engines.build_engines(folder, specs, size, max_objects, capacity, flavor, gpu_arch, timing_cache, log)
    except Exception as exc:  # parser, builder or CUDA errors: keep the validated graphs
        detail(log, f"engines not built: {exc}. The ONNX graphs and the manifest are written.")
        for name in specs:
            partial = os.path.join(folder, f"{name}.engine")
            if os.path.exists(partial):
                os.remove(partial)
        return not_built(f"build failed: {exc}"), Exit.ENGINES_NOT_BUILT
    targets, default, gpu = engines.engine_targets(flavor, gpu_arch)
    record = {
        "built": True, "reason": "",
        "builder": {"name": flavor.name, "version": tensorrt_lib.version(flavor)},
        "targets": targets, "targets_are_default": default, "gpu": gpu,
        "runtime_cache": RUNTIME_CACHE if flavor is tensorrt_lib.TENSORRT_RTX else None,
        "files": {g: {**manifest.file_entry(folder, e["file"]), "profile": e["profile"],
                      "build_seconds": e["build_seconds"]} for g, e in files.items()},
    }  # fmt: skip
    where = "" if gpu is None else f" ({gpu})"
    detail(log, f"  engines run on compute capability {', '.join(targets)}{where}"
                + (" (the builder's default set)" if default else ""))
    return record, Exit.DONE
