"""The tensorrt backend: engines of either builder (enterprise TensorRT or TensorRT-RTX).

Before anything is deserialized the engines are checked against their manifest: the builder that
made them is installed at the same version, every engine file is the one the export recorded
(size and SHA-256), and the GPU is among the engines' targets. TensorRT-RTX compiles kernels for
the GPU when an engine is first run; those land in a runtime cache file (beside the engines, or in
the user's cache folder when that is read-only) that later loads reuse.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from typing import Mapping, Optional

import torch

from ..core import tensorrt_lib
from ..core.files import FileMismatch, check_file
from ..core.contracts import GraphSpec
from .backends import Backend
from .errors import ArtifactMismatch, BackendUnavailable, RuntimeInputError


def engine_paths(folder: str, specs: Mapping[str, GraphSpec], engines: dict) -> dict:
    """{graph: path} of engines that are exactly those the manifest records; ArtifactMismatch otherwise."""
    if not engines.get("built"):
        raise ArtifactMismatch(f"{folder!r} has no engines ({engines.get('reason')}); build them with "
                               "hmmn-export --engines (--builder tensorrt-rtx works on any machine)")
    try:
        return {name: check_file(folder, engines["files"][name], "engine", "rebuild with hmmn-export --engines")
                for name in specs}
    except FileMismatch as exc:
        raise ArtifactMismatch(str(exc)) from None
    except KeyError as exc:
        raise ArtifactMismatch(f"{folder!r}: the manifest lists no engine for {exc}; rebuild with hmmn-export --engines")


def load_builder(folder: str, engines: dict):
    """The module of the builder that made the engines, at the version that made them."""
    builder = engines.get("builder") or {}
    flavor = tensorrt_lib.FLAVORS.get(builder.get("name"))
    if flavor is None:
        raise ArtifactMismatch(f"{folder!r}: the manifest names no known engine builder ({builder.get('name')!r}); "
                               "rebuild with hmmn-export --engines")
    try:
        trt = tensorrt_lib.load(flavor)
    except tensorrt_lib.TensorRTUnavailable as exc:
        raise BackendUnavailable(f"the engines in {folder!r} were built with {flavor.name}: {exc}") from None
    if trt.__version__ != builder.get("version"):
        raise ArtifactMismatch(f"the engines in {folder!r} were built with {flavor.name} {builder.get('version')}, and "
                               f"{flavor.name} {trt.__version__} is installed; engines load only with the version "
                               f"that built them: rebuild with hmmn-export --engines --builder {flavor.name}, or "
                               f"install {flavor.name}=={builder.get('version')}")
    return flavor, trt


class RuntimeCache:
    """TensorRT-RTX's cache of kernels compiled on this GPU, one for all four engines."""

    def __init__(self, trt, folder: str, file_name: str, engine_hashes: str) -> None:
        self.path = self._path(folder, file_name, engine_hashes)
        self.cache = None
        self.trt = trt

    @staticmethod
    def _path(folder: str, file_name: str, engine_hashes: str) -> str:
        beside = os.path.join(folder, file_name)
        if os.access(folder, os.W_OK):
            return beside
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        key = hashlib.sha256(engine_hashes.encode()).hexdigest()[:16]
        return os.path.join(root, "hmmn-deploy", "rtx-runtime", f"{key}.cache")

    def context(self, engine):
        config = engine.create_runtime_config()
        if self.cache is None:
            self.cache = config.create_runtime_cache()
            if os.path.isfile(self.path):
                with open(self.path, "rb") as f:
                    self.cache.deserialize(f.read())  # False (another GPU or version): starts empty
        config.set_runtime_cache(self.cache)
        return engine.create_execution_context(config)

    def save(self) -> None:
        """Write the cache atomically (a concurrent or interrupted save never leaves half a file)."""
        if self.cache is None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(self.cache.serialize())
        os.replace(tmp, self.path)


class TensorRTBackend(Backend):
    """Serialized engines, `execute_async_v3` on one stream (the caller's when given)."""

    name = "tensorrt"

    def __init__(self, folder: str, specs: Mapping[str, GraphSpec], manifest: dict, stream=None) -> None:
        engines = manifest["engines"]
        paths = engine_paths(folder, specs, engines)
        flavor, trt = load_builder(folder, engines)
        if not torch.cuda.is_available():
            raise BackendUnavailable("the tensorrt backend needs a CUDA GPU and a CUDA build of torch; none here. "
                                     "On this machine use --backend onnxruntime or --backend torch")
        super().__init__(specs, "cuda")
        major, minor = torch.cuda.get_device_capability()
        problem = tensorrt_lib.target_problem(engines, trt.__version__, torch.cuda.get_device_name(), f"{major}.{minor}")
        if problem:
            raise ArtifactMismatch(f"the engines in {folder!r} do not fit this machine: {problem}. Rebuild them with "
                                   "hmmn-export --engines (tensorrt on this GPU, or tensorrt-rtx --gpu-arch "
                                   f"{major}.{minor} where it supports it), or use --backend onnxruntime")
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        hashes = "".join(engines["files"][name]["sha256"] for name in specs)
        self.runtime_cache: Optional[RuntimeCache] = None
        if flavor is tensorrt_lib.TENSORRT_RTX:
            self.runtime_cache = RuntimeCache(trt, folder, engines.get("runtime_cache") or "rtx_runtime.cache", hashes)
            # Kernels compiled later (new object or slot counts) are saved when the backend goes.
            weakref.finalize(self, self.runtime_cache.save)
        self.engines, self.contexts, self._ran = {}, {}, set()
        for name, path in paths.items():
            with open(path, "rb") as f:
                engine = runtime.deserialize_cuda_engine(f.read())
            if engine is None:
                raise ArtifactMismatch(f"{flavor.name} {trt.__version__} cannot load {path!r} on this GPU; rebuild "
                                       "the engines with hmmn-export --engines")
            self.engines[name] = engine
            self.contexts[name] = (self.runtime_cache.context(engine) if self.runtime_cache
                                   else engine.create_execution_context())
        if stream is None:
            stream = torch.cuda.Stream()
        elif isinstance(stream, int):  # a raw cudaStream_t from the caller (C++ hosts)
            stream = torch.cuda.ExternalStream(stream)
        self.stream = stream

    def _run(self, graph, inputs, outputs) -> None:
        context = self.contexts[graph]
        for name, t in inputs.items():
            if not context.set_input_shape(name, tuple(t.shape)):
                raise RuntimeInputError(f"{graph}.{name}: shape {tuple(t.shape)} is outside the engine's profile "
                                        "(objects, slots or size); rebuild with hmmn-export --engines")
        for name, t in list(inputs.items()) + list(outputs.items()):
            if t.data_ptr() % 256:
                raise RuntimeInputError(f"{graph}.{name}: TensorRT needs 256-byte aligned buffers")
            if not context.set_tensor_address(name, t.data_ptr()):
                raise RuntimeInputError(f"{graph}.{name}: TensorRT refused the buffer address")
        # Order against torch's stream, where the session writes frames, probabilities and slots.
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to run {graph}")
        current.wait_stream(self.stream)
        if self.runtime_cache is not None and graph not in self._ran:
            self._ran.add(graph)  # its kernels were just compiled: keep them for later loads (set-up, once)
            self.stream.synchronize()
            self.runtime_cache.save()

    def synchronize(self) -> None:
        self.stream.synchronize()
