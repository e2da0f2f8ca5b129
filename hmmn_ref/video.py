"""The reference video loop: the public evaluation protocol over the model's stages (spec 6).

`run_video` is a stable public entry point: later tools and outside checks call it as written.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import protocol
from .model import HMMN, MemoryEntry

Pad = Tuple[int, int, int, int]  # (top, bottom, left, right)
PAD_MULTIPLE = 16  # frames are padded to multiples of the coarsest scale, 1/16


def padding_for(height: int, width: int, multiple: int = PAD_MULTIPLE) -> Pad:
    """Zero padding that makes both sides multiples of 16, split as the public code splits it."""

    def split(size: int) -> Tuple[int, int]:
        rem = size % multiple
        if rem == 0:
            return 0, 0
        d = multiple - rem
        return d // 2, d - d // 2

    top, bottom = split(height)
    left, right = split(width)
    return top, bottom, left, right


def padded_size(height: int, width: int) -> Tuple[int, int]:
    """(H, W): an HxW frame with its padding (`padding_for`), multiples of 16."""
    top, bottom, left, right = padding_for(height, width)
    return height + top + bottom, width + left + right


def grid_16(height: int, width: int) -> Tuple[int, int]:
    """Size (h, w) of the 1/16 grid of a padded HxW frame."""
    padded_height, padded_width = padded_size(height, width)
    return padded_height // PAD_MULTIPLE, padded_width // PAD_MULTIPLE


def cells_16(height: int, width: int) -> int:
    """Positions of the 1/16 grid of an HxW frame; a model needs at least config.min_cells_16."""
    h, w = grid_16(height, width)
    return h * w


def pad(x: torch.Tensor, p: Pad) -> torch.Tensor:
    """Zero-pad the last two dims of x by p = (top, bottom, left, right)."""
    top, bottom, left, right = p
    return torch.nn.functional.pad(x, (left, right, top, bottom))


def crop(x: torch.Tensor, p: Pad) -> torch.Tensor:
    """Undo `pad` on the last two dims."""
    top, bottom, left, right = p
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


def object_labels(first_mask) -> List[int]:
    """The object labels of a first-frame label map, ascending; object j (1-based) of every
    output is the j-th of these. Labels with gaps, say {0, 2, 5}, give objects 1 -> 2, 2 -> 5."""
    labels = np.unique(np.asarray(first_mask))
    return [int(v) for v in labels if v != 0]


def one_hot(label_map: torch.Tensor, labels: Sequence[int]) -> torch.Tensor:
    """label_map [H, W] -> probabilities [1 + len(labels), H, W]: background, then each label.
    Pixels of labels not listed count as background."""
    objects = torch.stack([label_map == v for v in labels]).to(torch.float32)
    background = 1.0 - objects.sum(dim=0, keepdim=True)
    return torch.cat([background, objects], dim=0)


def check_inputs(model: HMMN, frames: torch.Tensor, first_mask: torch.Tensor) -> None:
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [T, 3, H, W] RGB, got shape {tuple(frames.shape)}")
    if frames.shape[0] < 1:
        raise ValueError("frames is empty: a video needs at least its first frame")
    if not torch.is_floating_point(frames):
        raise ValueError(f"frames must be float32 in [0, 1], got {frames.dtype} (divide uint8 frames by 255)")
    if first_mask.dim() != 2:
        raise ValueError(f"first_mask must be a label map [H, W], got shape {tuple(first_mask.shape)}")
    if torch.is_floating_point(first_mask):
        raise ValueError(f"first_mask must hold integer labels, got {first_mask.dtype}")
    if tuple(first_mask.shape) != tuple(frames.shape[-2:]):
        raise ValueError(
            f"first_mask is {tuple(first_mask.shape)} (HxW) but the frames are {tuple(frames.shape[-2:])}; "
            "resize the mask with nearest-neighbour sampling to the frame size"
        )
    cells = cells_16(*frames.shape[-2:])
    need = model.config.min_cells_16
    if cells < need:
        raise ValueError(
            f"frames of {frames.shape[-2]}x{frames.shape[-1]} give {cells} positions on the 1/16 grid; "
            f"this model reads the top {need} cells and needs at least {need} (for example 96x96 or larger)"
        )


@torch.no_grad()
def run_video(
    model: HMMN,
    frames: torch.Tensor,
    first_mask: torch.Tensor,
    mem_every: int = protocol.DEFAULT_MEM_EVERY,
    teacher: Optional[torch.Tensor] = None,
    *,
    capacity: Optional[int] = None,
    on_frame: Optional[Callable[[int, int], None]] = None,
    tracks_log: Optional[List[torch.Tensor]] = None,
) -> torch.Tensor:
    """Segment a video with the public protocol.

    frames: float32 [T, 3, H0, W0], RGB in [0, 1]. first_mask: integer [H0, W0], labels
    0..; object j of the output is the j-th non-zero label in ascending order
    (`object_labels(first_mask)`). teacher: optional float32 [T, N+1, H0, W0]
    probabilities; when given, frame t-1 is memorised with teacher[t-1] (teacher[0] replaces
    the one-hot annotation) instead of the model's own prediction.
    capacity: optional number of 1/16 slots read per frame (kept frames plus the previous one):
    past it, a kept frame replaces the oldest kept frame after frame 0 (hmmn_ref.protocol),
    as the runtime's bank does; None keeps every kept frame (the public code).
    on_frame: optional callback(t, T) after frame t is segmented (progress reporting).
    tracks_log: optional list; gets, per frame t, the tracking maps [N, P, hw] of the
    permanent 1/16 slots that frame t reads (for comparisons that force this state too).
    Returns float32 [T-1, N+1, H0, W0]: the output logits L of frames 1..T-1.
    """
    frames = torch.as_tensor(frames)
    outputs = None
    for t, logits in video_steps(model, frames, first_mask, mem_every, teacher, capacity=capacity,
                                 tracks_log=tracks_log):
        if outputs is None:
            outputs = torch.empty((frames.shape[0] - 1,) + tuple(logits.shape))
        outputs[t - 1] = logits
        if on_frame is not None:
            on_frame(t, frames.shape[0])
    if outputs is None:  # a one-frame video: nothing to segment
        k = len(object_labels(torch.as_tensor(first_mask).cpu().numpy())) + 1
        outputs = torch.empty(0, k, *frames.shape[-2:])
    return outputs


def protocol_steps(
    model: HMMN,
    frames: torch.Tensor,
    first_mask: torch.Tensor,
    mem_every: int = protocol.DEFAULT_MEM_EVERY,
    teacher: Optional[torch.Tensor] = None,
    *,
    capacity: Optional[int] = None,
    tracks_log: Optional[List[torch.Tensor]] = None,
) -> Iterator[Tuple[int, torch.Tensor]]:
    """`run_video` one frame at a time: yields (t, logits [N+1, H0, W0]) for t = 1..T-1, so callers
    can interleave videos or time frames; same arguments and checks as `run_video`. Autograd is left
    to the caller: training runs its clips through this same loop, gradients flowing through the
    memory the model writes (`video_steps` is this loop without autograd)."""
    frames = torch.as_tensor(frames)
    first_mask = torch.as_tensor(first_mask)
    check_inputs(model, frames, first_mask)
    protocol.check_settings(mem_every=mem_every, capacity=capacity)
    labels = object_labels(first_mask.cpu().numpy())
    if not labels:
        raise ValueError("first_mask has no object: every pixel is background (label 0)")
    num_frames, _, height, width = frames.shape
    k = len(labels) + 1
    if teacher is not None:
        teacher = torch.as_tensor(teacher)
        if tuple(teacher.shape) != (num_frames, k, height, width):
            raise ValueError(
                f"teacher must be [T, N+1, H, W] = {(num_frames, k, height, width)}, got {tuple(teacher.shape)}"
            )

    p = padding_for(height, width)
    frames = frames.to(torch.float32)
    probs = one_hot(first_mask, labels) if teacher is None else teacher[0].to(torch.float32)
    permanent: List[MemoryEntry] = []  # 1/16 slots kept: frames 0, mem_every, ... (hmmn_ref.protocol)
    slot_frames: List[int] = []  # the frame each of them holds
    first: Optional[MemoryEntry] = None  # frame 0, read at 1/8 and 1/4 for the whole video
    h, w = grid_16(height, width)
    # [N, P, hw] tracking maps of the permanent slots (none yet)
    tracks = torch.zeros(len(labels), 0, h * w, dtype=torch.int64, device=frames.device)

    for t in range(1, num_frames):
        entry = model.encode_memory(pad(frames[t - 1 : t], p), pad(probs, p))
        if first is None:
            first = entry
        slots16 = stack_slots(permanent + [entry])
        slots_fine = stack_slots([first] if t == 1 else [first, entry])
        if tracks_log is not None:
            tracks_log.append(tracks.clone())
        ages = None  # slots in temporal order, unless a capped bank replaced one in place
        if capacity is not None:
            ages = torch.tensor(protocol.slot_ages(slot_frames + [t - 1]), device=frames.device)
        logits, new_tracks = model.segment(pad(frames[t : t + 1], p), slots16, slots_fine, tracks, ages)
        logits = crop(logits, p)
        slot = protocol.place_kept(slot_frames, t - 1, capacity) if protocol.is_kept(t - 1, 0, mem_every) else None
        if slot == len(permanent):  # kept after the others: the maps of every slot carry on
            permanent.append(entry)
            tracks = new_tracks
        else:
            tracks = new_tracks[:, :-1]
            if slot is not None:  # the bank is full: the previous frame takes the oldest's slot
                permanent[slot] = entry
                tracks = tracks.clone()
                tracks[:, slot] = new_tracks[:, -1]
        probs = torch.softmax(logits, dim=0) if teacher is None else teacher[t].to(torch.float32)
        yield t, logits


# `protocol_steps` without autograd (inference, the runtime's parity tests).
video_steps = torch.no_grad()(protocol_steps)


def stack_slots(entries: Sequence[MemoryEntry]) -> MemoryEntry:
    """Entries of [N, C, h, w] -> one entry of slot-major [S, N, C, h, w] tensors."""
    return MemoryEntry(*(torch.stack(parts) for parts in zip(*entries)))
