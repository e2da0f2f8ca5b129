"""Loading the published checkpoint (`HMMN_weights.pth`) or one saved by this project.

The public evaluation script wraps the model in `nn.DataParallel`, so every name in the
published file starts with `module.`; that prefix is stripped. BatchNorm
`num_batches_tracked` counters are optional: inference never reads them.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Mapping, Optional

import torch

from .config import CONFIGS, HMMNConfig
from .errors import HMMNError
from .model import HMMN

PREFIX = "module."
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


class CheckpointError(HMMNError, ValueError):
    """A file that is not an HMMN checkpoint for the requested configuration."""


def _is_optional(name: str) -> bool:
    return name.endswith("num_batches_tracked")


def read_state_dict(path: "str | os.PathLike[str]") -> Dict[str, torch.Tensor]:
    """Read a checkpoint file on the CPU; unwrap {'state_dict': ...} and strip `module.`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist (download HMMN_weights.pth, see the README)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on a file that is not its format
        raise CheckpointError(_unreadable(path, exc)) from None
    if isinstance(data, Mapping):
        for key in WRAPPER_KEYS:
            if key in data and isinstance(data[key], Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path!r} holds a {type(data).__name__}, not a state dict of tensors")
    return {(k[len(PREFIX) :] if k.startswith(PREFIX) else k): v for k, v in data.items()}


def _unreadable(path: str, exc: Exception) -> str:
    """Why torch.load refused a file, without torch's advice to load it unsafely (weights_only=False
    runs whatever code a pickle holds)."""
    text = str(exc)
    if "weights_only" not in text.lower() and "Weights only" not in text:
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return f"{path!r} is not a PyTorch checkpoint ({first})"
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return (f"{path!r} holds Python objects besides tensors ({found.group(1)}), which are not loaded because "
                "loading them can run code; save the state dict alone (torch.save(model.state_dict(), PATH)) "
                "where the file came from")
    return (f"{path!r} is not a PyTorch checkpoint: neither torch's zip format nor a pickle of tensors "
            "(a truncated download, or a file of another kind?)")


def _mismatches(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]):
    """(missing, unexpected, mis-shaped) names of `state` against a model's state dict."""
    missing = [k for k in expected if k not in state and not _is_optional(k)]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k}: file {tuple(state[k].shape)}, model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, misshaped


def fitting_configs(state: Mapping[str, torch.Tensor]) -> List[str]:
    """Names of the known configurations whose every name and shape `state` matches."""
    names = []
    for name, config in CONFIGS.items():
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            expected = HMMN(config).state_dict()
        if not any(_mismatches(expected, state)):
            names.append(name)
    return names


def check_state_dict(model: HMMN, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise CheckpointError: which configuration fits instead, or the missing, unexpected and
    mis-shaped names."""
    missing, unexpected, misshaped = _mismatches(model.state_dict(), state)
    if not (missing or unexpected or misshaped):
        return
    others = [n for n in fitting_configs(state) if n != model.config.name]
    if others:
        raise CheckpointError(f"{source} does not fit the {model.config.name!r} HMMN configuration: it holds the "
                              f"{others[0]!r} one; pass --config {others[0]}")
    lines = [f"{source} does not fit the {model.config.name!r} HMMN configuration:"]
    for title, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
        if names:
            lines.append(f"  {len(names)} {title}: " + ", ".join(_first(names)))
    raise CheckpointError("\n".join(lines))


def _first(names: List[str], limit: int = 12) -> List[str]:
    return names if len(names) <= limit else names[:limit] + [f"... and {len(names) - limit} more"]


def load_weights(model: HMMN, path: "str | os.PathLike[str]") -> HMMN:
    """Load a checkpoint file into `model` (in place) after checking every name and shape."""
    state = read_state_dict(path)
    check_state_dict(model, state, source=repr(os.fspath(path)))
    model.load_state_dict(state, strict=False)
    model.eval()
    return model


def load_model(path: "str | os.PathLike[str]", config: Optional[HMMNConfig] = None) -> HMMN:
    """Build an HMMN (paper configuration unless given) and load `path` into it."""
    return load_weights(HMMN(config), path)
