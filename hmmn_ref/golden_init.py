"""The deterministic weight-fill rule the golden vectors were made with (spec section 7).

Random but reproducible weights for parity tests and exports without the published
checkpoint. Each state-dict entry draws from its own generator seeded by crc32 of its name,
so the result does not depend on the order of entries or on the global RNG.
"""

from __future__ import annotations

import math
import zlib

import torch

from .model import HMMN

KEY_SCALE = 0.3  # softer attention keeps random-weight videos better conditioned


def golden_value(name: str, current: torch.Tensor) -> torch.Tensor:
    """The value the fill rule gives to state-dict entry `name` (current: its tensor now)."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    shape = current.shape
    if name.endswith("num_batches_tracked"):
        return torch.zeros_like(current)
    if name.endswith(".mean") or name.endswith(".std"):
        return current.clone()
    if name.endswith("running_mean"):
        value = 0.1 * torch.randn(shape, generator=gen)
    elif name.endswith("running_var"):
        value = 0.5 + torch.rand(shape, generator=gen)
    elif name.endswith("weight") and current.dim() == 1:
        value = 0.5 + torch.rand(shape, generator=gen)
    elif name.endswith("bias"):
        value = 0.1 * torch.randn(shape, generator=gen)
    elif name.endswith("weight") and current.dim() == 4:
        value = torch.randn(shape, generator=gen) * math.sqrt(1.0 / (shape[1] * shape[2] * shape[3]))
    else:
        raise ValueError(f"the golden fill rule has no case for {name} {tuple(shape)}")
    if ".Key." in name:
        value = value * KEY_SCALE
    return value.to(current.dtype)


@torch.no_grad()
def fill_golden_weights(model: HMMN) -> HMMN:
    """Overwrite every parameter and buffer of `model` by the golden fill rule (in place)."""
    state = model.state_dict()
    model.load_state_dict({name: golden_value(name, tensor) for name, tensor in state.items()})
    return model
