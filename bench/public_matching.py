"""The memory reads as hmmn_ref wrote them before the match stage was reworked (commit d0f5b23:
einsum readout, GatherND of (slot, object, position) triples, top-k on the transposed guide):
the public code's formulation. hmmn-bench's baseline runs with these by default, so that the
baseline stays the public code's loop as the issue measured it (7.2 s a frame at 480x854), not
a loop that shares this project's faster reads. Same values as hmmn_ref.matching's (to ~6e-7).
The baseline's model is given them as its `reads` (hmmn_ref.matching.Reads); nothing is patched.
"""

from __future__ import annotations

import math

import torch

from hmmn_ref import matching


def readout_16(mem_values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    t, n, cv, h, w = mem_values.shape
    values = mem_values.reshape(t, n, cv, h * w)
    return torch.einsum("tnci,ntiq->ncq", values, weights.to(values.dtype)).reshape(n, cv, h, w)


def select_cells(guide: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(guide.transpose(1, 2), k, dim=2, sorted=True).indices


def read_fine_cells(key_cells, value_cells, query_cells, cells):
    s, n, hw, rr, c = key_cells.shape
    k = cells.shape[2]
    slot_of = torch.arange(s, device=cells.device)[:, None].expand(s, hw).reshape(-1)
    position_of = torch.arange(hw, device=cells.device)[None, :].expand(s, hw).reshape(-1)
    objects = torch.arange(n, device=cells.device)[:, None, None]
    index = (slot_of[cells], objects, position_of[cells])
    picked_keys = key_cells[index].reshape(n, hw, k * rr, c)
    picked_values = value_cells[index].reshape(n, hw, k * rr, -1)
    affinity = torch.einsum("nqmc,qpc->nqpm", picked_keys, query_cells) / math.sqrt(c)
    attention = torch.softmax(affinity.float(), dim=-1).to(picked_values.dtype)
    return torch.einsum("nqpm,nqmc->nqpc", attention, picked_values)


READS = matching.Reads(readout_16=readout_16, select_cells=select_cells, read_fine_cells=read_fine_cells)
