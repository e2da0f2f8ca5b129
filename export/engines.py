"""TensorRT engines from the exported ONNX graphs (needs the tensorrt package and a GPU).

Kept thin, and tensorrt is imported only here, lazily. Networks are strongly typed: the
precision plan comes from the ONNX types (TensorRT 11 has no FP16/INT8 builder flags; 10.x
accepts strongly typed networks too). Engines are plain serialized engines, nothing added
in front. A timing cache beside the engines is reused across builds.
"""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Tuple

from hmmn_ref.video import padding_for

from .contracts import GraphSpec, dim_values

TIMING_CACHE = "timing.cache"


class EngineBuildError(RuntimeError):
    pass


def tensorrt_unavailable_reason() -> Optional[str]:
    """None when engines can be built here, else why not, and what to do."""
    try:
        import tensorrt as trt
    except ImportError:
        return "the tensorrt package is not installed (pip install 'hmmn-deploy[gpu]' on a machine with an NVIDIA GPU)"
    except Exception as exc:  # a broken install raises other errors
        return f"tensorrt cannot be imported: {exc}"
    try:
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        if builder is None:
            raise RuntimeError("no builder")
    except Exception as exc:
        return f"TensorRT {trt.__version__} finds no usable CUDA GPU ({exc})"
    return None


def gpu_target() -> Dict[str, str]:
    """The GPU engines are built for: name and compute capability (via torch when it sees CUDA)."""
    import tensorrt as trt

    target = {"gpu": "unknown", "compute_capability": "unknown", "tensorrt": trt.__version__}
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            target.update(gpu=torch.cuda.get_device_name(), compute_capability=f"{major}.{minor}")
    except Exception:
        pass
    return target


def profile_shapes(
    spec: GraphSpec, height: int, width: int, max_objects: int, capacity: int
) -> Dict[str, Dict[str, List[int]]]:
    """min / opt / max shapes of every input: objects 1..max_objects, slots 1..capacity, and the
    padded size of HxW frames."""
    top, bottom, left, right = padding_for(height, width)
    height, width = height + top + bottom, width + left + right
    low = dim_values(1, 1, height, width)
    opt = dim_values(min(2, max_objects), max(1, capacity // 2), height, width)
    high = dim_values(max_objects, capacity, height, width)
    return {
        s.name: {"min": list(s.shape(low)), "opt": list(s.shape(opt)), "max": list(s.shape(high))}
        for s in spec.inputs
    }


def build_engine(
    onnx_path: str,
    engine_path: str,
    profile: Mapping[str, Mapping[str, List[int]]],
    cache_path: str,
    workspace_gib: float = 4.0,
) -> None:
    """Parse, build and write one plain serialized engine; reuse and update the timing cache."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    optimization = builder.create_optimization_profile()
    for name, shapes in profile.items():
        optimization.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(optimization)
    cache_bytes = b""
    if os.path.isfile(cache_path):
        with open(cache_path, "rb") as f:
            cache_bytes = f.read()
    cache = config.create_timing_cache(cache_bytes)
    if cache is None:  # unreadable (another TensorRT version): start a new one
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    with open(engine_path, "wb") as f:
        f.write(serialized)
    tmp = f"{cache_path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(config.get_timing_cache().serialize())
    os.replace(tmp, cache_path)  # atomic: a concurrent or interrupted build never leaves half a cache


def default_cache_path() -> str:
    """Timing cache shared by this user's builds, one per GPU and TensorRT version:
    ~/.cache/hmmn-deploy/timing-<gpu>-trt<version>.cache."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        target = gpu_target()
        key = f"{target['gpu']}-cc{target['compute_capability']}-trt{target['tensorrt']}"
    except Exception:  # no tensorrt: the path is only shown in --help
        key = "default"
    key = "".join(c if c.isalnum() or c in ".-" else "_" for c in key)
    return os.path.join(root, "hmmn-deploy", f"timing-{key}.cache")


def build_engines(
    folder: str,
    specs: Mapping[str, GraphSpec],
    size: Tuple[int, int],
    max_objects: int,
    capacity: int,
    cache_path: str,
    log=print,
) -> Dict[str, Dict]:
    """An engine per graph in `folder`; returns {graph: {"file", "profile"}}."""
    os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
    height, width = size
    built = {}
    for name, spec in specs.items():
        profile = profile_shapes(spec, height, width, max_objects, capacity)
        log(f"  engine {name}: building (objects 1..{max_objects}, slots 1..{capacity}, {height}x{width})")
        build_engine(os.path.join(folder, f"{name}.onnx"), os.path.join(folder, f"{name}.engine"), profile, cache_path)
        built[name] = {"file": f"{name}.engine", "profile": profile}
    return built
