"""Masks drawn on frames, as a person looks at them: hmmn-run's overlay videos and posters
(segment/writer.py) and hmmn-eval's report thumbnails (evaluate/report_frames.py) draw the same."""

from __future__ import annotations

from typing import List, Optional

import numpy as np


def palette_colours(palette: List[int]) -> np.ndarray:
    """768 palette ints -> uint8 [256, 3] RGB."""
    colours = np.zeros((256, 3), dtype=np.uint8)
    flat = np.asarray(palette[:768], dtype=np.uint8)
    colours[: len(flat) // 3] = flat[: len(flat) // 3 * 3].reshape(-1, 3)
    return colours


def blend(frame: np.ndarray, labels: np.ndarray, colours: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """uint8 RGB [H, W, 3] with each object tinted by its palette colour (the frame shows through)."""
    tinted = frame.astype(np.float32)
    fg = labels > 0
    tinted[fg] = (1 - alpha) * tinted[fg] + alpha * colours[labels[fg]].astype(np.float32)
    return np.round(tinted).astype(np.uint8)


def _text(image: np.ndarray, text: str, origin, scale: float, colour) -> None:
    """Text with a dark outline, legible on any background (in place)."""
    import cv2

    thick = max(1, int(round(scale * 2)))
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in colour), thick,
                cv2.LINE_AA)


def overlay(frame: np.ndarray, labels: np.ndarray, colours: np.ndarray, index: Optional[int] = None,
            alpha: float = 0.4) -> np.ndarray:
    """The frame a person looks at: each object filled translucent in its palette colour, its outline
    drawn in that colour, its id (white) at its centre, and the frame index in the top-left corner.
    uint8 RGB [H, W, 3]."""
    import cv2

    image = blend(frame, labels, colours, alpha)
    height, width = labels.shape
    line = max(1, round(min(height, width) / 240))
    scale = max(0.3, min(height, width) / 600)
    masks = {int(i): labels == i for i in np.unique(labels) if i != 0}
    for i, mask in masks.items():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, tuple(int(c) for c in colours[i]), line)
    for i, mask in masks.items():  # ids after every outline, so that no outline crosses them
        ys, xs = np.nonzero(mask)
        (w, h), _ = cv2.getTextSize(str(i), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x = int(np.clip(xs.mean() - w / 2, 0, max(0, width - w)))
        y = int(np.clip(ys.mean() + h / 2, h, height - 1))
        _text(image, str(i), (x, y), scale, (255, 255, 255))
    if index is not None:
        (_, h), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        _text(image, f"frame {index}", (line + 2, h + line + 2), scale, (255, 255, 255))
    return image
