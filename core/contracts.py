"""The I/O contract of every stage graph, declared once: names, dtypes, dims, tolerances.

The exporter names the ONNX inputs and outputs from these, the validator checks against
them, the manifest carries them for programs in other languages, and runtimes allocate
buffers from them. Dims are ints (static) or symbols of `DIMENSIONS`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Literal, Mapping, Sequence, Tuple, Union

import numpy as np

from hmmn_ref import HMMNConfig
from hmmn_ref.video import padded_size

Precision = Literal["fp32", "fp16"]
PRECISIONS: Tuple[Precision, ...] = ("fp32", "fp16")
Dim = Union[int, str]

# Every symbolic dim, with how it follows from the free ones (N, T, H, W).
DIMENSIONS: Dict[str, str] = {
    "N": "objects in the call (free)",
    "K": "N + 1: background first, then the objects",
    "T": "1/16 memory slots read by this call, oldest first, the previous frame last (free)",
    "H": "padded frame height, a multiple of 16 (free)",
    "W": "padded frame width, a multiple of 16 (free)",
    "h": "H / 16",
    "w": "W / 16",
    "h8": "H / 8",
    "w8": "W / 8",
    "h4": "H / 4",
    "w4": "W / 4",
}
FREE_DIMS = ("N", "T", "H", "W")
# The derived symbols: symbol -> (free symbol, ratio, offset), symbol = free // ratio + offset.
DERIVED: Dict[str, Tuple[str, int, int]] = {
    "K": ("N", 1, 1),
    "h": ("H", 16, 0), "w": ("W", 16, 0),
    "h8": ("H", 8, 0), "w8": ("W", 8, 0),
    "h4": ("H", 4, 0), "w4": ("W", 4, 0),
}  # fmt: skip


def free_value(symbol: str, value: int) -> Tuple[str, int]:
    """-> (free symbol, its value) that a value of `symbol` implies (a free symbol gives itself)."""
    if symbol not in DERIVED:
        return symbol, value
    free, ratio, offset = DERIVED[symbol]
    return free, (value - offset) * ratio


def dim_values(n: int, t: int, height: int, width: int) -> Dict[str, int]:
    """Values of every symbol for N objects, T slots and a padded HxW frame."""
    if height % 16 or width % 16:
        raise ValueError(f"padded size {height}x{width} is not a multiple of 16")
    values = {"N": n, "T": t, "H": height, "W": width}
    values.update({symbol: values[free] // ratio + offset for symbol, (free, ratio, offset) in DERIVED.items()})
    return values


def frame_dims(n: int, t: int, height: int, width: int) -> Dict[str, int]:
    """`dim_values` for an HxW frame before padding (hmmn_ref.video.padded_size pads it)."""
    return dim_values(n, t, *padded_size(height, width))


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How an output is compared with the reference.

    kind 'scaled': max|d| <= value * max|ref| (features); 'logits': max|d| / (1 + |ref|) <= value;
    'abs': max|d| <= value (probabilities); 'equal': fraction of equal elements >= value (indices);
    'scaled_p99': like 'scaled' on the 99th percentile of |d| (reads that take the first cells
    of a ranking, where reduced precision may reorder near-ties at a few positions).
    """

    kind: Literal["scaled", "logits", "abs", "equal", "scaled_p99"]
    value: float

    def measure(self, actual: np.ndarray, expected: np.ndarray) -> float:
        if self.kind == "equal":
            return float(np.mean(actual == expected)) if expected.size else 1.0
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        if not e.size:
            return 0.0
        d = np.abs(a - e)
        if self.kind == "scaled":
            return float(d.max() / max(np.abs(e).max(), 1e-12))
        if self.kind == "scaled_p99":
            return float(np.percentile(d, 99) / max(np.abs(e).max(), 1e-12))
        if self.kind == "logits":
            return float((d / (1.0 + np.abs(e))).max())
        return float(d.max())

    def passes(self, measured: float) -> bool:
        return measured >= self.value if self.kind == "equal" else measured <= self.value


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: float32, float16, int32
    dims: Tuple[Dim, ...]
    doc: str = ""
    tolerance: Tolerance = Tolerance("scaled", 1e-3)

    def shape(self, values: Mapping[str, int]) -> Tuple[int, ...]:
        return tuple(d if isinstance(d, int) else values[d] for d in self.dims)

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "dims": list(self.dims), "doc": self.doc}


