"""OpenVINO backend: the export folder's ONNX graphs (or their INT8 quantization) compiled by
OpenVINO for its CPU, GPU or NPU device, run on the session's own buffers.

Binding: every input and output is an `openvino.Tensor` wrapping the torch buffer's memory
(a numpy view, `shared_memory=True`); OpenVINO reads the inputs and writes the outputs in
place. Nothing is copied per call. The wrappers are cached per buffer (address, shape), so
a video's frame loop creates none after its first frames.

Shapes: the graphs are dynamic in N, T, H and W. Each graph is compiled once per shape set,
reshaped to it (`static=True`, the default), when a shape set is first seen: every dimension
fixed but T, the memory slots (match's bank inputs: T grows every `mem_every` frames until the
bank is full, so it stays dynamic). N, H and W are fixed for a video, so a video compiles each
graph once, at its first frame (0.05-0.25 s a graph at 480x640). Static is not only an
optimisation: OpenVINO 2026.4's CPU plugin fails on the dynamic decode graph with more than one
object (a broadcast Add fused into a convolution: "Can not clone with new dims"), which
`static=False` shows; and the match graph static in all but T ran 38.6-40.4 ms against 42.6-44.0
fully dynamic (480x640, 1 object, 5 slots, this project's 2-core AMX Xeon; the convolution
graphs gain as much).

Precision plan (`compute`):

| compute | encode_query, encode_memory, decode | match |
| --- | --- | --- |
| fp32 | FP32 (`INFERENCE_PRECISION_HINT f32`: this CPU plugin's default is BF16 where the CPU has it) | FP32 |
| bf16 | BF16 (OpenVINO keeps its own FP32 islands: softmax, normalisations) | FP32 |
| int8 | NNCF's INT8 graphs (`export/quantize.py`; found by `core/int8_files.py`), the rest BF16 where the device has it | FP32 |

match is FP32 in every plan: its affinities, softmax and top-k scores are the FP32 islands
(a blanket BF16 hint moved its top-k ranking, 1.2e-1 relative error on the readouts).

A configuration whose keys are the trunk's own unit-length maps (`key_temperature`: the mobile
model, whose affinity is cos / 0.1) keeps `encode_query`, the graph that computes those keys, in
FP32 too: with it in BF16 the built-in mobile model scored J&F 83.9 on the 360 frames of
../shared/data/box instead of FP32's 88.8 (the error compounds from frame to frame); with only
`encode_query` in FP32 and the rest BF16, 88.8 again.
"""

from __future__ import annotations

import json
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from ..core.contracts import GraphSpec
from ..core.files import FileMismatch
from ..core import cpu
from ..core.int8_files import int8_graph, int8_ready, record_path
from .backends import Backend, graph_path
from .errors import ArtifactMismatch, BackendUnavailable, RuntimeInputError

COMPUTES = ("fp32", "bf16", "int8")
FP32_GRAPHS = ("match",)  # FP32 islands of every plan (see the module's note)
KEY_GRAPHS = ("encode_query",)  # FP32 too where the keys are the trunk's unit-length maps
CONV_GRAPHS = ("encode_query", "encode_memory", "decode")
DYNAMIC_DIMS = ("T",)  # the contracts' dimensions that change within a video: left dynamic when compiling
INT8_FOLDER = "openvino_int8"  # inside the export folder: NNCF's graphs and quantization.json
INSTALL = "pip install 'hmmn-deploy[openvino]' (or pip install openvino)"
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def import_openvino():
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailable(f"openvino is not installed ({exc}); {INSTALL}") from None
    return openvino


def normalise_device(device: Optional[str]) -> str:
    """OpenVINO's device name: 'cpu' (torch's spelling) and None are 'CPU'; 'gpu.1' is 'GPU.1'."""
    if device is None or device.lower() == "cpu":
        return "CPU"
    name = device.upper()
    if name.split(".")[0] not in ("CPU", "GPU", "NPU"):
        raise RuntimeInputError(f"OpenVINO device {device!r}: choose CPU, GPU or NPU (GPU.0, GPU.1 ... for one of several)")
    return name


