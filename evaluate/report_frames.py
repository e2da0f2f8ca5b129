"""Per-frame J of a sequence, its worst frames, and their thumbnails (prediction beside ground
truth, drawn as hmmn-run draws its overlay) for hmmn-eval's report.

An object's J array (davis.ObjectResult.j) covers the scored frames from the first that counts
for it to the last (metrics.sequence_frames), so it lines up with the tail of the scored frames.
"""

from __future__ import annotations

import io
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from .davis import Report, annotations_root, frame_names, read_labels

THUMB_WIDTH = 240  # pixels of each half of a thumbnail


def scored_frames(gt: str, name: str, skip_first_and_last: bool) -> List[str]:
    """The ground-truth frame names that J&F scores (DAVIS 2017 leaves out the first and last)."""
    names = frame_names(os.path.join(annotations_root(gt), name))
    return names[1:-1] if skip_first_and_last and len(names) > 2 else names


def per_frame_j(report: Report, frames: List[str], name: str) -> Dict[int, np.ndarray]:
    """{object: J per scored frame (0-100), NaN before the object counts}, each of len(frames)."""
    curves = {}
    for obj, result in report.sequences[name].items():
        curve = np.full(len(frames), np.nan)
        if len(result.j):
            curve[len(frames) - len(result.j):] = 100 * result.j
        curves[obj] = curve
    return curves


def mean_curve(curves: Dict[int, np.ndarray]) -> np.ndarray:
    """J per frame, the mean over the objects counted on it (NaN where none is)."""
    stacked = np.stack(list(curves.values()))
    counted = ~np.isnan(stacked)
    total = np.where(counted, stacked, 0).sum(axis=0)
    return np.where(counted.any(axis=0), total / np.maximum(counted.sum(axis=0), 1), np.nan)


def worst_frames(frames: List[str], curve: np.ndarray, count: int) -> List[Tuple[str, float]]:
    """The `count` frames of lowest J (ties: the earlier), as (frame name, J)."""
    order = [i for i in np.argsort(np.where(np.isnan(curve), np.inf, curve), kind="stable") if not np.isnan(curve[i])]
    return [(frames[i], float(curve[i])) for i in order[:count]]


def frame_image(gt: str, name: str, frame: str, shape) -> np.ndarray:
    """The video frame under the masks: JPEGImages/<res>/<name>/<stem>.jpg of the DAVIS root the
    annotations belong to; a grey frame of `shape` (H, W) when there is none."""
    from PIL import Image

    annotations = annotations_root(gt)
    root, resolution = os.path.dirname(os.path.dirname(annotations)), os.path.basename(annotations)
    stem = os.path.splitext(frame)[0]
    for extension in (".jpg", ".jpeg", ".png"):
        path = os.path.join(root, "JPEGImages", resolution, name, stem + extension)
        if os.path.isfile(path):
            with Image.open(path) as image:
                rgb = np.array(image.convert("RGB"))
            if rgb.shape[:2] == tuple(shape):
                return rgb
    return np.full((*shape, 3), 96, dtype=np.uint8)


def palette_of(path: str) -> np.ndarray:
    """uint8 [256, 3] colours of a label PNG's palette (DAVIS's when it has none)."""
    from PIL import Image

    from hmmn_ref.media import davis_palette

    from ..core.drawing import palette_colours

    with Image.open(path) as image:
        palette = image.getpalette() if image.mode == "P" else None
    return palette_colours(palette or davis_palette())


def thumbnail(gt: str, pred: str, name: str, frame: str, label: str) -> bytes:
    """PNG: the prediction (left) and the ground truth (right) drawn over the frame."""
    import cv2

    from ..core.drawing import overlay

    gt_path = os.path.join(annotations_root(gt), name, frame)
    truth, predicted = read_labels(gt_path), read_labels(os.path.join(pred, name, frame))
    colours = palette_of(gt_path)
    rgb = frame_image(gt, name, frame, truth.shape)
    halves = []
    for labels, title in ((predicted, label), (truth, "ground truth")):
        drawn = overlay(rgb, labels.astype(np.uint8), colours)
        height = max(1, round(drawn.shape[0] * THUMB_WIDTH / drawn.shape[1]))
        small = cv2.resize(drawn, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
        cv2.putText(small, title, (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(small, title, (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        halves.append(small)
    gap = np.full((halves[0].shape[0], 4, 3), 255, dtype=np.uint8)
    return png_bytes(np.concatenate([halves[0], gap, halves[1]], axis=1))


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def overlay_files(pred: str, name: str) -> Optional[Tuple[str, Optional[str]]]:
    """hmmn-run's overlay of a sequence in a prediction folder: (video, poster or None), or None."""
    video = os.path.join(pred, "overlays", name + ".mp4")
    if not os.path.isfile(video):
        return None
    poster = os.path.join(pred, "overlays", name + ".png")
    return video, poster if os.path.isfile(poster) else None
