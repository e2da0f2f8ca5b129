"""J and F of a prediction folder against DAVIS-style ground truth, per object and sequence.

Ground truth: ANNOTATIONS/<seq>/<frame>.png (a DAVIS root is accepted too: its
Annotations/480p is used). Predictions: PRED/<seq>/<frame>.png, as hmmn-run writes them.
Every ground-truth frame needs a prediction of the same size; the objects scored are the
ground truth's; the first and last frames are left out (DAVIS 2017 semi-supervised); which
frames count for an object follows a convention (metrics.CONVENTIONS, default vos-benchmark's).
A sequence is a sub-folder holding PNG files; hidden folders (hmmn-run's work in progress) and
folders without PNGs (hmmn-run's probs/) are not sequences, nor is hmmn-run's overlays/ (its
videos' PNG posters).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from hmmn_ref.errors import HMMNError
from hmmn_ref.media import natural_key

from .metrics import DEFAULT_CONVENTION, sequence_frames


RUN_OVERLAYS = "overlays"  # hmmn-run's videos and their PNG posters, beside the sequences


class EvaluationError(HMMNError, ValueError):
    """Folders that cannot be compared; the message names the sequence or file."""


@dataclasses.dataclass
class ObjectResult:
    j: np.ndarray  # J per scored frame, 0-1
    f: np.ndarray  # F per scored frame, 0-1

    @property
    def j_mean(self) -> float:
        return 100 * float(self.j.mean())

    @property
    def f_mean(self) -> float:
        return 100 * float(self.f.mean())

    @property
    def j_recall(self) -> float:
        return 100 * float((self.j > 0.5).mean())

    @property
    def f_recall(self) -> float:
        return 100 * float((self.f > 0.5).mean())


@dataclasses.dataclass
class Report:
    """Results of one prediction folder. `sequences[name][object id]`."""

    sequences: Dict[str, Dict[int, ObjectResult]]
    convention: str = DEFAULT_CONVENTION

    def _objects(self) -> List[ObjectResult]:
        return [o for objects in self.sequences.values() for o in objects.values()]

    @property
    def j(self) -> float:
        return float(np.mean([o.j_mean for o in self._objects()]))

    @property
    def f(self) -> float:
        return float(np.mean([o.f_mean for o in self._objects()]))

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2

    def sequence_means(self, name: str) -> Tuple[float, float]:
        objects = self.sequences[name].values()
        return float(np.mean([o.j_mean for o in objects])), float(np.mean([o.f_mean for o in objects]))

    def to_json(self) -> dict:
        sequences = {}
        for name in self.sequences:
            j, f = self.sequence_means(name)
            sequences[name] = {"J": round(j, 3), "F": round(f, 3), "J&F": round((j + f) / 2, 3),
                               "objects": {str(o): {"J": round(r.j_mean, 3), "F": round(r.f_mean, 3)}
                                           for o, r in self.sequences[name].items()}}
        return {"convention": self.convention, "J&F": round(self.jf, 3), "J": round(self.j, 3), "F": round(self.f, 3),
                "J-Recall": round(float(np.mean([o.j_recall for o in self._objects()])), 3),
                "F-Recall": round(float(np.mean([o.f_recall for o in self._objects()])), 3),
                "sequences": sequences}

    def table(self) -> str:
        """Global and per-object results, laid out as the DAVIS tools print them."""
        objs = self._objects()
        lines = [f"J&F convention: {self.convention} ({CONVENTION_NOTES[self.convention]})",
                 "--------------------------- Global results ---------------------------",
                 f"{'J&F-Mean':>9} {'J-Mean':>8} {'J-Recall':>9} {'F-Mean':>8} {'F-Recall':>9}",
                 f"{self.jf:>9.1f} {self.j:>8.1f} {np.mean([o.j_recall for o in objs]):>9.1f} {self.f:>8.1f} "
                 f"{np.mean([o.f_recall for o in objs]):>9.1f}",
                 "",
                 "------------------------ Per object results ------------------------"]
        width = max([len(f"{n}_{o}") for n, objects in self.sequences.items() for o in objects] + [8])
        lines.append(f"{'Sequence':<{width}} {'J-Mean':>8} {'F-Mean':>8}")
        for name, objects in self.sequences.items():
            for o, r in objects.items():
                lines.append(f"{name + '_' + str(o):<{width}} {r.j_mean:>8.1f} {r.f_mean:>8.1f}")
        return "\n".join(lines)

    def csv_rows(self) -> List[List[str]]:
        rows = [["sequence", "object", "J", "F", "J&F"]]
        for name, objects in self.sequences.items():
            for o, r in objects.items():
                rows.append([name, str(o), f"{r.j_mean:.3f}", f"{r.f_mean:.3f}", f"{(r.j_mean + r.f_mean) / 2:.3f}"])
        rows.append(["global", "", f"{self.j:.3f}", f"{self.f:.3f}", f"{self.jf:.3f}"])
        return rows


CONVENTION_NOTES = {
    "vos-benchmark": "an object's frames count from its first appearance in the ground truth or the prediction",
    "davis2017": "every scored frame counts for every object, absent ones as J = F = 1",
}


def annotations_root(path: str) -> str:
    """ANNOTATIONS itself, or a DAVIS root's Annotations/480p."""
    davis = os.path.join(path, "Annotations", "480p")
    return davis if os.path.isdir(davis) else path


