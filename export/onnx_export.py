"""ONNX export of one stage graph, from its contract: names, dynamic dims, example inputs."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from typing import Dict, Mapping

import numpy as np
import onnx
import torch

from hmmn_ref.errors import Exit, HMMNError

from ..core.contracts import DERIVED, GraphSpec, TensorSpec, dim_values

OPSET = 18  # TensorRT 10.0 parses opsets 9..20; ONNX Runtime any recent one

# Example sizes for tracing: distinct values, none 0 or 1 (torch.export specialises those).
EXAMPLE_DIMS = dim_values(n=3, t=4, height=96, width=128)


class ExportError(HMMNError, RuntimeError):
    """A graph that could not be exported, or whose ONNX file breaks its contract."""

    exit_code = Exit.FAILED  # the options were right; the work failed (nothing is kept)


def example_inputs(spec: GraphSpec, values: Mapping[str, int] = EXAMPLE_DIMS, seed: int = 0) -> Dict[str, np.ndarray]:
    """Random inputs that satisfy the contract (tracking maps index the 1/16 grid)."""
    rng = np.random.default_rng(seed)
    hw = values["h"] * values["w"]
    out = {}
    for s in spec.inputs:
        shape = s.shape(values)
        if s.name == "tracks":
            out[s.name] = rng.integers(0, hw, shape).astype(np.int32)
        elif s.name == "slot_age":
            out[s.name] = np.arange(shape[0] - 1, -1, -1, dtype=np.int32)
        elif s.name == "pad":
            out[s.name] = np.zeros(shape, np.int32)
        else:
            out[s.name] = rng.random(shape).astype(s.dtype)
    return out


def _torch_dims(spec: GraphSpec) -> Dict[str, Dict[int, object]]:
    """torch.export dynamic shapes: roots N, T and the 16-pixel cells h, w; the rest from DERIVED."""
    from torch.export import Dim

    n, t = Dim("N", min=1, max=256), Dim("T", min=1, max=4096)
    h, w = Dim("h", min=2, max=512), Dim("w", min=2, max=512)
    cells = {"N": n, "T": t, "H": h, "W": w}  # H and W counted in 16-pixel cells

    def symbol(name: str):
        free, ratio, offset = DERIVED.get(name, (name, 1, 0))
        scale = 16 // ratio if free in ("H", "W") else 1
        expr = cells[free] if scale == 1 else scale * cells[free]
        return expr + offset if offset else expr

    return {
        s.name: {axis: symbol(d) for axis, d in enumerate(s.dims) if isinstance(d, str)} or None
        for s in spec.inputs
    }


def export_graph(module: torch.nn.Module, spec: GraphSpec, path: str) -> onnx.ModelProto:
    """Export `module` to `path` with the contract's names and dynamic dims; returns the model."""
    args = tuple(torch.from_numpy(v) for v in example_inputs(spec).values())
    log = io.StringIO()
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(log):
            warnings.simplefilter("ignore")
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                input_names=spec.input_names,
                output_names=spec.output_names,
                dynamic_shapes=_torch_dims(spec),
                opset_version=OPSET,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; keep its message
        raise ExportError(f"{spec.name}: torch.onnx.export failed: {exc}\n{log.getvalue()[-2000:]}") from exc
    model = program.model_proto
    name_dims(model, spec)
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    tmp = path + ".tmp"
    onnx.save_model(model, tmp)
    os.replace(tmp, path)
    return model


def name_dims(model: onnx.ModelProto, spec: GraphSpec) -> None:
    """Give the graph's I/O dims the contract's symbols, and check names, ranks and dtypes."""
    for kind, declared, actual in (("input", spec.inputs, model.graph.input), ("output", spec.outputs, model.graph.output)):
        names = [v.name for v in actual]
        if names != [s.name for s in declared]:
            raise ExportError(f"{spec.name}: ONNX {kind}s are {names}, the contract says {[s.name for s in declared]}")
        for s, value in zip(declared, actual):
            _check_and_name(spec.name, s, value)


def _check_and_name(graph: str, spec: TensorSpec, value: onnx.ValueInfoProto) -> None:
    tensor = value.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    if dtype != spec.dtype:
        raise ExportError(f"{graph}: {spec.name} is {dtype} in ONNX, the contract says {spec.dtype}")
    dims = tensor.shape.dim
    if len(dims) != len(spec.dims):
        raise ExportError(f"{graph}: {spec.name} has rank {len(dims)} in ONNX, the contract says {len(spec.dims)}")
    for axis, (d, want) in enumerate(zip(dims, spec.dims)):
        if isinstance(want, int):
            if d.HasField("dim_param") or d.dim_value != want:
                raise ExportError(f"{graph}: {spec.name} axis {axis} is {d.dim_param or d.dim_value} in ONNX, "
                                  f"the contract says {want}")
        else:
            d.Clear()
            d.dim_param = want
