"""The two TensorRT flavours, imported lazily and only here.

- `tensorrt`: enterprise TensorRT 10.x / 11.x (module `tensorrt`). It builds on the GPU the engines
  are for, and its engines run on that GPU model (compute capability) with that exact version.
- `tensorrt-rtx`: TensorRT for RTX (module `tensorrt_rtx`). It builds on any machine, with no GPU
  ("CPU-only ahead of time"); the engine is compiled for the GPU just in time when it is first
  loaded, for the compute capabilities chosen at build time.

Both read the same ONNX graphs with NVIDIA's parser and make strongly typed networks; their Python
APIs agree on everything this project uses except the build targets and the runtime cache.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from typing import Dict, List, Optional, Sequence, Tuple

from hmmn_ref.errors import HMMNError


@dataclasses.dataclass(frozen=True)
class Flavor:
    name: str  # as --builder and the manifest name it
    module: str  # the Python module
    install: str  # how a user gets it
    builds_without_gpu: bool


TENSORRT = Flavor("tensorrt", "tensorrt",
                  "pip install 'hmmn-deploy[gpu]' on a machine with an NVIDIA GPU (enterprise TensorRT)", False)
TENSORRT_RTX = Flavor("tensorrt-rtx", "tensorrt_rtx", "pip install 'hmmn-deploy[trt-rtx]' (TensorRT for RTX)", True)
FLAVORS: Dict[str, Flavor] = {f.name: f for f in (TENSORRT, TENSORRT_RTX)}
BUILDER_CHOICES = ("auto",) + tuple(FLAVORS)

# TensorRT-RTX's portable default set when no --gpu-arch is given (its documentation: "8.0, 8.6,
# 8.9, 12.0 and later"); 9.0 (H100 / H200) is not among them. 7.5 only on request.
RTX_DEFAULT_TARGETS = ("8.0", "8.6", "8.9", "12.0")


class TensorRTUnavailable(HMMNError, RuntimeError):
    """The TensorRT flavour asked for cannot be used here; the message says what to do."""


def installed(flavor: Flavor) -> bool:
    """Whether the module is on the path (cheap: nothing is imported)."""
    try:
        return importlib.util.find_spec(flavor.module) is not None
    except (ImportError, ValueError):
        return False


def load(flavor: Flavor):
    """The flavour's module; TensorRTUnavailable with the install command when it is missing."""
    try:
        return importlib.import_module(flavor.module)
    except ImportError as exc:
        raise TensorRTUnavailable(f"{flavor.name} is not installed ({exc}): {flavor.install}") from None
    except Exception as exc:  # a broken install (missing CUDA libraries, ...) raises other errors
        raise TensorRTUnavailable(f"{flavor.name} cannot be imported ({type(exc).__name__}: {exc})") from None


def version(flavor: Flavor) -> str:
    return str(load(flavor).__version__)


def gpu_problem(trt) -> Optional[str]:
    """None when this module can make a builder here (enterprise TensorRT needs a CUDA GPU for that)."""
    try:
        if trt.Builder(trt.Logger(trt.Logger.INTERNAL_ERROR)) is None:
            return "it could not create a builder"
    except Exception as exc:
        return f"it finds no usable CUDA GPU ({exc})"
    return None