def read_labels(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "I", "I;16"):
                raise EvaluationError(f"{path!r} is a {image.mode} image, not a palette or greyscale label PNG")
            return np.array(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise EvaluationError(f"cannot read {path!r}: {exc}") from None


def check_gt(gt: str) -> None:
    if not os.path.exists(gt):
        raise EvaluationError(f"ground truth {gt!r} does not exist; give the annotations folder "
                              "(DAVIS: Annotations/480p) or a DAVIS root")
    if not os.path.isdir(gt):
        raise EvaluationError(f"ground truth {gt!r} is a file; give a folder of sequence folders of label PNGs "
                              "(DAVIS: Annotations/480p) or a DAVIS root")


def sequence_folders(folder: str) -> Dict[str, List[str]]:
    """The sequences of a results or annotations folder -> their PNG names: the non-hidden
    sub-folders holding PNG files (not hmmn-run's work folder, probs/ or overlays/)."""
    found = {}
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not name.startswith(".") and name != RUN_OVERLAYS and os.path.isdir(path):
            names = frame_names(path)
            if names:
                found[name] = names
    return found


def list_sequences(gt: str, imageset: Optional[str]) -> List[str]:
    if imageset:
        if not os.path.isfile(imageset):
            raise EvaluationError(f"image set {imageset!r} is not a file")
        with open(imageset) as f:
            names = [line.strip() for line in f if line.strip()]
        check_named(gt, names)
        return names
    names = sorted(sequence_folders(gt), key=natural_key)
    if not names:
        raise EvaluationError(f"{gt!r} holds no sequence folders of label PNGs{_what_it_holds(gt)}")
    return names


def check_named(gt: str, names: Sequence[str]) -> None:
    missing = [n for n in names if not os.path.isdir(os.path.join(gt, n))]
    if missing:
        raise EvaluationError(f"no ground truth for {missing} in {gt!r}")
    empty = [n for n in names if not frame_names(os.path.join(gt, n))]
    if empty:
        raise EvaluationError(f"the ground truth of {empty} in {gt!r} holds no PNG label maps")


def _what_it_holds(gt: str) -> str:
    """A hint for a folder that is not ground truth: frames instead of annotations, say."""
    for name in sorted(os.listdir(gt)):
        folder = os.path.join(gt, name)
        if os.path.isdir(folder) and any(n.lower().endswith((".jpg", ".jpeg")) for n in os.listdir(folder)):
            return (f" ({folder!r} holds JPEG frames: give the annotations, e.g. DAVIS/Annotations/480p, "
                    "not JPEGImages)")
    return "; give the annotations folder (DAVIS: Annotations/480p) or a DAVIS root"


def frame_names(folder: str) -> List[str]:
    return sorted((n for n in os.listdir(folder) if n.lower().endswith(".png")), key=natural_key)


def load_pairs(gt: str, pred: str, name: str) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    gt_dir, pred_dir = os.path.join(gt, name), os.path.join(pred, name)
    if not os.path.isdir(pred_dir):
        raise EvaluationError(f"sequence {name!r} has no predictions: {pred_dir!r} does not exist")
    preds, gts = [], []
    for frame in frame_names(gt_dir):
        path = os.path.join(pred_dir, frame)
        if not os.path.isfile(path):
            raise EvaluationError(f"sequence {name!r}: prediction {path!r} is missing")
        p, g = read_labels(path), read_labels(os.path.join(gt_dir, frame))
        if p.shape != g.shape:
            raise EvaluationError(f"{path!r} is {p.shape[0]}x{p.shape[1]} but its ground truth is "
                                  f"{g.shape[0]}x{g.shape[1]}")
        preds.append(p)
        gts.append(g)
    return preds, gts


def evaluate(gt: str, pred: str, imageset: Optional[str] = None, sequences: Optional[Sequence[str]] = None,
             skip_first_and_last: bool = True, progress=None, convention: str = DEFAULT_CONVENTION) -> Report:
    check_gt(gt)
    gt = annotations_root(gt)
    if sequences:
        names = list(sequences)
        check_named(gt, names)
    else:
        names = list_sequences(gt, imageset)
    if not os.path.isdir(pred):
        raise EvaluationError(f"predictions {pred!r} is not a folder")
    missing = [n for n in names if not os.path.isdir(os.path.join(pred, n))]
    if missing:
        raise EvaluationError(f"no predictions for sequences {missing} in {pred!r} (every scored sequence needs "
                              "one; --imageset or --sequences pick a subset)")
    results: Dict[str, Dict[int, ObjectResult]] = {}
    for name in names:
        preds, gts = load_pairs(gt, pred, name)
        frames = sequence_frames(preds, gts, skip_first_and_last, convention)
        if not frames:
            raise EvaluationError(f"sequence {name!r}: the ground truth has no object")
        results[name] = {o: ObjectResult(j, f) for o, (j, f) in frames.items()}
        if progress:
            progress(1)
    return Report(results, convention)
