"""TensorRT compatibility audit of ONNX graphs, without a GPU.

Every node is checked against the operator table of TensorRT 10's ONNX parser, kept as data
in `data/trt10_onnx_ops.json` (transcribed from onnx-tensorrt's docs/operators.md; its
`source` field names the version), plus the restrictions that table states for the operators
our graphs use. A failure names the graph, the node, the operator and the rule.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional

import onnx
from onnx import helper, numpy_helper

TABLE_PATH = os.path.join(os.path.dirname(__file__), "data", "trt10_onnx_ops.json")
# TensorRT 10.0, the oldest 10.x, parses opsets 9..20 (later 10.x releases parse more).
OPSET_RANGE = (9, 20)
TOPK_MAX_K = 3840
# The table's "supported types" are those of an operator's data input: the first, except Where's.
DATA_INPUT = {"Where": 1}

ONNX_TYPE_NAMES = {
    onnx.TensorProto.FLOAT: "FP32", onnx.TensorProto.FLOAT16: "FP16", onnx.TensorProto.BFLOAT16: "BF16",
    onnx.TensorProto.INT32: "INT32", onnx.TensorProto.INT64: "INT64", onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.UINT8: "UINT8", onnx.TensorProto.BOOL: "BOOL", onnx.TensorProto.DOUBLE: "DOUBLE",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Finding:
    graph: str
    node: str
    op: str
    rule: str

    def __str__(self) -> str:
        return f"{self.graph}: node {self.node!r} ({self.op}): {self.rule}"


def load_table(path: str = TABLE_PATH) -> dict:
    with open(path) as f:
        return json.load(f)


class _Graph:
    """Types and constant values of a model's tensors, for the rules."""

    def __init__(self, model: onnx.ModelProto) -> None:
        inferred = onnx.shape_inference.infer_shapes(model)
        g = inferred.graph
        self.types: Dict[str, int] = {}
        for v in list(g.input) + list(g.output) + list(g.value_info):
            self.types[v.name] = v.type.tensor_type.elem_type
        self.constants: Dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = attr.t
            for out in node.output:
                self.types.setdefault(out, 0)
        for t in g.initializer:
            self.types[t.name] = t.data_type
        self.nodes = list(g.node)

    def constant(self, name: str):
        t = self.constants.get(name)
        return None if t is None else numpy_helper.to_array(t)


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _restrictions(graph: _Graph, node: onnx.NodeProto) -> List[str]:
    """The table's stated restrictions for the operators in our graphs."""
    problems = []
    op = node.op_type
    if op == "TopK":
        k = graph.constant(node.input[1]) if len(node.input) > 1 else None
        if k is None:
            problems.append("K must be a constant (initializer)")
        elif int(k.reshape(-1)[0]) >= TOPK_MAX_K:
            problems.append(f"K must be less than {TOPK_MAX_K}, got {int(k.reshape(-1)[0])}")
        if _attr(node, "sorted", 1) != 1:
            problems.append("`sorted` must be 1")
    elif op in ("Squeeze", "Unsqueeze", "ReduceSum", "ReduceProd", "ReduceMax", "ReduceMean"):
        if len(node.input) > 1 and node.input[1] and graph.constant(node.input[1]) is None:
            problems.append("`axes` must be a constant")
    elif op == "Resize":
        mode = _attr(node, "mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = _attr(node, "coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        if mode not in ("nearest", "linear"):
            problems.append(f"resize mode {mode!r} is not nearest or linear")
        if ctm not in ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"):
            problems.append(f"coordinate transformation {ctm!r} is not supported")
        if _attr(node, "antialias", 0):
            problems.append("antialiasing is not supported")
    elif op == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            problems.append("the Indices output is not supported")
        if any(d != 1 for d in (_attr(node, "dilations", []) or [])):
            problems.append("dilations must be empty or all ones")
    elif op == "ScatterND" and _attr(node, "reduction", b"none") not in (b"none", "none"):
        problems.append("reduction other than none is not supported")
    return problems


def audit_model(model: onnx.ModelProto, graph_name: str, table: Optional[dict] = None) -> List[Finding]:
    """All findings for one model (empty when TensorRT 10 should parse it)."""
    table = table or load_table()
    ops = table["operators"]
    findings = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not OPSET_RANGE[0] <= imp.version <= OPSET_RANGE[1]:
            findings.append(Finding(graph_name, "<model>", "opset",
                                    f"opset {imp.version} is outside TensorRT 10's {OPSET_RANGE[0]}..{OPSET_RANGE[1]}"))
    graph = _Graph(model)
    for node in graph.nodes:
        name = node.name or (node.output[0] if node.output else "?")
        if node.domain not in ("", "ai.onnx"):
            findings.append(Finding(graph_name, name, node.op_type, f"custom domain {node.domain!r} needs a plugin"))
            continue
        entry = ops.get(node.op_type)
        if entry is None or not entry["supported"]:
            findings.append(Finding(graph_name, name, node.op_type, "operator not supported by TensorRT's ONNX parser"))
            continue
        allowed = set(entry["types"])
        data = node.input[DATA_INPUT.get(node.op_type, 0)] if node.input else ""
        type_name = ONNX_TYPE_NAMES.get(graph.types.get(data, 0)) if data else None
        if type_name and allowed and type_name not in allowed:
            findings.append(Finding(graph_name, name, node.op_type,
                                    f"input {data!r} is {type_name}; supported: {', '.join(sorted(allowed))}"))
        for problem in _restrictions(graph, node):
            findings.append(Finding(graph_name, name, node.op_type, problem))
    return findings


def audit_models(models: Dict[str, onnx.ModelProto]) -> Dict[str, List[Finding]]:
    table = load_table()
    return {name: audit_model(model, name, table) for name, model in models.items()}
