"""`hmmn-eval ... --report DIR`: the results as one HTML page (core/report_page.py: self-contained,
published whole).

Per run: J&F, J, F overall and per sequence and object; per sequence a plot of J per frame, the
worst frames as thumbnails (prediction beside ground truth) and hmmn-run's overlay video when
the run folder has one (OUT/overlays/<seq>.mp4, copied into DIR/media/). With --compare the
runs stand side by side: the first is the baseline, and a cell that is worse than the
baseline's is red, better green.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import List, Optional

from ..core.report_page import esc, image, page, publish, table, video
from .compare import RunComparison, run_label
from .davis import Report
from .report_frames import mean_curve, overlay_files, per_frame_j, scored_frames, thumbnail, worst_frames
from .report_plots import j_curve

WORST = 3  # thumbnails per sequence and run
SAME = 0.05  # J&F points within which a run counts as equal to the baseline


@dataclasses.dataclass
class EvalRun:
    folder: str  # the prediction folder
    report: Optional[Report]  # against the ground truth (None: --compare without --gt)
    comparison: Optional[RunComparison] = None  # against the baseline (--compare)

    @property
    def label(self) -> str:
        return run_label(self.folder)


def write_report(folder: str, runs: List[EvalRun], gt: Optional[str], skip_first_and_last: bool) -> str:
    """-> the path of DIR/index.html. ReportError when DIR cannot be written."""
    return publish(folder, lambda work: _page(work, runs, gt, skip_first_and_last))


def _page(work: str, runs: List[EvalRun], gt: Optional[str], skip: bool) -> str:
    names = list(runs[0].report.sequences) if runs[0].report else list(runs[0].comparison.agreement)
    parts = [_summary(runs, gt)]
    for name in names:
        parts.append(f'<h2 id="{esc(name)}">{esc(name)}</h2>')
        if len(runs) > 1:
            parts.append(_agreement_table(runs, name))
        if runs[0].report:
            parts.append(_sequence_table(runs, name))
            frames = scored_frames(gt, name, skip)
            parts.append(_curve(runs, frames, name))
        parts.append(_videos(work, runs, name))
        if runs[0].report:
            parts.append(_worst(runs, gt, frames, name))
    title = "hmmn-eval: " + (runs[0].label if len(runs) == 1 else f"{len(runs)} runs compared")
    return page(title, "\n".join(p for p in parts if p))


def _delta_class(value: float, base: float) -> str:
    return "same" if abs(value - base) < SAME else ("better" if value > base else "worse")


def _summary(runs: List[EvalRun], gt: Optional[str]) -> str:
    base = runs[0]
    header = ["run", "folder"]
    rows, classes = [], []
    scored = base.report is not None
    if scored:
        header += ["J&F", "J", "F"]
    if len(runs) > 1:
        header += (["ΔJ&F"] if scored else []) + ["pixels equal to the baseline %", "mean IoU with the baseline"]
    for i, run in enumerate(runs):
        row, css = [run.label, run.folder], ["", ""]
        if scored:
            r = run.report
            row += [f"{r.jf:.2f}", f"{r.j:.2f}", f"{r.f:.2f}"]
            css += [_delta_class(v, b) if i else "" for v, b in ((r.jf, base.report.jf), (r.j, base.report.j),
                                                                   (r.f, base.report.f))]
        if len(runs) > 1:
            c = run.comparison
            if scored:
                row.append(f"{run.report.jf - base.report.jf:+.2f}")
                css.append(_delta_class(run.report.jf, base.report.jf) if i else "")
            row += [f"{100 * c.overall_agreement:.3f}", f"{c.overall_iou:.4f}"]
            css += ["worse" if i and c.overall_agreement < 1 else "", ""]
        rows.append(row)
        classes.append(css)
    note = (f'<p class="note">Ground truth: {esc(gt)}; J&amp;F convention: {esc(base.report.convention)}.'
            + (" Runs compared with the first (the baseline): red is worse, green better." if len(runs) > 1 else "")
            + "</p>") if scored else '<p class="note">No ground truth given: the runs against the first only.</p>'
    return "<h2>Summary</h2>" + table(header, rows, classes) + note


def _agreement_table(runs: List[EvalRun], name: str) -> str:
    """Per run: how much of the sequence's masks equal the baseline's."""
    rows, classes = [], []
    for run in runs[1:]:
        c = run.comparison
        rows.append([run.label, f"{100 * c.agreement[name]:.3f}", f"{c.mean_iou[name]:.4f}", f"{c.min_iou[name]:.4f}"])
        classes.append(["", "worse" if c.agreement[name] < 1 else "same", "", ""])
    return table(["run against the baseline", "pixels equal %", "mean IoU", "worst frame IoU"], rows, classes)


def _sequence_table(runs: List[EvalRun], name: str) -> str:
    """Rows: the sequence's mean, then each object; per run J&F, J, F."""
    header = ["object"] + [f"{h} {run.label}" if len(runs) > 1 else h for run in runs for h in ("J&F", "J", "F")]
    base = runs[0].report.sequences[name]
    objects = list(base)
    rows, classes = [], []
    for key in ["mean"] + objects:
        row, css = [key if key == "mean" else f"object {key}"], [""]
        for i, run in enumerate(runs):
            values = _jf(run.report, name, key)
            reference = _jf(runs[0].report, name, key)
            row += [f"{v:.2f}" for v in values]
            css += [_delta_class(v, b) if i else "" for v, b in zip(values, reference)]
        rows.append(row)
        classes.append(css)
    return table(header, rows, classes)


