"""The runtime Session hmmn-run segments with: from an export folder, or from weights.

With weights and a graph backend (onnxruntime, tensorrt) the graphs are exported on the fly
into a cache folder keyed by the weights' hash and every setting the graphs depend on, and
reused by later runs. Without weights the model is a built-in one (hmmn_deploy.demo: the mobile
configuration by default, the small one with config "small"); `random_weights` asks for the golden fill rule's
random weights instead (the masks then mean nothing, and the run says so).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from typing import Callable, Optional, Tuple

import hmmn_ref
from hmmn_ref import protocol
from hmmn_ref.checkpoint import CheckpointError
from hmmn_ref.errors import HMMNError

from .. import demo
from ..core import cpu
from ..export import __version__ as EXPORT_VERSION
from ..export.exporter import DONE, ENGINES_NOT_BUILT, ExportOptions, export_model
from ..export.onnx_export import ExportError
from ..export import manifest as manifest_io
from ..runtime import Session
from ..runtime.errors import ArtifactMismatch, BackendUnavailable, RuntimeInputError

# ONNX Runtime graphs take any frame size; their export is validated at this one (spec size
# of the golden clips' paper checks), which keeps a first run to a minute or two.
ORT_VALIDATION_SIZE = (240, 432)


class ModelError(HMMNError, ValueError):
    """Weights, artifacts or settings that cannot make a session; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    backend: str = "onnxruntime"
    precision: Optional[str] = None  # None: fp32, or the artifacts' precision
    config: Optional[str] = None  # None: paper with weights or random weights, else the default built-in model's
    weights: Optional[str] = None  # checkpoint path; None with no artifacts: a built-in model (demo.built_in_for)
    random_weights: bool = False  # the golden fill rule instead of a built-in model
    artifacts: Optional[str] = None  # an hmmn-export folder
    mem_every: Optional[int] = None
    capacity: Optional[int] = None
    max_objects: int = protocol.DEFAULT_MAX_OBJECTS  # engines' profile, for on-the-fly TensorRT exports
    threads: Optional[int] = None
    cache: Optional[str] = None  # where on-the-fly exports live
    device: Optional[str] = None  # 'cpu' or 'cuda'; None: cpu, or cuda for tensorrt; openvino: CPU, GPU, NPU
    calibration: Optional[str] = None  # openvino int8: a frame folder or video to calibrate on (None: demo videos)


# OpenVINO lowers FP32 graphs itself: these precisions name its compute precision, over the
# FP32 export (runtime/openvino_backend.py holds the precision plan).
OPENVINO_COMPUTES = ("fp32", "bf16", "int8")
OPENVINO_DEVICES = ("CPU", "GPU", "NPU")


def split_precision(choice: ModelChoice) -> Tuple[Optional[str], Optional[str]]:
    """-> (the graphs' precision, the backend's compute precision or None). With openvino,
    bf16 and int8 run on FP32 graphs; elsewhere the precision is the graphs' and there is no
    compute precision. ModelError for a precision the backend does not have."""
    precision = choice.precision
    if choice.backend == "openvino":
        if precision not in (None, "auto") + OPENVINO_COMPUTES:
            raise ModelError(f"--precision {precision} with openvino: choose auto or one of {OPENVINO_COMPUTES} "
                             "(OpenVINO lowers the FP32 graphs itself)")
        return "fp32", precision or "auto"
    if precision == "auto":
        return None, None  # the graphs' own precision: the other backends have nothing to choose
    if precision in ("bf16", "int8"):
        raise ModelError(f"--precision {precision} is OpenVINO's: use --backend openvino (the {choice.backend} "
                         "backend runs fp32 or fp16 graphs)")
    return precision, None


