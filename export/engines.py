"""TensorRT engines from the exported ONNX graphs, with either builder (see core.tensorrt_lib).

Builders only build (Polygraphy's split: loaders build, runners run). Networks are strongly typed:
the precision plan comes from the ONNX types (TensorRT 11 has no FP16/INT8 builder flags; 10.x
and TensorRT-RTX accept strongly typed networks too). Engines are plain serialized engines,
nothing added in front. Enterprise TensorRT reuses a timing cache; TensorRT-RTX has none to
reuse when it builds without a GPU (its kernels are chosen at load time), so none is used there.
"""

from __future__ import annotations

import os
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hmmn_ref.errors import HMMNError
from hmmn_ref.shell import detail

from ..core import tensorrt_lib
from ..core.tensorrt_lib import Flavor
from ..core.contracts import GraphSpec, frame_dims
from .trt_network import parse_network


class EngineBuildError(HMMNError, RuntimeError):
    pass


def profile_shapes(
    spec: GraphSpec, height: int, width: int, max_objects: int, capacity: int
) -> Dict[str, Dict[str, List[int]]]:
    """min / opt / max shapes of every input: objects 1..max_objects, slots 1..capacity, and the
    padded size of HxW frames."""
    low = frame_dims(1, 1, height, width)
    opt = frame_dims(min(2, max_objects), max(1, capacity // 2), height, width)
    high = frame_dims(max_objects, capacity, height, width)
    return {
        s.name: {"min": list(s.shape(low)), "opt": list(s.shape(opt)), "max": list(s.shape(high))}
        for s in spec.inputs
    }


def default_timing_cache() -> str:
    """Enterprise TensorRT's timing cache shared by this user's builds, one per GPU and version:
    ~/.cache/hmmn-deploy/timing-<gpu>-cc<capability>-trt<version>.cache."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    target = enterprise_target()
    key = f"{target['gpu']}-cc{target['compute_capability']}-trt{tensorrt_lib.version(tensorrt_lib.TENSORRT)}"
    key = "".join(c if c.isalnum() or c in ".-" else "_" for c in key)
    return os.path.join(root, "hmmn-deploy", f"timing-{key}.cache")


def enterprise_target() -> Dict[str, str]:
    """The GPU enterprise TensorRT builds for: its name and compute capability (via torch)."""
    target = {"gpu": "unknown", "compute_capability": "unknown"}
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            target.update(gpu=torch.cuda.get_device_name(), compute_capability=f"{major}.{minor}")
    except Exception:  # a CPU build of torch: the manifest says unknown
        pass
    return target


def _load_timing_cache(config, path: str):
    blob = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            blob = f.read()
    cache = config.create_timing_cache(blob)
    if cache is None:  # unreadable (another TensorRT version): start a new one
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, ignore_mismatch=False)


def _save_timing_cache(config, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(config.get_timing_cache().serialize())
    os.replace(tmp, path)  # atomic: a concurrent or interrupted build never leaves half a cache


def build_engine(
    flavor: Flavor, onnx_path: str, engine_path: str, profile: Mapping[str, Mapping[str, List[int]]],
    targets: Optional[Sequence[str]] = None, timing_cache: Optional[str] = None,
    workspace_gib: Optional[float] = None,
) -> None:
    """Parse, build and write one plain serialized engine. targets: TensorRT-RTX's compute
    capabilities (None: its portable default); timing_cache: enterprise TensorRT's cache file.
    workspace_gib: a cap on the builder's scratch memory. None keeps the builder's default (the
    GPU's memory; 64 GiB in TensorRT-RTX's CPU-only mode): with a 4 GiB cap the paper model's
    match at 480x854 failed to build from 4 objects x 48 slots on (its affinity alone is 4 GB at
    8 x 48)."""
    trt = tensorrt_lib.load(flavor)
    logger = trt.Logger(trt.Logger.WARNING)
    builder, network, _parser = parse_network(trt, onnx_path, logger)
    config = builder.create_builder_config()
    if workspace_gib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    optimization = builder.create_optimization_profile()
    for name, shapes in profile.items():
        optimization.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(optimization)
    if flavor is tensorrt_lib.TENSORRT_RTX and targets:
        config.num_compute_capabilities = len(targets)
        for i, target in enumerate(targets):
            config.set_compute_capability(tensorrt_lib.compute_capability_enum(trt, target), i)
    if flavor is tensorrt_lib.TENSORRT and timing_cache:
        _load_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{flavor.name} failed to build an engine from {onnx_path} (see the log above)")
    with open(engine_path, "wb") as f:
        f.write(serialized)
    if flavor is tensorrt_lib.TENSORRT and timing_cache:
        _save_timing_cache(config, timing_cache)


def build_engines(
    folder: str, specs: Mapping[str, GraphSpec], size: Tuple[int, int], max_objects: int, capacity: int,
    flavor: Flavor, targets: Optional[Sequence[str]] = None, timing_cache: Optional[str] = None, log=print,
) -> Dict[str, Dict]:
    """An engine per graph in `folder`; returns {graph: {"file", "profile", "build_seconds"}}."""
    if timing_cache:
        os.makedirs(os.path.dirname(os.path.abspath(timing_cache)), exist_ok=True)
    height, width = size
    built = {}
    for name, spec in specs.items():
        profile = profile_shapes(spec, height, width, max_objects, capacity)
        detail(log, f"  engine {name}: building with {flavor.name} (objects 1..{max_objects}, slots 1..{capacity}, "
                    f"{height}x{width})")
        started = time.perf_counter()
        build_engine(flavor, os.path.join(folder, f"{name}.onnx"), os.path.join(folder, f"{name}.engine"),
                     profile, targets, timing_cache)
        seconds = round(time.perf_counter() - started, 2)
        detail(log, f"      {os.path.getsize(os.path.join(folder, f'{name}.engine')) / 2**20:.1f} MiB in {seconds:.1f} s")
        built[name] = {"file": f"{name}.engine", "profile": profile, "build_seconds": seconds}
    return built


def engine_targets(flavor: Flavor, requested: Optional[Sequence[str]]) -> Tuple[List[str], bool, Optional[str]]:
    """-> (compute capabilities the engines run on, whether that is the builder's default set,
    the GPU's name for enterprise builds)."""
    if flavor is tensorrt_lib.TENSORRT_RTX:
        if requested:
            return list(requested), False, None
        return list(tensorrt_lib.RTX_DEFAULT_TARGETS), True, None
    target = enterprise_target()
    return [target["compute_capability"]], False, target["gpu"]