def choose_builder(requested: str) -> Flavor:
    """The flavour that builds engines for --builder `requested`. 'auto': enterprise TensorRT when
    it imports and sees a GPU, else TensorRT-RTX when installed. A flavour asked for by name is
    used or refused, never swapped for the other."""
    if requested not in BUILDER_CHOICES:
        raise TensorRTUnavailable(f"unknown builder {requested!r}; choose one of {', '.join(BUILDER_CHOICES)}")
    if requested == TENSORRT_RTX.name:
        load(TENSORRT_RTX)
        return TENSORRT_RTX
    if requested == TENSORRT.name:
        problem = gpu_problem(load(TENSORRT))
        if problem:
            raise TensorRTUnavailable(f"enterprise TensorRT builds engines on the GPU they are for, and here "
                                      f"{problem}; build on that GPU, or build anywhere with --builder tensorrt-rtx "
                                      f"({TENSORRT_RTX.install})")
        return TENSORRT
    if installed(TENSORRT):
        try:
            if gpu_problem(load(TENSORRT)) is None:
                return TENSORRT
        except TensorRTUnavailable:
            pass
    if installed(TENSORRT_RTX):
        load(TENSORRT_RTX)
        return TENSORRT_RTX
    raise TensorRTUnavailable("no TensorRT is installed. On any machine, even without a GPU: "
                              f"{TENSORRT_RTX.install}; on a machine with an NVIDIA GPU: {TENSORRT.install}")


def parser_flavor(preferred: Optional[Flavor] = None) -> Optional[Flavor]:
    """A flavour whose ONNX parser can run here (the builder's, else any that works), or None."""
    for flavor in ([preferred] if preferred else []) + [TENSORRT, TENSORRT_RTX]:
        if not installed(flavor):
            continue
        try:
            if gpu_problem(load(flavor)) is None:
                return flavor
        except TensorRTUnavailable:
            continue
    return None


def parse_gpu_arch(text: str) -> Tuple[str, ...]:
    """'8.6,8.9,12.0' (or 'sm86,sm_89') -> ('8.6', '8.9', '12.0'); ValueError on anything else."""
    targets: List[str] = []
    for item in (part.strip().lower() for part in text.split(",")):
        digits = item.replace("sm_", "").replace("sm", "")
        if "." not in digits and digits.isdigit() and len(digits) >= 2:
            digits = f"{digits[:-1]}.{digits[-1]}"  # 86 -> 8.6, 120 -> 12.0
        major, _, minor = digits.partition(".")
        if not (major.isdigit() and minor.isdigit() and len(minor) == 1):
            raise ValueError(f"--gpu-arch {text!r}: {item!r} is not a compute capability such as 8.6 or sm86")
        if digits not in targets:
            targets.append(digits)
    if not targets:
        raise ValueError("--gpu-arch needs at least one compute capability, e.g. 8.6,8.9")
    return tuple(targets)


def compute_capability_enum(trt, target: str):
    """trt.ComputeCapability member for '8.6' (SM86); ValueError naming the ones this build knows."""
    name = "SM" + target.replace(".", "")
    known = [n for n in trt.ComputeCapability.__members__ if n.startswith("SM")]
    if name not in known:
        raise ValueError(f"TensorRT-RTX {trt.__version__} cannot target compute capability {target}; it knows "
                         + ", ".join(f"{n[2:-1]}.{n[-1]}" for n in known))
    return trt.ComputeCapability.__members__[name]


def target_problem(engines: dict, installed_version: str, gpu: str, capability: str) -> Optional[str]:
    """Why engines described by a manifest's `engines` section cannot run on this GPU with this
    version of their builder, or None. Engines need the exact builder version; enterprise ones the
    GPU's compute capability, TensorRT-RTX ones a capability among their targets."""
    builder = engines.get("builder") or {}
    problems = []
    if builder.get("version") != installed_version:
        problems.append(f"they were built with {builder.get('name')} {builder.get('version')}, and "
                        f"{builder.get('name')} {installed_version} is installed here")
    targets: Sequence[str] = engines.get("targets") or []
    if builder.get("name") == TENSORRT_RTX.name and engines.get("targets_are_default"):
        fits = capability in targets or int(capability.split(".")[0]) >= 12  # "12.0 and later"
    else:  # enterprise engines from a build where torch saw no GPU record "unknown"
        fits = capability in targets or list(targets) == ["unknown"]
    if not fits:
        problems.append(f"they target compute capability {', '.join(targets) or 'unknown'}, and this GPU "
                        f"({gpu}) is {capability}")
    return "; ".join(problems) or None
