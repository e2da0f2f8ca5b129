"""Reading an export folder's manifest.json: what the runtime needs, without the exporter.

Readers refuse a manifest whose format or schema version they do not know. The exporter
writes it (`export/manifest.py`, JSON schema in `export/data/manifest.schema.json`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict

from hmmn_ref.errors import HMMNError

FORMAT = "hmmn-deploy.manifest"
# 2: the engine section names its builder (tensorrt or tensorrt-rtx), version and target compute
# capabilities; `tensorrt_network` holds TensorRT's parse of each graph and its layer precisions.
# 3: what libhmmn reads instead of hard-coding: `derived_dims` (each derived dimension as numbers),
# `input.multiple` and `input.min_cells_16`; `memory.max_objects` is null when no engine limits it.
# libhmmn reads this version only (cpp/src/manifest.cpp kSchemaVersion).
SCHEMA_VERSION = 3
FILE_NAME = "manifest.json"


class ManifestError(HMMNError, ValueError):
    """A manifest this version cannot use."""


def weights_sha256(model) -> str:
    """Hash of a model's state dict (names and values): identifies the weights of an export."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_manifest(folder: str) -> Dict[str, Any]:
    """Read and check a manifest; ManifestError says what is wrong and what to do."""
    path = os.path.join(folder, FILE_NAME)
    if not os.path.isfile(path):
        raise ManifestError(f"{folder!r} has no {FILE_NAME}: it is not an hmmn-export folder (run hmmn-export)")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path!r} is not valid JSON ({exc}); export again with hmmn-export") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path!r} is not an hmmn-deploy manifest")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"{path!r} has manifest schema version {version}; this hmmn-deploy reads version {SCHEMA_VERSION} only. "
            "Re-export the folder with this version's hmmn-export, or use the hmmn-deploy that wrote it."
        )
    return manifest
