"""What goes in and out of a session, converted in one place: frames, label maps and
probabilities of the video's size HxW to and from the graphs' padded size (hmmn_ref.video's
`pad` / `crop`, the public code's split)."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

import hmmn_ref
from hmmn_ref.video import Pad, crop, pad

from .errors import RuntimeInputError


def frame_size(frame) -> Tuple[int, int]:
    """(H, W) of a numpy uint8 [H, W, 3] frame, a torch uint8 [H, W, 3] / float [3, H, W] one,
    or a DLPack producer of either."""
    if isinstance(frame, np.ndarray):
        return int(frame.shape[0]), int(frame.shape[1])
    if isinstance(frame, torch.Tensor) and frame.dim() == 3:
        return (int(frame.shape[0]), int(frame.shape[1])) if frame.shape[-1] == 3 and frame.dtype == torch.uint8 \
            else (int(frame.shape[1]), int(frame.shape[2]))
    if hasattr(frame, "__dlpack__"):
        return frame_size(torch.from_dlpack(frame))
    raise RuntimeInputError(f"a frame must be a numpy array or a tensor, got {type(frame).__name__}")


def write_frame(frame, target: torch.Tensor, size: Tuple[int, int], padding: Pad) -> None:
    """Write `frame` (numpy uint8 [H, W, 3] RGB, or a torch / DLPack tensor uint8 [H, W, 3] or
    float [3, H, W] in [0, 1]) into the padded buffer target [1, 3, Hp, Wp], converted on the
    target's device (not copied to the host); the padding stays zero."""
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise RuntimeInputError(f"a numpy frame must be uint8 [H, W, 3] RGB, got {frame.dtype} {frame.shape}")
        frame = torch.from_numpy(frame if frame.flags.writeable else frame.copy())  # PIL arrays are read-only
    elif not isinstance(frame, torch.Tensor):
        if not hasattr(frame, "__dlpack__"):
            raise RuntimeInputError(f"a frame must be a numpy array, a torch tensor or a DLPack tensor, "
                                    f"got {type(frame).__name__}")
        frame = torch.from_dlpack(frame)
    if frame.dtype == torch.uint8 and frame.dim() == 3 and frame.shape[2] == 3:
        chw, scale = frame.to(target.device).permute(2, 0, 1), 1.0 / 255.0
    elif frame.is_floating_point() and frame.dim() == 3 and frame.shape[0] == 3:
        chw, scale = frame.to(target.device), 1.0
    else:
        raise RuntimeInputError(f"a frame tensor must be uint8 [H, W, 3] or float [3, H, W], "
                                f"got {frame.dtype} {tuple(frame.shape)}")
    if tuple(chw.shape[1:]) != size:
        raise RuntimeInputError(f"frame is {chw.shape[1]}x{chw.shape[2]} but this video is "
                                f"{size[0]}x{size[1]}; resize it or start a new video")
    crop(target[0], padding).copy_(chw)
    if scale != 1.0:
        target.div_(255.0)  # as the reference divides uint8 frames


def one_hot_labels(mask, size: Tuple[int, int], padding: Pad) -> Tuple[torch.Tensor, List[int]]:
    """Label map [H, W] -> (one-hot [1+M, Hp, Wp] padded, on the host; its labels). Labels are
    kept as given (gaps allowed); 0 is the background."""
    if mask is None:
        raise RuntimeInputError("a mask is needed: an integer label map [H, W] (0 the background, object ids > 0), "
                                "got None")
    if not isinstance(mask, torch.Tensor):
        array = np.array(mask)  # a copy: PIL arrays are read-only
        if array.dtype.kind not in "iub":
            raise RuntimeInputError(f"a mask must be an integer label map [H, W], got {type(mask).__name__} of "
                                    f"{array.dtype} {array.shape}")
    mask_t = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(array)
    if mask_t.dim() != 2 or mask_t.is_floating_point():
        raise RuntimeInputError(f"a mask must be an integer label map [H, W], got {mask_t.dtype} {tuple(mask_t.shape)}")
    if tuple(mask_t.shape) != size:
        raise RuntimeInputError(f"mask is {mask_t.shape[0]}x{mask_t.shape[1]} but the frames are "
                                f"{size[0]}x{size[1]}; resize it with nearest-neighbour sampling")
    labels = hmmn_ref.object_labels(mask_t.cpu().numpy())
    negative = [v for v in labels if v < 0]
    if negative:
        raise RuntimeInputError(f"the mask has negative labels {negative[:8]}; a label map holds 0 for the "
                                "background and positive object ids")
    if not labels:
        raise RuntimeInputError("the mask has no object: every pixel is background (label 0)")
    return pad(hmmn_ref.one_hot(mask_t.long(), labels), padding), labels


def padded_probs(probs, k: int, size: Tuple[int, int], padding: Pad) -> torch.Tensor:
    """Probabilities [K, H, W] (numpy or torch) -> float32 [K, Hp, Wp], zero in the padding."""
    p = torch.as_tensor(np.asarray(probs) if not isinstance(probs, torch.Tensor) else probs)
    if tuple(p.shape) != (k,) + size:
        raise RuntimeInputError(f"probabilities must be [N+1, H, W] = {(k,) + size}, got {tuple(p.shape)}")
    return pad(p.float(), padding)
