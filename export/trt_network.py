"""NVIDIA's verdict on a graph: parsed by TensorRT's own ONNX parser into a strongly typed
network, its inputs and outputs held to the graph's contract, its layer precisions counted and
the precision plan's FP32 islands checked there. Needs a TensorRT flavour, not a GPU (the
TensorRT-RTX parser runs anywhere). Without TensorRT, `audit` (a transcribed table) stands in.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Dict, List, Tuple

from hmmn_ref.errors import HMMNError

from ..core import tensorrt_lib
from ..core.tensorrt_lib import Flavor
from ..core.contracts import GraphSpec

# The plan's FP32 islands (DESIGN.md "Precision"; manifest FLOAT32_PARTS) as rules on the built
# network: (layer types, "all" = every such layer's output is FP32 / "any" = at least one is).
FP32_ISLANDS: Dict[str, List[Tuple[str, Tuple[str, ...], str]]] = {
    "match": [
        ("1/16 affinity (a product in FP32)", ("MATRIX_MULTIPLY", "EINSUM"), "any"),
        ("softmaxes over memory positions", ("SOFTMAX",), "all"),
        ("top-k guide scores", ("TOPK",), "all"),
    ],
    # the output softmaxes are written out (hmmn_ref.modules.plane_softmax): their exponentials,
    # and the aggregation's logarithms, are the decode graph's UNARY layers
    "decode": [("output softmax and aggregation (exp, log)", ("UNARY",), "all")],
}
# What the FP16 plan lowers: every convolution of these graphs runs in FP16.
FP16_LAYERS = {"encode_query": ("CONVOLUTION",), "encode_memory": ("CONVOLUTION",), "decode": ("CONVOLUTION",)}

_DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT32": "int32", "INT64": "int64", "BOOL": "bool"}
_SHORT = {"FLOAT": "FP32", "HALF": "FP16", "BF16": "BF16", "INT8": "INT8", "FP8": "FP8"}


class ParseError(HMMNError, RuntimeError):
    """TensorRT's parser refused a graph; the message names the node and the parser's reason."""


@dataclasses.dataclass
class NetworkVerdict:
    graph: str
    parser: str  # "tensorrt-rtx 1.7.1.116"
    layers: int = 0
    precisions: Dict[str, int] = dataclasses.field(default_factory=dict)  # FP32 / FP16 / INT64 ... -> layers
    islands: Dict[str, str] = dataclasses.field(default_factory=dict)  # island -> what the network has
    problems: List[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"parser": self.parser, "layers": self.layers, "precisions": self.precisions,
                "fp32_islands": self.islands, "problems": self.problems, "passed": self.passed}

    def precision_line(self) -> str:
        return f"FP16 {self.precisions.get('FP16', 0)} / FP32 {self.precisions.get('FP32', 0)} layers"


def _name(enum_value) -> str:
    return str(enum_value).split(".")[-1]


def parse_network(trt, onnx_path: str, logger=None):
    """-> (builder, strongly typed network, parser); ParseError names each failing node."""
    logger = logger or trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            errors.append(f"node {e.node_name()!r} ({e.node_operator()}): {e.desc()}" if e.node() >= 0 else e.desc())
        raise ParseError(f"TensorRT's parser refused {onnx_path}: " + "; ".join(errors or ["no reason given"]))
    return builder, network, parser


def _io_problems(network, spec: GraphSpec) -> List[str]:
    problems = []
    for kind, count, get, specs in (("input", network.num_inputs, network.get_input, spec.inputs),
                                    ("output", network.num_outputs, network.get_output, spec.outputs)):
        parsed = {t.name: t for t in (get(i) for i in range(count))}
        if list(parsed) != [s.name for s in specs]:
            problems.append(f"{kind}s are {list(parsed)}, the contract says {[s.name for s in specs]}")
            continue
        for s in specs:
            t = parsed[s.name]
            dtype = _DTYPES.get(_name(t.dtype), _name(t.dtype))
            if dtype != s.dtype:
                problems.append(f"{kind} {s.name} is {dtype} in TensorRT, the contract says {s.dtype}")
            if len(t.shape) != len(s.dims):
                problems.append(f"{kind} {s.name} has rank {len(t.shape)} in TensorRT, the contract says {len(s.dims)}")
                continue
            for axis, (got, want) in enumerate(zip(t.shape, s.dims)):
                if isinstance(want, int) and got != want:
                    problems.append(f"{kind} {s.name} axis {axis} is {got} in TensorRT, the contract says {want}")
    return problems


def _layer_types(network) -> List[Tuple[str, str]]:
    """(layer type, dtype of its first output) of every layer: what the strongly typed build keeps."""
    layers = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        layers.append((_name(layer.type), _name(layer.get_output(0).dtype)))
    return layers


def _plan_problems(graph: str, precision: str, layers, islands: Dict[str, str]) -> List[str]:
    problems = []
    if precision == "fp32":
        low = sum(1 for _, dtype in layers if dtype == "HALF")
        return [f"{low} layers compute in FP16 in an FP32 export"] if low else []
    for label, types, rule in FP32_ISLANDS.get(graph, []):
        dtypes = [dtype for kind, dtype in layers if kind in types]
        fp32 = sum(1 for d in dtypes if d == "FLOAT")
        islands[label] = f"{fp32} of {len(dtypes)} {'/'.join(types)} layers FP32"
        if not dtypes:
            problems.append(f"FP32 island '{label}': no {'/'.join(types)} layer in the network")
        elif (rule == "all" and fp32 != len(dtypes)) or (rule == "any" and fp32 == 0):
            problems.append(f"FP32 island '{label}': {islands[label]}, the plan keeps {rule} in FP32")
    for kind in FP16_LAYERS.get(graph, ()):
        dtypes = [dtype for k, dtype in layers if k == kind]
        if not dtypes or any(d != "HALF" for d in dtypes):
            problems.append(f"{sum(d == 'HALF' for d in dtypes)} of {len(dtypes)} {kind} layers in FP16; "
                            "the FP16 plan runs all of them in FP16")
    return problems


def check_graph(flavor: Flavor, onnx_path: str, spec: GraphSpec, precision: str) -> NetworkVerdict:
    """Parse one graph with `flavor`'s parser and check it; parse failures become problems."""
    trt = tensorrt_lib.load(flavor)
    verdict = NetworkVerdict(spec.name, f"{flavor.name} {trt.__version__}")
    try:
        _builder, network, _parser = parse_network(trt, onnx_path)
    except ParseError as exc:
        verdict.problems.append(str(exc))
        return verdict
    layers = _layer_types(network)
    verdict.layers = len(layers)
    verdict.precisions = dict(collections.Counter(_SHORT.get(d, d) for _, d in layers))
    verdict.problems += _io_problems(network, spec)
    verdict.problems += _plan_problems(spec.name, precision, layers, verdict.islands)
    return verdict
