"""The DAVIS metrics: region similarity J (IoU) and boundary accuracy F, per object and frame.

F follows the DAVIS definition: one-pixel boundaries of each mask, each boundary pixel counts
as matched when the other mask's boundary lies within a disk of radius
ceil(0.008 * image diagonal); F is the harmonic mean of boundary precision and recall.
Both masks empty scores 1 for J and F (the object is rightly absent).

Which frames count for an object (the J&F convention):
- "vos-benchmark" (the default; vos-benchmark, used by XMem, Cutie and SAM2): an object's frames
  count from the first scored frame on which it appears in the ground truth or the prediction;
  the frames before, where both masks lack it, are not counted. The objects scored are those of
  the scored frames' ground truth.
- "davis2017" (the davis2017-evaluation tool): every scored frame counts for every object of
  the sequence's ground truth, so frames before an object enters score J = F = 1.
Both agree when every object is present from the first scored frame.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

BOUNDARY_FRACTION = 0.008  # of the image diagonal, DAVIS's tolerance
CONVENTIONS = ("vos-benchmark", "davis2017")
DEFAULT_CONVENTION = CONVENTIONS[0]


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels whose right, lower or lower-right neighbour (inside the image) differs."""
    m = np.pad(mask.astype(bool), ((0, 1), (0, 1)), mode="edge")
    here = m[:-1, :-1]
    return (here != m[:-1, 1:]) | (here != m[1:, :-1]) | (here != m[1:, 1:])


def disk(radius: int) -> np.ndarray:
    """uint8 [2r+1, 2r+1] structuring element: x^2 + y^2 <= r^2."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius).astype(np.uint8)


def boundary_radius(shape: Tuple[int, int], fraction: float = BOUNDARY_FRACTION) -> int:
    return int(math.ceil(fraction * math.hypot(shape[0], shape[1])))


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: |pred & gt| / |pred | gt| of two bool masks; 1 when both are empty."""
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_f(pred: np.ndarray, gt: np.ndarray, kernel: np.ndarray) -> float:
    """F of two bool masks with the dilation `kernel` (see `disk`, `boundary_radius`)."""
    import cv2

    pred_edge, gt_edge = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_edge), np.count_nonzero(gt_edge)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    near_gt = cv2.dilate(gt_edge.astype(np.uint8), kernel) > 0
    near_pred = cv2.dilate(pred_edge.astype(np.uint8), kernel) > 0
    precision = np.count_nonzero(pred_edge & near_gt) / n_pred
    recall = np.count_nonzero(gt_edge & near_pred) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def frame_scores(pred: np.ndarray, gt: np.ndarray, objects: Iterable[int]) -> Dict[int, Tuple[float, float]]:
    """Label maps [H, W] -> {object id: (J, F)} for the given objects."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction is {pred.shape[0]}x{pred.shape[1]} but the ground truth is "
                         f"{gt.shape[0]}x{gt.shape[1]}")
    kernel = disk(boundary_radius(gt.shape))
    return {o: (region_similarity(pred == o, gt == o), boundary_f(pred == o, gt == o, kernel)) for o in objects}


def _labels(mask: np.ndarray) -> set:
    return set(np.unique(mask).tolist()) - {0}


def first_counted(pairs: Sequence[Tuple[np.ndarray, np.ndarray]], all_gts: Sequence[np.ndarray],
                  convention: str) -> Dict[int, int]:
    """{ground-truth object: index of the first of `pairs` (pred, gt) that counts for it}."""
    if convention == "davis2017":
        return {o: 0 for o in sorted(_labels(np.stack(all_gts)))}
    if convention != "vos-benchmark":
        raise ValueError(f"unknown J&F convention {convention!r}; choose one of {CONVENTIONS}")
    seen: Dict[int, int] = {}
    in_gt: set = set()
    for t, (p, g) in enumerate(pairs):
        present = _labels(g)
        in_gt |= present
        for o in present | _labels(p):
            seen.setdefault(o, t)
    return {o: seen[o] for o in sorted(in_gt)}


def sequence_frames(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], skip_first_and_last: bool = True,
                    convention: str = DEFAULT_CONVENTION) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Per ground-truth object, its J and F on each frame that counts for it (0-1), see the
    module's note on conventions. The DAVIS 2017 semi-supervised protocol leaves out the first
    frame (given) and the last."""
    pairs = list(zip(preds, gts))
    if skip_first_and_last and len(pairs) > 2:
        pairs = pairs[1:-1]
    start = first_counted(pairs, gts, convention)
    scores: Dict[int, Tuple[List[float], List[float]]] = {o: ([], []) for o in start}
    for t, (p, g) in enumerate(pairs):
        counted = [o for o, first in start.items() if first <= t]
        for o, (j, f) in frame_scores(p, g, counted).items():
            scores[o][0].append(j)
            scores[o][1].append(f)
    return {o: (np.array(j), np.array(f)) for o, (j, f) in scores.items()}


def sequence_scores(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], skip_first_and_last: bool = True,
                    convention: str = DEFAULT_CONVENTION) -> Dict[int, Tuple[float, float]]:
    """Mean (J, F) per ground-truth object over a sequence (0-1 scale); see `sequence_frames`."""
    frames = sequence_frames(preds, gts, skip_first_and_last, convention)
    return {o: (float(j.mean()), float(f.mean())) for o, (j, f) in frames.items()}


def mean_jf(per_sequence: Dict[str, Dict[int, Tuple[float, float]]]) -> Tuple[float, float, float]:
    """(J&F, J, F) on a 0-100 scale: J and F are means over every object of every sequence."""
    js = [j for objects in per_sequence.values() for j, _ in objects.values()]
    fs = [f for objects in per_sequence.values() for _, f in objects.values()]
    if not js:
        raise ValueError("no object to score")
    j, f = 100 * float(np.mean(js)), 100 * float(np.mean(fs))
    return (j + f) / 2, j, f
