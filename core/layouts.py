"""Where the graphs' layouts differ from hmmn_ref's, the one conversion each way.

- Tracking maps: hmmn_ref keeps [N, T, hw] int64 (per object, per slot, flat 1/16 index);
  the bank and `match` keep them slot-major, [T, N, h, w] int32, so a slot is one row.
- Fine memory (1/8, 1/4): hmmn_ref keeps [N, C, h*r, w*r]; the bank keeps it grouped by 1/16
  cell, [N, h, w, r*r, C], the layout the top-k read gathers from.
"""

from __future__ import annotations

import torch



def tracks_to_bank(tracks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[N, T, hw] (hmmn_ref) -> [T, N, h, w] int32 (the bank's and match's)."""
    return tracks.permute(1, 0, 2).reshape(tracks.shape[1], tracks.shape[0], h, w).to(torch.int32)


def tracks_from_bank(tracks: torch.Tensor) -> torch.Tensor:
    """[T, N, h, w] (the bank's) -> [N, T, hw] int64 (hmmn_ref's)."""
    t, n, h, w = tracks.shape  # explicit: T may be 0
    return tracks.reshape(t, n, h * w).permute(1, 0, 2).to(torch.int64)


def fine_cells(x: torch.Tensor, ratio: int, h: int, w: int) -> torch.Tensor:
    """[N, C, h*r, w*r] -> [N, h, w, r*r, C]: each 1/16 cell's r x r positions, channels last
    (matching.to_cells's layout, in two steps)."""
    # Channels last first ([N, C, HW] -> [N, HW, C]), then the cells with the channels kept in
    # place. ONNX Runtime merges a 4-D NCHW -> NHWC Transpose with the next one into a single
    # 6-D Transpose, which took 4.6 ms for a [1, 24, 120, 160] map where these two take 1.1 ms.
    n, c = x.shape[:2]
    r = ratio
    channels_last = x.flatten(2).transpose(1, 2)  # [N, H*W, C]
    cells = channels_last.reshape(n, h, r, w, r, c).transpose(2, 3)  # [N, h, w, r, r, C]
    return cells.reshape(n, h, w, r * r, c)