def backend_device(choice: ModelChoice) -> str:
    """-> the device of the session ('cpu' or 'cuda'; Session.open picks ONNX Runtime's provider
    for it; for openvino, OpenVINO's device name: CPU, GPU, NPU, GPU.1 ...). ModelError when the
    device cannot serve: nothing is silently moved elsewhere."""
    if choice.backend == "openvino":
        device = (choice.device or "CPU").upper()
        if device.split(".")[0] not in OPENVINO_DEVICES:
            raise ModelError(f"--device {choice.device!r} with openvino: choose one of {OPENVINO_DEVICES} "
                             "(OpenVINO's names; GPU.0, GPU.1 ... for one of several)")
        return device
    device = choice.device or ("cuda" if choice.backend == "tensorrt" else "cpu")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"--device {device!r}: choose cpu or cuda")
    if choice.backend == "tensorrt" and device != "cuda":
        raise ModelError("the tensorrt backend runs on a CUDA GPU only; drop --device cpu or pick another backend")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available() and choice.backend == "tensorrt":
            raise ModelError(f"the tensorrt backend needs a CUDA GPU, and torch {torch.__version__} sees none (a CPU "
                             "build of torch, or no driver); on this machine use --backend onnxruntime or "
                             "--backend torch (they run on the CPU)")
        if not torch.cuda.is_available():
            raise ModelError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU (a CPU build of torch, or "
                             "no driver); run with --device cpu, or install a CUDA build of torch")
    return device


def default_cache() -> str:
    root = os.environ.get("HMMN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hmmn-deploy")
    return os.path.join(root, "graphs")


def resolve_weights(choice: ModelChoice) -> Tuple[str, Optional[str], str]:
    """-> (configuration name, checkpoint path or None for random weights, description)."""
    if choice.weights:
        return choice.config or "paper", choice.weights, choice.weights
    if choice.random_weights:
        return choice.config or "paper", None, "golden fill rule (random)"
    try:
        config, weights = demo.built_in_for(choice.config)
    except (ValueError, FileNotFoundError) as exc:
        raise ModelError(str(exc)) from None
    return config, weights, demo.BUILT_IN[config].description


def load_model(config: str, weights: Optional[str]) -> hmmn_ref.HMMN:
    """The model in eval mode: `weights` loaded, or random (golden fill) when None."""
    try:
        model = hmmn_ref.HMMN(hmmn_ref.get_config(config))
        if weights:
            return hmmn_ref.load_weights(model, weights)
    except (ValueError, CheckpointError) as exc:
        raise ModelError(str(exc)) from None
    return hmmn_ref.fill_golden_weights(model)


def cache_key(config: hmmn_ref.HMMNConfig, precision: str, weights_sha: str, backend: str,
              size: Optional[Tuple[int, int]], capacity: int, max_objects: int) -> str:
    """A folder name for every setting an export depends on: the configuration by name and by
    content (a configuration of the same name may change between releases, the weights not),
    the weights, the exporter's version. ONNX graphs serve any size and any capacity; engines
    are built for one size and profile."""
    layout = hashlib.sha256(config.to_json().encode()).hexdigest()[:8]
    key = f"{config.name}-{precision}-{weights_sha[:16]}-{layout}-v{EXPORT_VERSION}"
    if backend == "tensorrt":
        key += f"-trt-{size[0]}x{size[1]}-c{capacity}-o{max_objects}"
    return key


def cached_export(choice: ModelChoice, config: str, weights: Optional[str], model: hmmn_ref.HMMN, precision: str,
                  size: Optional[Tuple[int, int]], capacity: int, log: Callable[[str], None]) -> str:
    root = choice.cache or default_cache()
    folder = os.path.join(root, cache_key(model.config, precision, manifest_io.weights_sha256(model),
                                          choice.backend, size, capacity, choice.max_objects))
    if os.path.isdir(root):
        remove_stale_work(root)
    if os.path.isfile(os.path.join(folder, "manifest.json")):
        log(f"reusing the exported graphs in {folder}")
        return folder
    if os.path.lexists(folder):  # the cache's own entry, without its manifest: damaged, made again
        log(f"the cached graphs in {folder} are incomplete (no manifest.json); exporting them again")
        shutil.rmtree(folder)
    os.makedirs(root, exist_ok=True)
    engines = choice.backend == "tensorrt"
    if engines and size is None:
        raise ModelError("TensorRT engines are built for one frame size; give --size HxW")
    check_size = size if engines else ORT_VALIDATION_SIZE
    options = ExportOptions(out=folder, weights_source=weights or "golden fill rule (random)", size=check_size,
                            precision=precision, max_objects=choice.max_objects, capacity=capacity,
                            mem_every=protocol.DEFAULT_MEM_EVERY, engines=engines)
    log(f"exporting the graphs once into {folder} (later runs reuse them) ...")
    try:  # Ctrl-C goes through: export_model removes what it had written
        report = export_model(model, options, log)
    except (ValueError, ExportError) as exc:
        raise ModelError(f"exporting the graphs failed ({exc}); nothing was cached") from None
    if report.status == ENGINES_NOT_BUILT:
        raise ModelError("the TensorRT engines could not be built (reason above); the ONNX graphs are exported: "
                         "use --backend onnxruntime, or run on a machine with a GPU and tensorrt")
    if report.status != DONE:
        raise ModelError(f"exporting the graphs failed (validation, log above; files in {report.folder}); "
                         "nothing was cached")
    return folder


