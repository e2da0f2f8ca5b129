"""hmmn-bench's report plots (matplotlib, PNG bytes), drawn from the JSON result hmmn-bench prints."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..core.report_page import figure_png, pyplot


def fps_bars(runs: List[dict], ratios: Dict[str, float]) -> bytes:
    """Frames per second per run, each bar labelled with its speed-up over the baseline."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(runs) + 1.2))
    names = [r["name"] for r in runs]
    fps = [r.get("fps") or 0.0 for r in runs]
    colours = ["tab:gray" if n not in ratios and ratios else "tab:blue" for n in names]
    y = np.arange(len(runs))[::-1]
    ax.barh(y, fps, color=colours)
    for yi, name, value in zip(y, names, fps):
        label = f"{value:.2f} frames/s" + (f"  ({ratios[name]:.2f}x the baseline)" if name in ratios else "")
        ax.text(value, yi, " " + label, va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("frames per second (median frame)")
    ax.set_xlim(0, max(fps + [1e-9]) * 1.6)
    ax.set_title("frames per second against the baseline", fontsize=10)
    return figure_png(fig)


def stage_bars(runs: List[dict]) -> bytes:
    """Each run's median frame split into its stages' medians (stacked bars, ms)."""
    plt = pyplot()
    staged = [r for r in runs if r.get("stages")]
    stages: List[str] = []
    for r in staged:
        stages += [s for s in r["stages"] if s not in stages]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(staged) + 1.6))
    y = np.arange(len(staged))[::-1]
    left = np.zeros(len(staged))
    for stage in stages:
        widths = np.array([r["stages"].get(stage, {}).get("median_ms", 0.0) for r in staged])
        ax.barh(y, widths, left=left, label=stage)
        left += widths
    ax.set_yticks(y, [r["name"] for r in staged], fontsize=8)
    ax.set_xlabel("ms per frame (median of each stage)")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.set_title("time per stage", fontsize=10)
    return figure_png(fig)


def peak_bars(shares: Dict[str, Dict[str, float]]) -> bytes:
    """{run: {stage: % of the peak}} as grouped bars."""
    plt = pyplot()
    runs = list(shares)
    stages: List[str] = []
    for per_stage in shares.values():
        stages += [s for s in per_stage if s not in stages]
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(stages))
    for i, run in enumerate(runs):
        ax.bar(x + i * width, [shares[run].get(s, 0.0) for s in stages], width, label=run)
    ax.set_xticks(x + width * (len(runs) - 1) / 2, stages, fontsize=8)
    ax.set_ylabel("% of the machine's peak")
    ax.set_title("rate achieved per stage, against the peak for its precision", fontsize=10)
    ax.legend(fontsize=7)
    return figure_png(fig)



def scaling_curves(scaling: dict) -> bytes:
    """The scaling plot hmmn-bench --scaling writes (bench/scaling.py), as PNG bytes."""
    from .scaling import scaling_figure

    return figure_png(scaling_figure(scaling))
