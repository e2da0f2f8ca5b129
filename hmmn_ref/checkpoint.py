"""Loading the published checkpoint (`HMMN_weights.pth`) or one saved by this project.

The public evaluation script wraps the model in `nn.DataParallel`, so every name in the
published file starts with `module.`; that prefix is stripped. BatchNorm
`num_batches_tracked` counters are optional: inference never reads them.
"""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional

import torch

from .config import HMMNConfig
from .model import HMMN

PREFIX = "module."
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


class CheckpointError(ValueError):
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
        raise CheckpointError(f"{path!r} is not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(data, Mapping):
        for key in WRAPPER_KEYS:
            if key in data and isinstance(data[key], Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path!r} holds a {type(data).__name__}, not a state dict of tensors")
    return {(k[len(PREFIX) :] if k.startswith(PREFIX) else k): v for k, v in data.items()}


def check_state_dict(model: HMMN, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise CheckpointError listing missing, unexpected and mis-shaped names."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not _is_optional(k)]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k}: file {tuple(state[k].shape)}, model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or misshaped):
        return
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
