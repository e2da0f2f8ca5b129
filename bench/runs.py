"""The things a benchmark times, one frame at a time so that several can be interleaved:
a runtime Session on a backend (per-stage timers), and the baseline, hmmn_ref's eager loop."""

from __future__ import annotations

import time
from typing import List, Optional

import numpy as np
import torch

import hmmn_ref
from hmmn_ref import matching, protocol

from ..runtime.backends import exact_fp32
from .timing import StageTimer, stats_ms


class SessionRun:
    """A Session (one backend, one precision) on one video; times whole steps and stages."""

    def __init__(self, name: str, session, backend: str, precision: str, graphs: Optional[str]) -> None:
        """session: opened with `timer=StageTimer()` for per-stage times (None: whole steps only)."""
        self.name, self.backend, self.precision, self.graphs = name, backend, precision, graphs
        self.session = session
        self.timer: Optional[StageTimer] = session.timer
        self.state = None
        self.frame_seconds: List[float] = []
        self.slots: List[int] = []  # 1/16 slots read per timed frame (for FLOPs)

    def start(self, frame: np.ndarray, mask: np.ndarray) -> None:
        self.state = self.session.start(frame, mask)

    def step(self, frame: np.ndarray, timed: bool) -> np.ndarray:
        if self.timer is not None:
            self.timer.enabled = timed
        slots = self.state.groups[0].slots_read
        t0 = time.perf_counter()
        result = self.session.step(self.state, frame)  # ends with a device synchronisation
        elapsed = time.perf_counter() - t0
        if self.timer is not None:
            self.timer.frame_done()
        if timed:
            self.frame_seconds.append(elapsed)
            self.slots.append(slots)
        return result.labels

    def state_mb(self) -> float:
        return sum(b.numel() * b.element_size() for b in self.state.buffers()) / 2**20

    def stages(self) -> dict:
        return {} if self.timer is None else self.timer.stage_stats()


class BaselineRun:
    """hmmn_ref.video_steps: the public evaluation loop in eager PyTorch (what the public code
    runs), on the same frames."""

    backend, precision, graphs = "hmmn_ref (eager)", "fp32", None

    def __init__(self, model: hmmn_ref.HMMN, frames: np.ndarray, mask: np.ndarray, mem_every: int,
                 device: str = "cpu", reads: matching.Reads = matching.READS) -> None:
        """reads: the formulation of the memory reads the loop runs (bench/public_matching.py's
        READS: the public code's)."""
        self.name = "baseline: hmmn_ref.run_video"
        self.device = torch.device(device)
        model = model.to(self.device)
        model.reads = reads
        video = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        self.ids = np.array([0] + hmmn_ref.object_labels(mask))
        self._steps = hmmn_ref.video_steps(model, video, torch.from_numpy(mask.astype(np.int64)).to(self.device),
                                           mem_every)
        self.frame_seconds: List[float] = []
        self.slots: List[int] = []
        self.mem_every = mem_every
        self._t = 0

    def start(self, frame: np.ndarray, mask: np.ndarray) -> None:
        pass  # the generator memorises frame 0 on its first step

    def step(self, frame: np.ndarray, timed: bool) -> np.ndarray:
        t0 = time.perf_counter()
        with exact_fp32(self.device):  # the reference in true FP32 on a GPU too
            _, logits = next(self._steps)
        labels = logits.argmax(0)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        labels = labels.cpu().numpy()
        elapsed = time.perf_counter() - t0
        if timed:
            self.frame_seconds.append(elapsed)
            frame = self._t + 1  # reads the frames kept before frame-1, and frame-1
            self.slots.append(sum(protocol.is_kept(f, 0, self.mem_every) for f in range(frame - 1)) + 1)
        self._t += 1
        return self.ids[labels].astype(np.uint8)

    def state_mb(self) -> Optional[float]:
        return None  # the reference loop keeps Python lists of tensors; not accounted

    def stages(self) -> dict:
        return {}


def summarise(run, flop_model=None) -> dict:
    """One entry of the JSON 'runs' list."""
    frame = stats_ms(run.frame_seconds)
    entry = {"name": run.name, "backend": run.backend, "precision": run.precision, **frame,
             "fps": round(1000.0 / frame["median_ms"], 4) if frame else None,
             "peak_mem_mb": None if run.state_mb() is None else round(run.state_mb(), 1),
             "stages": run.stages()}
    plan = getattr(getattr(getattr(run, "session", None), "backend", None), "plan", None)  # OpenVINO's: graph -> precision
    if plan:
        entry["stage_precisions"] = dict(plan)
    if flop_model is not None and run.frame_seconds:
        per_frame = float(np.mean([flop_model.frame(s) for s in run.slots]))
        entry["gflop_per_frame"] = round(per_frame / 1e9, 2)
        entry["achieved_gflops"] = round(per_frame / 1e9 / (frame["median_ms"] / 1000.0), 2)
        for stage, stats in entry["stages"].items():
            flops = flop_model.stages.get(stage)
            if stage == "match":
                flops = float(np.mean([flop_model.match(s) for s in run.slots]))
            if flops and stats.get("median_ms"):
                stats["gflop"] = round(flops / 1e9, 3)
                stats["achieved_gflops"] = round(flops / 1e9 / (stats["median_ms"] / 1000.0), 2)
    return entry
