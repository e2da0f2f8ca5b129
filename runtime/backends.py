"""Backends run one stage graph on preallocated buffers; they own no video state.

Every backend checks its inputs and outputs against the graph's contract (names, dtypes,
ranks, dims consistent across tensors, device) before it runs, then writes the outputs
in place. Buffers are torch tensors on the backend's device; ONNX Runtime and TensorRT bind
their memory directly (IO binding, tensor addresses), so nothing is copied.
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Dict, Mapping, Optional, Sequence

import torch

from ..core.contracts import FREE_DIMS, GraphSpec, TensorSpec, dim_values, free_value
from ..core.files import FileMismatch, check_file
from .errors import ArtifactMismatch, BackendUnavailable, RuntimeInputError

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int32": torch.int32, "int64": torch.int64}


def resolve_dims(graph: str, specs: Sequence[TensorSpec], tensors: Mapping[str, torch.Tensor]) -> Dict[str, int]:
    """Check tensors against specs; return the free dims (N, T, H, W) they determine.
    RuntimeInputError when a tensor breaks the contract or the tensors disagree."""
    missing = [s.name for s in specs if s.name not in tensors]
    extra = sorted(set(tensors) - {s.name for s in specs})
    if missing or extra:
        raise RuntimeInputError(f"{graph}: missing tensors {missing}, unexpected {extra}")
    seen: Dict[str, int] = {}
    for s in specs:
        t = tensors[s.name]
        if t.dtype != TORCH_DTYPES[s.dtype]:
            raise RuntimeInputError(f"{graph}.{s.name}: dtype {t.dtype}, the contract says {s.dtype}")
        if t.dim() != len(s.dims):
            raise RuntimeInputError(f"{graph}.{s.name}: shape {tuple(t.shape)}, the contract says {s.dims}")
        if not t.is_contiguous():
            raise RuntimeInputError(f"{graph}.{s.name}: the buffer must be contiguous")
        for axis, (size, d) in enumerate(zip(t.shape, s.dims)):
            if isinstance(d, int):
                if size != d:
                    raise RuntimeInputError(f"{graph}.{s.name}: axis {axis} is {size}, the contract says {d}")
            elif seen.setdefault(d, size) != size:
                raise RuntimeInputError(f"{graph}.{s.name}: {d} is {size} here but {seen[d]} elsewhere")
    free = {"N": 1, "T": 1, "H": 16, "W": 16}  # absent from these tensors: any consistent value
    implied = [free_value(symbol, value) for symbol, value in sorted(seen.items(), key=lambda kv: kv[0] in FREE_DIMS)]
    free.update(implied)  # a free symbol seen itself comes last and wins; the check below finds clashes
    expected = dim_values(free["N"], free["T"], free["H"], free["W"])
    for sym, value in seen.items():
        if expected[sym] != value:
            raise RuntimeInputError(f"{graph}: {sym} is {value}, but the other dims make it {expected[sym]}")
    determined = {name for name, _ in implied}  # only the free dims these tensors fix
    return {name: free[name] for name in FREE_DIMS if name in determined}


@contextlib.contextmanager
def exact_fp32(device: torch.device):
    """CUDA convolutions and matrix products in true FP32 inside the block. PyTorch lets cuDNN
    use TF32 (10-bit mantissa) by default, which moves logits by ~1e-3 and would make the torch
    backend on a GPU a worse oracle than on the CPU. The previous settings come back after."""
    if torch.device(device).type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


class Backend:
    """Runs graphs by name: `run(graph, inputs, outputs)` writes the outputs in place."""

    name = "base"

    def __init__(self, specs: Mapping[str, GraphSpec], device: torch.device) -> None:
        self.specs = dict(specs)
        self.device = torch.device(device)

    def run(self, graph: str, inputs: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        spec = self.specs[graph]
        dims = resolve_dims(graph, spec.inputs, inputs)
        out_dims = resolve_dims(graph, spec.outputs, outputs)
        clash = {k: (dims[k], v) for k, v in out_dims.items() if k in dims and dims[k] != v}  # N, T, H, W
        if clash:
            raise RuntimeInputError(f"{graph}: output buffers disagree with the inputs on {clash}")
        for name, t in list(inputs.items()) + list(outputs.items()):
            if t.device.type != self.device.type:
                raise RuntimeInputError(f"{graph}.{name} is on {t.device}, the backend runs on {self.device}")
        self._run(graph, inputs, outputs)

    def _run(self, graph: str, inputs: Mapping[str, torch.Tensor], outputs: Mapping[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class TorchBackend(Backend):
    """hmmn_ref's stages in eager PyTorch (the export's graph modules, not exported): the oracle."""

    name = "torch"

    def __init__(self, model, specs: Mapping[str, GraphSpec], precision: str, device="cpu") -> None:
        super().__init__(specs, device)
        from ..core.graphs import build_graph

        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(f"the torch backend on {self.device} needs a CUDA GPU; torch {torch.__version__} "
                                     "sees none (a CPU build of torch, or no driver): use device 'cpu'")
        self.precision = precision
        if any(t.device != self.device for t in model.parameters()):
            model = copy.deepcopy(model).to(self.device)  # the caller's model stays where it is
        self.graphs = {name: build_graph(name, model, precision).to(self.device) for name in specs}

    @torch.no_grad()
    def _run(self, graph, inputs, outputs) -> None:
        spec = self.specs[graph]
        with exact_fp32(self.device) if self.precision == "fp32" else contextlib.nullcontext():
            results = self.graphs[graph](*(inputs[s.name] for s in spec.inputs))
        for s, value in zip(spec.outputs, results):
            outputs[s.name].copy_(value)


def graph_path(folder: str, name: str, graphs: Optional[Mapping[str, dict]]) -> str:
    """The path of graph `name`; with the manifest's records, only if the file is the one exported."""
    if graphs is None:
        path = os.path.join(folder, f"{name}.onnx")
        if not os.path.isfile(path):
            raise ArtifactMismatch(f"{path!r} is missing; export again with hmmn-export")
        return path
    try:
        return check_file(folder, graphs[name], "graph")
    except FileMismatch as exc:
        raise ArtifactMismatch(str(exc)) from None


