"""Frames, label maps and probabilities moved between a video's size and its processing size.

hmmn-run (segment/reader.py, segment/sequence.py) and hmmn-bench (bench/cli.py) resize alike, so
that hmmn-bench times what hmmn-run processes. Sizes are (H, W); cv2 takes (W, H).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

Size = Tuple[int, int]


def resize_frame(frame: np.ndarray, size: Optional[Size]) -> np.ndarray:
    """uint8 [H, W, 3] -> [h, w, 3]: area averaging to shrink, bilinear to grow; None keeps it."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    import cv2

    shrink = size[0] * size[1] < frame.shape[0] * frame.shape[1]
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_labels(labels: np.ndarray, size: Optional[Size]) -> np.ndarray:
    """Label map [H, W] -> [h, w], nearest neighbour (no label is invented); None keeps it."""
    if size is None or labels.shape == tuple(size):
        return labels
    import cv2

    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def resize_probs(probs: np.ndarray, size: Size) -> np.ndarray:
    """[K, h, w] -> [K, H, W], bilinear per channel (cv2 takes channels last)."""
    if probs.shape[1:] == tuple(size):
        return probs
    import cv2

    planes = [cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for p in probs]
    return np.stack(planes)
