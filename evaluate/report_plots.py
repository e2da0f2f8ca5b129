"""hmmn-eval's report plots (matplotlib, PNG bytes): J per frame of a sequence."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..core.report_page import figure_png, pyplot


def j_curve(frames: List[str], series: Dict[str, np.ndarray], title: str) -> bytes:
    """One line per entry of `series` (J 0-100 per scored frame, NaN where not counted)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    x = np.arange(len(frames))
    for label, curve in series.items():
        ax.plot(x, curve, marker="o" if len(frames) <= 40 else None, markersize=3, linewidth=1.4, label=label)
    ticks = x[:: max(1, len(x) // 12)]
    ax.set_xticks(ticks, [frames[i].rsplit(".", 1)[0] for i in ticks], rotation=45, fontsize=7)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("frame")
    ax.set_ylabel("J (IoU) %")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="lower left")
    return figure_png(fig)
