"""manifest.json: everything a program in any language needs to drive an export folder.

Written here; read by `core.manifest.read_manifest` (the runtime reads it without the exporter).
Its JSON schema is `data/manifest.schema.json`.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, Optional, Sequence

from hmmn_ref import HMMNConfig
from hmmn_ref.video import PAD_MULTIPLE, padded_size

from ..core.files import sha256_file
from ..core.manifest import FILE_NAME, FORMAT, SCHEMA_VERSION, ManifestError, read_manifest, weights_sha256
from ..core.contracts import DERIVED, DIMENSIONS, GraphSpec, Precision

__all__ = ["FILE_NAME", "FORMAT", "SCHEMA_VERSION", "ManifestError", "build_manifest", "file_entry",
           "load_schema", "read_manifest", "weights_sha256", "write_manifest"]

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "data", "manifest.schema.json")

FLOAT32_PARTS = [
    "1/16 affinity (query keys x memory keys / sqrt(C))",
    "local flow argmax and tracking maps",
    "Gaussian kernel, softmax over memory positions and renormalisation",
    "top-k guide scores and selection",
    "softmax of the 1/8 and 1/4 reads",
    "decoder output softmax, soft aggregation, logits and probabilities",
]

POLICY = (
    "public protocol: frame 0 and every mem_every-th frame kept at 1/16, the previous frame always read; "
    "1/8 and 1/4 read frame 0 and the previous frame; past `capacity` 1/16 slots the oldest slot after "
    "frame 0 is evicted"
)


def file_entry(folder: str, file_name: str) -> Dict[str, Any]:
    path = os.path.join(folder, file_name)
    return {"file": file_name, "sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def versions() -> Dict[str, Optional[str]]:
    import onnx
    import torch

    from . import __version__

    found: Dict[str, Optional[str]] = {"hmmn_deploy": __version__, "torch": torch.__version__, "onnx": onnx.__version__}
    for module in ("onnxruntime", "tensorrt", "tensorrt_rtx"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # absent or broken install: recorded as missing
            found[module] = None
    return found


def build_manifest(
    *,
    config: HMMNConfig,
    weights_source: str,
    weights_sha256: str,
    size: tuple,
    pad: tuple,
    precision: Precision,
    mem_every: int,
    capacity: int,
    max_objects: int,
    specs: Dict[str, GraphSpec],
    graph_files: Dict[str, Dict[str, Any]],
    opset: int,
    engines: Dict[str, Any],
    tensorrt_network: Dict[str, Any],
    validation: Dict[str, Any],
    trained_sizes: Optional[Sequence[Sequence[int]]] = None,
) -> Dict[str, Any]:
    height, width = size
    padded_height, padded_width = padded_size(height, width)
    model = {"name": "HMMN", "config": config.to_dict(), "weights": {"source": weights_source, "sha256": weights_sha256}}
    if trained_sizes:  # the weights' record's: hmmn-run --artifacts picks its working size from them
        model["trained_sizes"] = [list(s) for s in trained_sizes]
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "input": {"height": height, "width": width, "padded_height": padded_height, "padded_width": padded_width,
                  "pad": list(pad), "multiple": PAD_MULTIPLE, "min_cells_16": config.min_cells_16},
        "dims": dict(DIMENSIONS),
        "derived_dims": {symbol: {"of": free, "ratio": ratio, "offset": offset}
                         for symbol, (free, ratio, offset) in DERIVED.items()},
        "precision": {"name": precision, "compute": "float16" if precision == "fp16" else "float32",
                      "float32_parts": FLOAT32_PARTS if precision == "fp16" else ["everything"]},
        # max_objects: the engines' profile; graphs without engines take any number (null)
        "memory": {"mem_every": mem_every, "capacity": capacity,
                   "max_objects": max_objects if engines.get("built") else None, "policy": POLICY},
        "graphs": {name: {**graph_files[name], "opset": opset, **spec.to_dict()} for name, spec in specs.items()},
        "engines": engines,
        "tensorrt_network": tensorrt_network,
        "versions": versions(),
        "validation": validation,
    }  # fmt: skip


def write_manifest(folder: str, manifest: Dict[str, Any]) -> str:
    path = os.path.join(folder, FILE_NAME)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    return path


def load_schema() -> Dict[str, Any]:
    with open(SCHEMA_PATH) as f:
        return json.load(f)
