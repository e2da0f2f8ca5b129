"""Prediction folders of several runs (backends, precisions) on the same videos, side by side.

The first run is the baseline. Per sequence and overall: pixel agreement of each run with the
baseline, per-frame IoU between the runs' masks (mean over the objects either mask has), and,
with ground truth, each run's J&F and its difference from the baseline's.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

import numpy as np

from hmmn_ref.media import natural_key

from .davis import EvaluationError, Report, evaluate, frame_names, read_labels, sequence_folders
from .metrics import DEFAULT_CONVENTION


@dataclasses.dataclass
class RunComparison:
    run: str
    agreement: Dict[str, float]  # sequence -> fraction of pixels equal to the baseline's
    mean_iou: Dict[str, float]  # sequence -> mean over frames of the IoU with the baseline
    min_iou: Dict[str, float]  # sequence -> worst frame
    report: Optional[Report] = None  # against the ground truth, when given

    @property
    def overall_agreement(self) -> float:
        return float(np.mean(list(self.agreement.values())))

    @property
    def overall_iou(self) -> float:
        return float(np.mean(list(self.mean_iou.values())))


def run_sequences(folder: str) -> List[str]:
    """Sub-folders holding PNG masks (hmmn-run's probs/, overlays/ and work folders are not)."""
    if not os.path.isdir(folder):
        raise EvaluationError(f"{folder!r} is not a folder")
    names = list(sequence_folders(folder))
    return sorted(names, key=natural_key)


def run_label(folder: str) -> str:
    """The folder's name, with the backend and precision hmmn-run recorded in its summary.json
    (e.g. `out_bf16 (openvino bf16)`), so that runs of one backend in several precisions are
    told apart in the table."""
    import json

    name = os.path.basename(os.path.normpath(folder))
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            summary = json.load(f)
        what = " ".join(str(summary[k]) for k in ("backend", "precision") if summary.get(k))
    except (OSError, ValueError, TypeError, AttributeError):
        return name
    return f"{name} ({what})" if what else name


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the objects of either label map of their IoU; 1 when neither has an object."""
    objects = sorted((set(np.unique(a).tolist()) | set(np.unique(b).tolist())) - {0})
    if not objects:
        return 1.0
    scores = []
    for o in objects:
        x, y = a == o, b == o
        scores.append(np.count_nonzero(x & y) / np.count_nonzero(x | y))
    return float(np.mean(scores))


def compare(runs: List[str], gt: Optional[str] = None, sequences: Optional[List[str]] = None,
            convention: str = DEFAULT_CONVENTION) -> List[RunComparison]:
    if len(runs) < 2:
        raise EvaluationError("--compare needs at least two prediction folders")
    names = sequences or run_sequences(runs[0])
    if not names:
        raise EvaluationError(f"{runs[0]!r} holds no sequence folders with PNG masks")
    for run in runs[1:]:
        missing = [n for n in names if not os.path.isdir(os.path.join(run, n))]
        if missing:
            raise EvaluationError(f"{run!r} lacks sequences {missing} that {runs[0]!r} has")
    results = []
    for run in runs:
        agreement, mean_iou, min_iou = {}, {}, {}
        for name in names:
            frames = frame_names(os.path.join(runs[0], name))
            same, ious = [], []
            for frame in frames:
                path = os.path.join(run, name, frame)
                if not os.path.isfile(path):
                    raise EvaluationError(f"{path!r} is missing (the baseline {runs[0]!r} has it)")
                a, b = read_labels(os.path.join(runs[0], name, frame)), read_labels(path)
                if a.shape != b.shape:
                    raise EvaluationError(f"{path!r} is {b.shape[0]}x{b.shape[1]}, the baseline's {a.shape[0]}x{a.shape[1]}")
                same.append(float((a == b).mean()))
                ious.append(mask_iou(a, b))
            agreement[name], mean_iou[name], min_iou[name] = float(np.mean(same)), float(np.mean(ious)), float(min(ious))
        report = evaluate(gt, run, sequences=names, convention=convention) if gt else None
        results.append(RunComparison(run, agreement, mean_iou, min_iou, report))
    return results


def comparison_table(results: List[RunComparison]) -> str:
    base = results[0]
    has_gt = base.report is not None
    names = list(base.agreement)
    width = max([len(n) for n in names] + [len("overall")])
    labels = {r.run: run_label(r.run) for r in results}
    run_width = max(len(label) for label in labels.values())
    header = f"{'sequence':<{width}} {'run':<{run_width}} {'agree %':>9} {'mean IoU':>9} {'min IoU':>8}"
    header += f" {'J&F':>6} {'dJ&F':>6}" if has_gt else ""
    lines = [header]
    for name in names + ["overall"]:
        for r in results:
            label = labels[r.run]
            if name == "overall":
                agree, miou, low = r.overall_agreement, r.overall_iou, min(r.min_iou.values())
            else:
                agree, miou, low = r.agreement[name], r.mean_iou[name], r.min_iou[name]
            line = f"{name:<{width}} {label:<{run_width}} {100 * agree:>9.4f} {miou:>9.5f} {low:>8.5f}"
            if has_gt:
                jf = r.report.jf if name == "overall" else float(np.mean(r.report.sequence_means(name)))
                base_jf = base.report.jf if name == "overall" else float(np.mean(base.report.sequence_means(name)))
                line += f" {jf:>6.2f} {jf - base_jf:>+6.2f}"
            lines.append(line)
    return "\n".join(lines)


def comparison_json(results: List[RunComparison]) -> dict:
    base = results[0]
    out = {"baseline": base.run, "runs": []}
    for r in results:
        entry = {"run": r.run, "label": run_label(r.run), "agreement": round(100 * r.overall_agreement, 5), "mean_iou": round(r.overall_iou, 6),
                 "sequences": {n: {"agreement": round(100 * r.agreement[n], 5), "mean_iou": round(r.mean_iou[n], 6),
                                   "min_iou": round(r.min_iou[n], 6)} for n in r.agreement}}
        if r.report is not None:
            entry.update({"J&F": round(r.report.jf, 3), "J": round(r.report.j, 3), "F": round(r.report.f, 3),
                          "dJ&F": round(r.report.jf - base.report.jf, 3)})
            for n in r.agreement:
                j, f = r.report.sequence_means(n)
                entry["sequences"][n].update({"J": round(j, 3), "F": round(f, 3), "J&F": round((j + f) / 2, 3)})
        out["runs"].append(entry)
    return out