_WORK_NAME = re.compile(r".+\.(?:partial|old)-(\d+)")  # export.exporter's work and retired folders


def remove_stale_work(root: str) -> None:
    """The work folders (NAME.partial-PID, NAME.old-PID) of exports into the cache whose process
    is gone (killed with SIGKILL, or a machine that stopped). PIDs are this machine's: a cache
    shared by several machines keeps the others' until one of its own runs cleans them."""
    for entry in os.listdir(root):
        match = _WORK_NAME.fullmatch(entry)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _open_cached(choice: ModelChoice, config, weights, model, precision, size, capacity, compute, device, timer,
                 log) -> Tuple[Session, str]:
    """The session on the cache's graphs; an entry damaged since its export (a file edited,
    truncated or removed; a manifest that does not read) is exported again, once."""
    for attempt in (1, 2):
        folder = cached_export(choice, config, weights, model, precision, size, capacity, log)
        # The cached graphs serve every mem_every: it is the session's, never read back from a
        # cached manifest (a run with --mem-every 3 must not change later runs' default).
        try:
            if compute == "auto" and weights is not None and "int8" in cpu.native_precisions():
                ensure_int8(folder, choice, log, cached=True, accuracy=True)  # auto reads INT8's recorded cost
            chosen = resolve_auto(compute, folder, device, log)
            if chosen == "int8":
                ensure_int8(folder, choice, log, cached=True)
            return Session.open(folder, choice.backend, capacity=capacity,
                                mem_every=choice.mem_every or protocol.DEFAULT_MEM_EVERY,
                                threads=choice.threads, device=device, compute=chosen, timer=timer), folder
        except (ArtifactMismatch, manifest_io.ManifestError) as exc:
            if attempt == 2:
                raise
            log(f"the cached graphs in {folder} are damaged ({exc}); exporting them again")
            shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


def open_session(choice: ModelChoice, size: Optional[Tuple[int, int]], log: Callable[[str], None], timer=None):
    """-> (Session, a dict describing it for summary.json). `size`: the frames' processing size,
    needed only to build TensorRT engines. timer: the Session's stage timer (hmmn-bench)."""
    if choice.threads:
        import torch

        torch.set_num_threads(choice.threads)
    try:
        if choice.artifacts:
            return _from_artifacts(choice, log, timer)
        config, weights, source = resolve_weights(choice)
        model = load_model(config, weights)
        if weights is None:
            log("--random-weights: RANDOM weights (golden fill rule); the masks are not meaningful")
        elif not choice.weights:
            caveat = demo.BUILT_IN[config].caveat
            log(f"no --weights or --artifacts: using {source}" + (f". {caveat}" if caveat else ""))
        precision, compute = split_precision(choice)
        precision = precision or "fp32"
        capacity = choice.capacity or protocol.DEFAULT_CAPACITY
        device = backend_device(choice)
        if choice.backend == "torch":
            session = Session.from_model(model, precision, choice.mem_every or protocol.DEFAULT_MEM_EVERY, capacity,
                                         device=device, timer=timer)
            folder = None
        else:
            session, folder = _open_cached(choice, config, weights, model, precision, size, capacity, compute,
                                           device, timer, log)
    except (RuntimeInputError, ArtifactMismatch, BackendUnavailable, ValueError) as exc:
        raise ModelError(str(exc)) from None
    return session, _describe(choice, session, source, folder)