# Whether ONNX Runtime's intra-op workers spin-wait for work between operators (ORT's own default)
# or sleep. Spinning holds a core while another process needs it: docs/openvino.md, "Threads on
# shared cores", has the figures behind this default (tools/shared_cores.py measures them).
ORT_SPIN_WAIT = False


def ort_session(path: str, providers: Sequence[str], threads: Optional[int] = None,
                profile_prefix: Optional[str] = None, spin_wait: Optional[bool] = None):
    """An ONNX Runtime session on one graph file: the one place sessions are opened (the backend,
    and hmmn-bench --profile with ONNX Runtime's profiler on). ArtifactMismatch when it cannot load.
    spin_wait: None is ORT_SPIN_WAIT."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Denormals to zero: match's weights (a softmax times Gaussians of distant cells) hold values
    # below 1e-38, whose arithmetic is very slow on x86; the results are unchanged.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    spin = ORT_SPIN_WAIT if spin_wait is None else spin_wait
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if threads:
        options.intra_op_num_threads = threads
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(path, options, providers=list(providers))
    except Exception as exc:  # ONNX Runtime's own errors (invalid graph, ...) have no common base
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactMismatch(f"ONNX Runtime cannot load {path!r} ({reason}); export again with hmmn-export") from None


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime with IO binding: inputs and outputs are bound to the buffers' memory."""

    name = "onnxruntime"

    def __init__(
        self, folder: str, specs: Mapping[str, GraphSpec], providers: Optional[Sequence[str]] = None,
        threads: Optional[int] = None, graphs: Optional[Mapping[str, dict]] = None,
        spin_wait: Optional[bool] = None,
    ) -> None:
        """graphs: the manifest's `graphs` section; each file is then checked against its recorded
        size and SHA-256 before it is loaded (None: files are loaded as they are). spin_wait:
        ort_session's."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(
                f"onnxruntime is not installed ({exc}); pip install 'hmmn-deploy[cpu]' or '[gpu]'"
            ) from None
        providers = list(providers or ["CPUExecutionProvider"])
        available = ort.get_available_providers()
        absent = [p for p in providers if p not in available]
        if absent:
            raise BackendUnavailable(f"ONNX Runtime here has no {absent} (it has {available}); "
                                     "install onnxruntime-gpu for CUDA / TensorRT providers")
        on_gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for p in providers)
        super().__init__(specs, "cuda" if on_gpu else "cpu")
        self.sessions, self.paths = {}, {}
        for name in specs:
            path = graph_path(folder, name, graphs)
            self.sessions[name] = session = ort_session(path, providers, threads, spin_wait=spin_wait)
            mismatch = specs[name].io_mismatch([i.name for i in session.get_inputs()],
                                               [o.name for o in session.get_outputs()])
            if mismatch:
                raise ArtifactMismatch(f"{path!r} does not follow the contract ({mismatch}); export again with hmmn-export")
            self.paths[name] = path
        self._np_dtype = {torch.float32: "float32", torch.float16: "float16", torch.int32: "int32"}

    def _run(self, graph, inputs, outputs) -> None:
        import numpy as np

        session = self.sessions[graph]
        binding = session.io_binding()
        device = self.device.type
        index = self.device.index or 0
        for bind, tensors in ((binding.bind_input, inputs), (binding.bind_output, outputs)):
            for name, t in tensors.items():
                bind(name, device, index, np.dtype(self._np_dtype[t.dtype]), list(t.shape), t.data_ptr())
        if device == "cuda":
            # ONNX Runtime's CUDA stream does not wait for torch's: finish writing the inputs first.
            torch.cuda.current_stream(self.device).synchronize()
        session.run_with_iobinding(binding)
