"""Where an export folder's INT8 graphs are (`hmmn-quantize` writes them, the openvino backend
reads them), and whether they were made from the folder's current FP32 graphs.

EXPORT/openvino_int8/{encode_query,encode_memory,decode}.xml beside quantization.json, which
records the SHA-256 of the FP32 graphs they came from.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional

from . import manifest as manifest_io
from .files import FileMismatch

INT8_FOLDER = "openvino_int8"
QUANTIZED = ("encode_query", "encode_memory", "decode")  # match is never quantized


def record_path(folder: str) -> str:
    return os.path.join(folder, INT8_FOLDER, "quantization.json")


def _manifest_graphs(folder: str) -> dict:
    return manifest_io.read_manifest(folder)["graphs"]


def int8_ready(folder: str) -> bool:
    """Whether the folder holds INT8 graphs made from its current FP32 graphs."""
    try:
        record = json.load(open(record_path(folder)))
        graphs = _manifest_graphs(folder)
    except (OSError, ValueError, KeyError):
        return False
    return all(record["sources"].get(g) == graphs[g]["sha256"] for g in QUANTIZED) and all(
        os.path.isfile(os.path.join(folder, INT8_FOLDER, f"{g}.xml")) for g in QUANTIZED)


def int8_graph(folder: str, name: str, graphs: Optional[Mapping[str, dict]] = None) -> str:
    """The INT8 graph `name` (OpenVINO IR); FileMismatch when missing or made from other graphs."""
    path = os.path.join(folder, INT8_FOLDER, f"{name}.xml")
    try:
        record = json.load(open(record_path(folder)))
    except (OSError, ValueError):
        raise FileMismatch(f"{folder!r} has no INT8 graphs for openvino; quantize them once with "
                               f"hmmn-quantize {folder}") from None
    if graphs is not None and record.get("sources", {}).get(name) != graphs[name]["sha256"]:
        raise FileMismatch(f"the INT8 graphs in {os.path.join(folder, INT8_FOLDER)!r} were made from other "
                               f"FP32 graphs than {folder!r} holds now; quantize again with hmmn-quantize {folder}")
    if not os.path.isfile(path):
        raise FileMismatch(f"{path!r} is missing; quantize again with hmmn-quantize {folder}")
    return path