def _from_artifacts(choice: ModelChoice, log, timer=None):
    try:
        record = manifest_io.read_manifest(choice.artifacts)
    except (OSError, ValueError) as exc:
        raise ModelError(f"--artifacts {choice.artifacts!r}: {exc}") from None
    precision, compute = split_precision(choice)
    if precision and precision != record["precision"]["name"]:
        raise ModelError(f"{choice.artifacts!r} holds {record['precision']['name']} graphs, not {precision}; "
                         "drop --precision or export the precision you want")
    source = record["model"]["weights"]["source"]
    device = backend_device(choice)
    model = torch_model_for(record, choice) if choice.backend == "torch" else None
    compute = resolve_auto(compute, choice.artifacts, device, log)
    if compute == "int8":
        ensure_int8(choice.artifacts, choice, log, cached=False)
    session = Session.open(choice.artifacts, choice.backend, model=model, capacity=choice.capacity,
                           mem_every=choice.mem_every, threads=choice.threads, device=device, compute=compute,
                           timer=timer)
    if source.startswith("golden fill rule"):
        log(f"{choice.artifacts} was exported from RANDOM weights; the masks are not meaningful")
    return session, _describe(choice, session, source, choice.artifacts)


def torch_model_for(record: dict, choice: ModelChoice) -> hmmn_ref.HMMN:
    """The eager model for an export folder: the weights it was exported from (checked by hash)."""
    config = hmmn_ref.HMMNConfig.from_dict(record["model"]["config"])
    source = record["model"]["weights"]["source"]
    if choice.weights:
        return hmmn_ref.load_weights(hmmn_ref.HMMN(config), choice.weights)
    if source.startswith("golden fill rule"):
        return hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(config))
    if config.name in demo.BUILT_IN and os.path.isfile(demo.BUILT_IN[config.name].weights):
        candidate = demo.load_demo_model(config.name)
        if manifest_io.weights_sha256(candidate) == record["model"]["weights"]["sha256"]:
            return candidate
    raise ModelError(f"the torch backend needs the weights {choice.artifacts!r} was exported from "
                     f"({source}); give them with --weights")


def resolve_auto(compute: Optional[str], folder: str, device: str, log: Callable[[str], None]) -> Optional[str]:
    """openvino's --precision auto (the default) -> the compute precision its rule picks
    (runtime/openvino_backend.choose_compute), said in one line; any other value as it is."""
    if compute != "auto":
        return compute
    from ..runtime.openvino_backend import choose_compute

    compute, why = choose_compute(folder, device)
    log(f"--precision auto: openvino {compute}: {why}")
    return compute


# INT8's J&F cost, measured right after an on-the-fly quantization for --precision auto.
AUTO_ACCURACY_VIDEOS = 4


def ensure_int8(folder: str, choice: ModelChoice, log: Callable[[str], None], cached: bool,
                accuracy: bool = False) -> None:
    """OpenVINO's INT8 graphs in `folder`: quantized now (NNCF) when absent from a cache folder
    (with their J&F cost against FP32 when `accuracy`); an --artifacts folder is the user's, and
    is only told how."""
    from ..core.int8_files import INT8_FOLDER, int8_ready
    from ..export import quantize
    from ..runtime.openvino_backend import int8_cost

    if int8_ready(folder) and (not accuracy or int8_cost(folder) is not None):
        return
    if not cached and choice.calibration is None:
        raise ModelError(f"{folder!r} has no INT8 graphs for openvino; quantize them once with "
                         f"hmmn-quantize {folder} (calibrates on the demo videos, or --calibration FRAMES)")
    log(f"quantizing the graphs to INT8 once (NNCF) into {folder}/{INT8_FOLDER} ...")
    try:
        quantize.quantize_folder(folder, calibration=choice.calibration, log=log, threads=choice.threads,
                                 accuracy_videos=AUTO_ACCURACY_VIDEOS if accuracy else 0)
    except quantize.QuantizeError as exc:
        raise ModelError(str(exc)) from None


def _describe(choice: ModelChoice, session: Session, source: str, folder: Optional[str]) -> dict:
    compute = getattr(session.backend, "compute", None)  # openvino: fp32, bf16, int8 on FP32 graphs
    extra = {"graph_precision": session.precision} if compute else {}
    return {**extra, "backend": choice.backend, "device": str(getattr(session.backend, "ov_device", session.device)),
            "precision": compute or session.precision,
            "config": session.config.name, "weights": source, "graphs": folder, "mem_every": session.mem_every, "capacity": session.capacity}