@dataclasses.dataclass(frozen=True)
class GraphSpec:
    name: str
    doc: str
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        return next(s for s in self.inputs if s.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(s for s in self.outputs if s.name == name)

    @property
    def input_names(self) -> List[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> List[str]:
        return [s.name for s in self.outputs]

    def io_mismatch(self, input_names: Sequence[str], output_names: Sequence[str]) -> str:
        """What differs between a graph file's I/O names and the contract's ('' when nothing)."""
        if list(input_names) != self.input_names:
            return f"{self.name}: inputs {list(input_names)}, contract {self.input_names}"
        if list(output_names) != self.output_names:
            return f"{self.name}: outputs {list(output_names)}, contract {self.output_names}"
        return ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "doc": self.doc,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }


def graph_specs(cfg: HMMNConfig, precision: Precision) -> Dict[str, GraphSpec]:
    """The four contracts for a model configuration and precision plan."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    act = "float16" if precision == "fp16" else "float32"
    # FP16 moves features by ~1e-2 of their range; FP32 graphs agree with torch to ~1e-5.
    feat = Tolerance("scaled", 5e-2 if precision == "fp16" else 1e-3)
    d = cfg.decoder_dim
    t8, t4 = cfg.top_k, cfg.top_k_fine

    def a(name, dims, doc, tol=feat, dtype=act):
        return TensorSpec(name, dtype, tuple(dims), doc, tol)

    frame = TensorSpec("frame", "float32", (1, 3, "H", "W"), "RGB in [0, 1], zero-padded to multiples of 16")
    query = (
        a("query_key16", (1, cfg.key_dim_16, "h", "w"), "query key at 1/16"),
        a("query_key8", (1, cfg.key_dim_8, "h8", "w8"), "query key at 1/8"),
        a("query_key4", (1, cfg.key_dim_4, "h4", "w4"), "query key at 1/4"),
    )
    decoder_query = (
        a("fm_query", (1, d, "h", "w"), "query half of the decoder's convFM, with its bias"),
        a("fs8", (1, d, "h8", "w8"), "RF3.convFS of the query's r3 skip"),
        a("fs4", (1, d, "h4", "w4"), "RF2.convFS of the query's r2 skip"),
    )
    v16, v8, v4 = cfg.memory_value_widths
    frame_values = (  # cfg.memory_from_query: the frame's share of its memory values, from encode_query
        a("frame_value16", (1, v16, "h", "w"), "the memory value projection's share of the trunk's map at 1/16, with its bias"),
        a("frame_value8", (1, v8, "h8", "w8"), "the same at 1/8"),
        a("frame_value4", (1, v4, "h4", "w4"), "the same at 1/4"),
    ) if cfg.memory_from_query else ()
    memorised = query + frame_values if cfg.memory_from_query else (frame,)  # what encode_memory reads of its frame
    memory = (
        a("key16", ("N", cfg.key_dim_16, "h", "w"), "memory key at 1/16 per object"),
        a("value16", ("N", cfg.value_dim_16, "h", "w"), "memory value at 1/16 per object"),
        a("key8", ("N", "h", "w", 4, cfg.key_dim_8), "memory key at 1/8, the 2x2 pixels of each 1/16 cell"),
        a("value8", ("N", "h", "w", 4, cfg.value_dim_8), "memory value at 1/8, grouped by 1/16 cell"),
        a("key4", ("N", "h", "w", 16, cfg.key_dim_4), "memory key at 1/4, the 4x4 pixels of each 1/16 cell"),
        a("value4", ("N", "h", "w", 16, cfg.value_dim_4), "memory value at 1/4, grouped by 1/16 cell"),
    )
    tracks_tol = Tolerance("equal", 0.99)  # argmax ties may flip a few entries
    readouts = (
        a("readout16", ("N", cfg.value_dim_16, "h", "w"), "1/16 memory readout (without the query value)"),
        a("readout8", ("N", cfg.value_dim_8, "h8", "w8"), f"1/8 top-{t8} readout"),
        # The 1/4 read takes the first top-k-fine of the ranked 1/8 cells: in FP16 near-ties may
        # reorder at a few positions, so FP16 is held to its bound on 99% of the elements.
        a("readout4", ("N", cfg.value_dim_4, "h4", "w4"), f"1/4 top-{t4} readout",
          tol=Tolerance("scaled_p99", 5e-2) if precision == "fp16" else feat),
    )
    specs = [
        GraphSpec("encode_query", "Query frame -> keys and the decoder's object-independent features"
                  + (", and the frame's share of its memory values." if cfg.memory_from_query else "."),
                  (frame,), query + decoder_query + frame_values),
        GraphSpec("encode_memory",
                  ("encode_query's outputs for a frame" if cfg.memory_from_query else "Frame")
                  + " + per-object soft masks -> every object's keys and values.",
                  memorised + (
                   TensorSpec("masks", "float32", ("N", "H", "W"),
                              "probabilities of the objects to memorise (channels 1.. of decode's probs), 0 in the padding"),
                   TensorSpec("objects_sum", "float32", (1, "H", "W"),
                              "sum of the probabilities of every object of the video (decode's objects_sum)")),
                  memory),
        GraphSpec(
            "match",
            "Memory bank + query keys + tracking maps -> readouts at 1/16, 1/8, 1/4 and the new maps.",
            query + (
                a("mem_key16", ("T", "N", cfg.key_dim_16, "h", "w"), "1/16 keys of T slots, previous frame last"),
                a("mem_value16", ("T", "N", cfg.value_dim_16, "h", "w"), "1/16 values of the same slots"),
                TensorSpec("tracks", "int32", ("T", "N", "h", "w"),
                           "rows 0..T-2: where each older slot's positions are now (flat 1/16 index); row T-1 unused",
                           tracks_tol),
                TensorSpec("slot_age", "int32", ("T",),
                           "per slot, how many of the T slots are newer: T-1..0 in temporal order, 0 for slot T-1"),
                a("mem_key8", (2, "N", "h", "w", 4, cfg.key_dim_8), "1/8 keys: slot 0 first frame, slot 1 previous"),
                a("mem_value8", (2, "N", "h", "w", 4, cfg.value_dim_8), "1/8 values, same slots"),
                a("mem_key4", (2, "N", "h", "w", 16, cfg.key_dim_4), "1/4 keys, same slots"),
                a("mem_value4", (2, "N", "h", "w", 16, cfg.value_dim_4), "1/4 values, same slots"),
            ),
            readouts + (
                TensorSpec("tracks_out", "int32", ("T", "N", "h", "w"),
                           "the older slots' maps carried one frame forward, then the previous frame's flow",
                           tracks_tol),
            ),
        ),
        GraphSpec(
            "decode",
            "Readouts + query-side features -> soft-aggregated logits and probabilities.",
            readouts + decoder_query + (
                TensorSpec("pad", "int32", (4,), "padding of the frame: top, bottom, left, right"),
            ),
            (
                # FP16: where the aggregation saturates (|L| near its clamp, 16), rounding of the
                # decoder's FP16 output moves L by ~0.2 (1.4e-2 relative on the demo model)
                TensorSpec("logits", "float32", ("K", "H", "W"), "output logits L (spec 6), padded",
                           Tolerance("logits", 1e-2 if precision == "fp32" else 5e-2)),
                TensorSpec("probs", "float32", ("K", "H", "W"), "softmax of L over K, zero in the padding",
                           Tolerance("abs", 1e-3 if precision == "fp32" else 5e-2)),
                TensorSpec("objects_sum", "float32", (1, "H", "W"), "probs summed over the objects (channels 1..)",
                           Tolerance("abs", 1e-3 if precision == "fp32" else 5e-2)),
            ),
        ),
    ]  # fmt: skip
    return {s.name: s for s in specs}


GRAPH_NAMES: Sequence[str] = ("encode_query", "encode_memory", "match", "decode")
