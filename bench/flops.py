"""Floating-point operations of the stage graphs, counted from the ONNX files at given dims.

Counted: Conv and ConvTranspose (2 x multiply-accumulates), MatMul and Gemm (2 x M x N x K),
two-operand Einsum (2 x the product of every index's size).
Element-wise work, softmax, TopK and gathers are left out: they move memory rather than
compute. Shapes come from shape inference (ONNX Runtime's symbolic inference, else ONNX's)
with every dynamic dim set.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping

import numpy as np

from ..core.contracts import GraphSpec


def _shapes(model) -> Dict[str, tuple]:
    out = {}
    for info in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            out[info.name] = tuple(d.dim_value for d in dims)
    for init in model.graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def graph_flops(path: str, spec: GraphSpec, dims: Mapping[str, int]) -> int:
    """FLOPs of one call of the graph at `dims` (symbol -> value, see contracts.dim_values)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    concrete = {s.name: s.shape(dict(dims)) for s in spec.inputs}
    for value in model.graph.input:
        if value.name in concrete:
            for d, size in zip(value.type.tensor_type.shape.dim, concrete[value.name]):
                d.Clear()
                d.dim_value = int(size)
    return model_flops(model)


def model_flops(model) -> int:
    """FLOPs of an ONNX model whose inputs have concrete shapes."""
    import onnx

    try:  # ONNX Runtime's symbolic inference follows shapes through Shape/Reshape chains
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # not installed, or an op it cannot follow: ONNX's own inference
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = _shapes(model)
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shapes.get(node.input[1])
            y = shapes.get(node.output[0]) if node.op_type == "Conv" else shapes.get(node.input[0])
            if w and y:
                group = next((a.i for a in node.attribute if a.name == "group"), 1)
                per_output = (w[1] if node.op_type == "Conv" else w[0] // group) * int(np.prod(w[2:]))
                total += 2 * int(np.prod(y)) * per_output
        elif node.op_type in ("MatMul", "Gemm"):
            a, y = shapes.get(node.input[0]), shapes.get(node.output[0])
            if a and y:
                transposed = node.op_type == "Gemm" and any(x.name == "transA" and x.i for x in node.attribute)
                k = a[-2] if transposed else a[-1]
                total += 2 * int(np.prod(y)) * k
        elif node.op_type == "Einsum" and len(node.input) == 2:
            total += _einsum_flops(node, shapes)
    return total


def _einsum_flops(node, shapes) -> int:
    equation = next(a.s.decode() for a in node.attribute if a.name == "equation").replace(" ", "")
    terms = equation.split("->")[0].split(",")
    sizes: dict = {}
    for term, name in zip(terms, node.input):
        shape = shapes.get(name)
        if shape is None or "..." in term or len(term) != len(shape):
            return 0  # unknown shape or broadcast dims: not counted
        sizes.update(zip(term, shape))
    return 2 * int(np.prod(list(sizes.values())))


class FlopModel:
    """FLOPs per frame for N objects and a bank of T slots at a padded HxW size. `match` grows
    linearly in T (its affinities): it is counted at T = 1 and 2 and extended in T."""

    def __init__(self, folder: str, specs: Mapping[str, GraphSpec], height: int, width: int, objects: int) -> None:
        from ..core.contracts import dim_values

        def count(name: str, t: int) -> int:
            return graph_flops(os.path.join(folder, f"{name}.onnx"), specs[name], dim_values(objects, t, height, width))

        self.fixed = count("encode_query", 1) + count("encode_memory", 1) + count("decode", 1)
        one, two = count("match", 1), count("match", 2)
        self.match_base, self.match_per_slot = one - (two - one), two - one
        self.stages = {"encode_query": count("encode_query", 1), "encode_memory": count("encode_memory", 1),
                       "decode": count("decode", 1)}

    def match(self, slots: int) -> int:
        return self.match_base + self.match_per_slot * slots

    def frame(self, slots: int) -> int:
        return self.fixed + self.match(slots)
