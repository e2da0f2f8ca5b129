"""Loaders: one function per backend that opens it on an export folder (Polygraphy's split:
loaders find, check and load the files; backends only run).

Each loader takes the folder, its manifest record and the graph contracts, and returns a
`Loaded`: the backend, plus the limits its files were built for (engines fix the frame size and
the bank's slots; graphs take any). The object limit is the manifest's, for every backend
(`Session.open`, which calls `load`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..core import manifest as manifest_io
from ..core.contracts import GraphSpec
from .backends import Backend, OnnxRuntimeBackend, TorchBackend
from .errors import ArtifactMismatch, RuntimeInputError


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    model: object = None  # the torch backend's hmmn_ref.HMMN
    providers: Optional[Sequence[str]] = None  # ONNX Runtime's execution providers
    threads: Optional[int] = None
    stream: object = None  # TensorRT's CUDA stream
    device: Optional[str] = None  # 'cpu' or 'cuda' (or a runtime's own device name, e.g. OpenVINO's)
    compute: Optional[str] = None  # a backend's own compute precision where it has one (OpenVINO: bf16, ...)
    spin_wait: Optional[bool] = None  # ONNX Runtime's workers spin between operators (None: backends.ORT_SPIN_WAIT)
    pin_threads: Optional[bool] = None  # OpenVINO's CPU threads pinned to cores (None: openvino_backend.OV_PIN_THREADS)


@dataclasses.dataclass(frozen=True)
class Loaded:
    backend: Backend
    size: Optional[Tuple[int, int]] = None  # the only frame size it serves; None: any
    max_capacity: Optional[int] = None  # most 1/16 slots; None: unbounded


Loader = Callable[[str, dict, Mapping[str, GraphSpec], LoadOptions], Loaded]


def load_onnxruntime(folder: str, record: dict, specs: Mapping[str, GraphSpec], options: LoadOptions) -> Loaded:
    providers = ort_providers(options.device, options.providers)
    return Loaded(OnnxRuntimeBackend(folder, specs, providers, options.threads, graphs=record["graphs"],
                                     spin_wait=options.spin_wait))


def load_tensorrt(folder: str, record: dict, specs: Mapping[str, GraphSpec], options: LoadOptions) -> Loaded:
    from .tensorrt_backend import TensorRTBackend

    memory = record["memory"]
    return Loaded(TensorRTBackend(folder, specs, record, options.stream),
                  size=(record["input"]["height"], record["input"]["width"]),
                  max_capacity=memory["capacity"])


def load_torch(folder: str, record: dict, specs: Mapping[str, GraphSpec], options: LoadOptions) -> Loaded:
    if options.model is None:
        raise RuntimeInputError("the torch backend needs the PyTorch model: Session.open(..., model=model)")
    if manifest_io.weights_sha256(options.model) != record["model"]["weights"]["sha256"]:
        raise ArtifactMismatch(f"the model's weights differ from those {folder!r} was exported from "
                               f"({record['model']['weights']['source']})")
    return Loaded(TorchBackend(options.model, specs, record["precision"]["name"], options.device or "cpu"))


def load_openvino(folder: str, record: dict, specs: Mapping[str, GraphSpec], options: LoadOptions) -> Loaded:
    """OpenVINO on its device (options.device: CPU, GPU, NPU; 'cpu' or None is CPU) in
    options.compute (fp32, bf16, int8; None: fp32), over the folder's FP32 graphs."""
    from .openvino_backend import OpenVINOBackend

    device = None if options.device in (None, "cpu") else options.device
    if device == "cuda":
        raise RuntimeInputError("the openvino backend runs on OpenVINO's devices (CPU, GPU, NPU), not 'cuda'")
    return Loaded(OpenVINOBackend(folder, specs, device, options.compute or "fp32", options.threads,
                                  graphs=record["graphs"], record=record, pin_threads=options.pin_threads))


LOADERS: Dict[str, Loader] = {
    "torch": load_torch,
    "onnxruntime": load_onnxruntime,
    "tensorrt": load_tensorrt,
    "openvino": load_openvino,
}


def load(backend: str, folder: str, record: dict, specs: Mapping[str, GraphSpec], options: LoadOptions) -> Loaded:
    if backend not in LOADERS:
        raise RuntimeInputError(f"unknown backend {backend!r}; choose one of {tuple(LOADERS)}")
    check_contracts(folder, record, specs)
    return LOADERS[backend](folder, record, specs, options)


def check_contracts(folder: str, record: dict, specs: Mapping[str, GraphSpec]) -> None:
    """The graphs' tensors as the manifest recorded them must be those this hmmn-deploy feeds for
    the export's configuration (an export by another version may cut the graphs differently, e.g.
    encode_memory reading the frame or encode_query's outputs)."""
    for name, spec in specs.items():
        recorded = record["graphs"].get(name, {})
        for side in ("inputs", "outputs"):
            have = [t["name"] for t in recorded.get(side, [])]
            want = [t.name for t in getattr(spec, side)]
            if have != want:
                raise ArtifactMismatch(
                    f"{folder!r}: its {name} graph has {side} {have}, this hmmn-deploy's contract for its "
                    f"configuration has {want}; export the folder again with this version's hmmn-export")


def ort_providers(device: Optional[str], providers: Optional[Sequence[str]]) -> Optional[List[str]]:
    """ONNX Runtime's providers for `device`: never a CPU run when CUDA was asked for, or back."""
    if providers is None:
        return ["CUDAExecutionProvider"] if device == "cuda" else None
    on_gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for p in providers)
    if device is not None and on_gpu != (device == "cuda"):
        raise RuntimeInputError(f"device={device!r} but providers {list(providers)} run on "
                                f"{'the GPU' if on_gpu else 'the CPU'}; give one or make them agree")
    return list(providers)