def plan(compute: str, unit_keys: bool = False) -> Dict[str, str]:
    """graph -> the precision it runs in under `compute` ('int8' graphs run NNCF's model).
    unit_keys: the model's keys are its trunk's unit-length maps (encode_query stays FP32)."""
    if compute not in COMPUTES:
        raise RuntimeInputError(f"OpenVINO compute precision {compute!r}: choose one of {COMPUTES}")
    fp32 = FP32_GRAPHS + (KEY_GRAPHS if unit_keys else ())
    return {name: ("fp32" if name in fp32 else compute) for name in CONV_GRAPHS + FP32_GRAPHS}


def _manifest(folder: str) -> Optional[dict]:
    from ..core import manifest as manifest_io

    try:
        return manifest_io.read_manifest(folder)
    except Exception:  # no readable manifest: Session.open says what is wrong with the folder
        return None


def has_unit_keys(record: Optional[dict]) -> bool:
    """Whether the manifest's model keys by its trunk's unit-length maps (see the module's note)."""
    return record is not None and record["model"]["config"].get("key_temperature") is not None


def device_supports(core, device: str, compute: str) -> bool:
    """OpenVINO's capabilities for the device and, on the CPU, the CPU's native precisions
    (core/cpu.py): OpenVINO lists BF16 on an AMX CPU even under ONEDNN_MAX_CPU_ISA=AVX2."""
    capabilities = set(core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
    need = {"fp32": "FP32", "bf16": "BF16", "int8": "INT8"}[compute]
    return need in capabilities and (device.split(".")[0] != "CPU" or compute in cpu.native_precisions())


# OpenVINO pins its CPU threads to cores by default (ENABLE_CPU_PINNING): a pinned thread waits for
# its core when another process holds it, even with another core idle. Figures behind this
# default: docs/openvino.md, "Threads on shared cores" (tools/shared_cores.py).
OV_PIN_THREADS = False

# --precision auto: INT8 when its recorded J&F cost against FP32 is at most this many points.
AUTO_INT8_MAX_COST = 0.5


def int8_cost(folder: str) -> Optional[float]:
    """The INT8 graphs' recorded J&F change against FP32 (hmmn-quantize --accuracy-videos), or None
    when there are no current INT8 graphs, no accuracy record, or it was measured on random weights."""
    if not int8_ready(folder):
        return None
    try:
        with open(record_path(folder)) as f:
            accuracy = json.load(f).get("accuracy") or {}
        return float(accuracy["computes"]["int8"]["dJ&F"]) if accuracy.get("meaningful") else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def choose_compute(folder: str, device: str = "CPU") -> Tuple[str, str]:
    """--precision auto -> (compute precision, the reason in a sentence): int8 where its recorded J&F
    cost is within AUTO_INT8_MAX_COST, else bf16 where the CPU computes BF16 natively, else fp32."""
    if device.split(".")[0] != "CPU":
        return "fp32", f"on {device} auto keeps FP32 (the rule reads the CPU's units; name another precision)"
    cost = int8_cost(folder)
    native = cpu.native_precisions()
    unit_keys = has_unit_keys(_manifest(folder))
    if cost is not None and cost >= -AUTO_INT8_MAX_COST and "int8" in native and not unit_keys:
        return "int8", (f"its INT8 graphs cost {cost:+.2f} J&F against FP32 (recorded by hmmn-quantize; "
                        f"within {AUTO_INT8_MAX_COST}) and the CPU has INT8 units")
    if "int8" not in native:
        why_int8 = cpu.why_not_native("int8")
    elif unit_keys:
        why_int8 = ("its keys are its trunk's unit maps, which INT8 lowers too far on real video (the built-in "
                    "mobile model: J&F 46 on ../shared/data/box in INT8, 88.8 in FP32, whatever the generated "
                    "videos of hmmn-quantize's check say)")
    elif cost is None:
        why_int8 = f"no INT8 graphs with a J&F record (hmmn-quantize {folder} --accuracy-videos 8 makes them)"
    else:
        why_int8 = f"its INT8 graphs cost {cost:+.2f} J&F against FP32, more than {AUTO_INT8_MAX_COST}"
    if "bf16" in native:
        return "bf16", f"{why_int8}; the CPU computes BF16 natively"
    return "fp32", f"{why_int8}; and {cpu.why_not_native('bf16')}"


class OpenVINOBackend(Backend):
    """Graphs compiled by OpenVINO; buffers bound in place (see the module's note)."""

    name = "openvino"

    def __init__(
        self, folder: str, specs: Mapping[str, GraphSpec], device: Optional[str] = None, compute: str = "fp32",
        threads: Optional[int] = None, graphs: Optional[Mapping[str, dict]] = None, static: bool = True,
        record: Optional[dict] = None, pin_threads: Optional[bool] = None,
    ) -> None:
        """graphs: the manifest's `graphs` section (files checked by size and SHA-256 before they
        load); record: the whole manifest (its precision must be fp32); pin_threads: OpenVINO's
        ENABLE_CPU_PINNING (None: OV_PIN_THREADS)."""
        ov = import_openvino()
        super().__init__(specs, "cpu")  # buffers live in host memory on every OpenVINO device
        self.ov = ov
        self.core = ov.Core()
        self.ov_device = normalise_device(device)
        self.compute = compute or "fp32"
        self.plan = plan(self.compute, has_unit_keys(record))
        available = self.core.available_devices
        if not any(d == self.ov_device or d.split(".")[0] == self.ov_device for d in available):
            raise BackendUnavailable(f"OpenVINO here has no {self.ov_device} device (it has {available})")
        if record is not None and record["precision"]["name"] != "fp32":
            raise RuntimeInputError(f"the openvino backend reads FP32 graphs and lowers them itself (compute "
                                    f"fp32, bf16 or int8); {folder!r} holds {record['precision']['name']} graphs: "
                                    "export with --precision fp32")
        for c in sorted(set(self.plan.values())):
            if not device_supports(self.core, self.ov_device, c):
                caps = self.core.get_property(self.ov_device, "OPTIMIZATION_CAPABILITIES")
                why = (cpu.why_not_native(c) if self.ov_device.startswith("CPU") else None) or \
                    f"its capabilities: {', '.join(caps)}"
                raise RuntimeInputError(f"OpenVINO's {self.ov_device} does not support {c.upper()} here ({why}); "
                                        "choose another precision (--precision auto picks one) or device")
        # INT8 graphs keep their non-quantized operations in BF16 where the device has it.
        self.int8_rest = "bf16" if device_supports(self.core, self.ov_device, "bf16") else "fp32"
        self.static = static
        self.threads = threads
        self.pin_threads = OV_PIN_THREADS if pin_threads is None else pin_threads
        self.paths: Dict[str, str] = {}
        self.models = {}
        for name in specs:
            path = self._model_path(folder, name, graphs)
            try:
                self.models[name] = self.core.read_model(path)
            except Exception as exc:  # OpenVINO's own errors
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ArtifactMismatch(f"OpenVINO cannot read {path!r} ({reason}); export again with hmmn-export")
            self.paths[name] = path
        self.compiled: Dict[Tuple, object] = {}  # (graph, shapes or None) -> compiled model
        self.requests: Dict[Tuple, object] = {}  # same key -> its infer request
        self.wrapped: Dict[Tuple, object] = {}  # (data_ptr, shape, dtype) -> ov.Tensor on that memory
        if not static:  # static graphs compile when their shape set is first seen
            for name in specs:
                self._request(name, None)

    # -- files ---------------------------------------------------------------------------------
    def _model_path(self, folder: str, name: str, graphs: Optional[Mapping[str, dict]]) -> str:
        onnx_path = graph_path(folder, name, graphs)  # checked against the manifest
        if self.plan.get(name) != "int8":
            return onnx_path
        try:
            return int8_graph(folder, name, graphs)
        except FileMismatch as exc:
            raise ArtifactMismatch(str(exc)) from None

    # -- compilation ---------------------------------------------------------------------------
    def config(self, name: str) -> dict:
        precision = self.plan[name]
        if precision == "int8":
            precision = self.int8_rest
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision]}
        if self.ov_device == "CPU":
            # Flush denormals to zero: match's weights (a softmax times Gaussians of distant cells)
            # hold many values below 1e-38, and FMAs on denormals take microcode assists (match
            # ran 2-3x slower without this; the outputs were bit-identical with and without).
            config["CPU_DENORMALS_OPTIMIZATION"] = True
            config["ENABLE_CPU_PINNING"] = self.pin_threads
            if self.threads:
                config["INFERENCE_NUM_THREADS"] = int(self.threads)
        if self.ov_device != "CPU" and precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        return config

    def _model(self, name: str, shapes: Optional[Tuple]):
        """The graph, made static for these input shapes, -1 a dimension left dynamic (None: as
        read, dynamic)."""
        model = self.models[name]
        if shapes is not None:
            model = model.clone()
            model.reshape({inp.get_any_name(): self.ov.PartialShape(list(shape))
                           for inp, shape in zip(model.inputs, shapes)})
        return model

    def _shapes(self, graph: str, inputs) -> Optional[Tuple]:
        """The shape set a graph is compiled for: its inputs' shapes, -1 for the dimensions that
        change within a video (DYNAMIC_DIMS); None when not static."""
        if not self.static:
            return None
        return tuple(tuple(-1 if symbol in DYNAMIC_DIMS else size for symbol, size in zip(s.dims, inputs[s.name].shape))
                     for s in self.specs[graph].inputs)

    def _request(self, name: str, shapes: Optional[Tuple]):
        key = (name, shapes)
        request = self.requests.get(key)
        if request is None:
            compiled = self.core.compile_model(self._model(name, shapes), self.ov_device, self.config(name))
            self.compiled[key] = compiled
            request = self.requests[key] = compiled.create_infer_request()
        return request

    def _tensor(self, t: torch.Tensor):
        key = (t.data_ptr(), tuple(t.shape), t.dtype)
        wrapped = self.wrapped.get(key)
        if wrapped is None:
            if len(self.wrapped) > 512:  # buffers of ended videos: forget them
                self.wrapped.clear()
            wrapped = self.wrapped[key] = self.ov.Tensor(t.numpy(), shared_memory=True)
        return wrapped

    def _run(self, graph, inputs, outputs) -> None:
        request = self._request(graph, self._shapes(graph, inputs))
        for tensors in (inputs, outputs):
            for name, t in tensors.items():
                request.set_tensor(name, self._tensor(t))
        request.infer()
        # OpenVINO writes into the given output tensors; a plugin that cannot (and reallocates)
        # would leave the buffers stale: check the memory is still the buffers'.
        for name, t in outputs.items():
            out = request.get_tensor(name)
            if out.data.ctypes.data != t.data_ptr():
                np.copyto(t.numpy(), out.data.reshape(tuple(t.shape)))

    def profile(self, graph: str, inputs, outputs, repeats: int = 3) -> Dict[str, float]:
        """Per operator type, milliseconds per call of `graph` on these buffers (OpenVINO's
        performance counters on a separately compiled copy with the same plan; hmmn-bench --profile)."""
        model = self._model(graph, self._shapes(graph, inputs))
        compiled = self.core.compile_model(model, self.ov_device, dict(self.config(graph), PERF_COUNT=True))
        request = compiled.create_infer_request()
        for tensors in (inputs, outputs):
            for name, t in tensors.items():
                request.set_tensor(name, self.ov.Tensor(t.numpy(), shared_memory=True))
        request.infer()  # warm-up
        totals: Dict[str, float] = {}
        for _ in range(repeats):
            request.infer()
            for info in request.get_profiling_info():
                key = f"{info.node_type} ({info.exec_type})"
                totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1000.0 / repeats
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