def _jf(report: Report, name: str, key):
    """(J&F, J, F) 0-100 of a sequence ('mean') or one of its objects."""
    if key == "mean":
        j, f = report.sequence_means(name)
    else:
        result = report.sequences[name][key]
        j, f = result.j_mean, result.f_mean
    return (j + f) / 2, j, f


def _curve(runs: List[EvalRun], frames: List[str], name: str) -> str:
    if len(runs) == 1:
        curves = per_frame_j(runs[0].report, frames, name)
        series = {f"object {o}": c for o, c in curves.items()}
        if len(curves) > 1:
            series["mean"] = mean_curve(curves)
    else:
        series = {run.label: mean_curve(per_frame_j(run.report, frames, name)) for run in runs}
    data = j_curve(frames, series, f"{name}: J per frame")
    return image(data, f"J per frame of {name}", caption="J (IoU with the ground truth) on each scored frame")


def _videos(work: str, runs: List[EvalRun], name: str) -> str:
    """hmmn-run's overlays of the sequence, copied into media/ and played from there."""
    found = []
    for i, run in enumerate(runs):
        files = overlay_files(run.folder, name)
        if files is None:
            continue
        target = f"media/{i}_{name}.mp4"
        shutil.copyfile(files[0], os.path.join(work, target))
        poster = None
        if files[1]:
            poster = f"media/{i}_{name}.png"
            shutil.copyfile(files[1], os.path.join(work, poster))
        found.append(video(target, poster, f"{run.label}: hmmn-run's overlay"))
    return "<div>" + "".join(found) + "</div>" if found else ""


def _worst(runs: List[EvalRun], gt: str, frames: List[str], name: str) -> str:
    figures = []
    for run in runs:
        curve = mean_curve(per_frame_j(run.report, frames, name))
        for frame, j in worst_frames(frames, curve, WORST):
            data = thumbnail(gt, run.folder, name, frame, "prediction" if len(runs) == 1 else run.label)
            figures.append(image(data, f"{name} {frame}", "thumb",
                                 f"{run.label}: frame {os.path.splitext(frame)[0]}, J {j:.1f}"))
    if not figures:
        return ""
    return f"<h3>Worst frames</h3>{''.join(figures)}"

