"""Stage timers and statistics. CPU work is timed with a monotonic clock; CUDA work with device
events recorded on the stream the work runs on, read after the frame has finished."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np


# The parts of a runtime step, in the order they run.
STAGE_ORDER = ("upload", "encode_memory", "encode_query", "match", "decode", "bank_update", "download")


def stats_ms(samples_s: List[float]) -> Dict[str, float]:
    """Seconds -> {median, p90, p99, min, max, mean} in milliseconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {}
    return {"median_ms": round(float(np.median(ms)), 3), "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "min_ms": round(float(ms.min()), 3),
            "max_ms": round(float(ms.max()), 3), "mean_ms": round(float(ms.mean()), 3)}


class StageTimer:
    """`Session(..., timer=StageTimer())`: per-frame sums of each named section.

    A step may run a section several times (one `match` per object group); the frame's time
    of that section is their sum. Call `frame_done()` after each step. `capture(graph)` keeps
    copies of the next call's tensors of that graph (hmmn-bench --profile replays them)."""

    def __init__(self, stream=None) -> None:
        self.cuda = False  # set by attach(): the session's device
        self.stream = stream  # the backend's CUDA stream (TensorRT), else torch's current one
        self.frames: List[Dict[str, float]] = []  # per frame: section -> seconds
        self._current: Dict[str, float] = defaultdict(float)
        self._events: List[tuple] = []
        self.enabled = True
        self._capture: Optional[str] = None
        self.captured: Dict[str, dict] = {}  # graph -> {"inputs": ..., "outputs": ...}

    def attach(self, device) -> None:
        """Called by the Session that owns this timer: its device decides the clock."""
        self.cuda = getattr(device, "type", device) == "cuda"

    def capture(self, graph: str) -> None:
        self._capture = graph

    @contextlib.contextmanager
    def section(self, name: str, inputs=None, outputs=None):
        with self._timed(name):
            yield
        if name == self._capture and inputs is not None:
            self.captured[name] = {"inputs": {k: v.clone() for k, v in inputs.items()},
                                   "outputs": {k: v.clone() for k, v in outputs.items()}}
            self._capture = None

    @contextlib.contextmanager
    def _timed(self, name: str):
        if not self.enabled:
            yield
            return
        if self.cuda:
            import torch

            stream = self.stream or torch.cuda.current_stream()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            yield
            end.record(stream)
            self._events.append((name, start, end))
        else:
            t0 = time.perf_counter()
            yield
            self._current[name] += time.perf_counter() - t0

    def frame_done(self) -> Optional[Dict[str, float]]:
        if not self.enabled:
            return None
        if self.cuda:
            for name, start, end in self._events:
                end.synchronize()
                self._current[name] += start.elapsed_time(end) / 1000.0
            self._events = []
        frame, self._current = dict(self._current), defaultdict(float)
        self.frames.append(frame)
        return frame

    def stage_stats(self) -> Dict[str, Dict[str, float]]:
        seen = {n for f in self.frames for n in f}
        names = [n for n in STAGE_ORDER if n in seen] + sorted(seen - set(STAGE_ORDER))
        return {n: stats_ms([f.get(n, 0.0) for f in self.frames]) for n in names}
