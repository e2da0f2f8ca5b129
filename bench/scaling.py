"""Latency and memory against memory slots, objects and frame size: a table and a PNG plot.

- slots: the match graph alone (the only stage whose work grows with the bank), timed at
  T = 1, 2, 4, ... capacity on random keys, beside the bank's bytes at that T;
- objects: whole frames of a generated clip with 1, 2, 4, 8 objects;
- sizes: whole frames at each of --scaling-sizes.
"""

from __future__ import annotations

import os
import time
from typing import Callable, List

import numpy as np
import torch

from hmmn_ref.sample_video import make_sample_video
from hmmn_ref.shell import detail

from ..core.contracts import frame_dims
from ..runtime.backends import TORCH_DTYPES
from ..models import ModelChoice, open_session
from .runs import SessionRun
from .timing import stats_ms

FRAMES_PER_POINT = 3  # timed frames per point, after one warm-up frame


def _choice(args) -> ModelChoice:
    return ModelChoice(backend=args.backend[0], precision=(args.precision or [None])[0], config=args.config,
                       weights=args.weights, random_weights=args.random_weights, artifacts=args.artifacts,
                       mem_every=args.mem_every, capacity=args.capacity, threads=args.threads, cache=args.cache,
                       device=args.device)


def _frames_point(session, size, objects: int) -> dict:
    frames, labels = make_sample_video(num_frames=FRAMES_PER_POINT + 2, height=size[0], width=size[1],
                                       num_objects=objects, seed=1)
    run = SessionRun("scaling", session, "", "", None)
    run.start(frames[0], labels[0])
    for i, frame in enumerate(frames[1:]):
        run.step(frame, timed=i >= 1)
    return {"median_ms": stats_ms(run.frame_seconds)["median_ms"], "state_mb": round(run.state_mb(), 1)}


def _match_point(session, size, objects: int, slots: int) -> dict:
    dims = frame_dims(objects, slots, *size)
    spec = session.specs["match"]
    gen = torch.Generator().manual_seed(0)

    def make(s):
        shape = s.shape(dims)
        dtype = TORCH_DTYPES[s.dtype]
        if s.name == "slot_age":
            return torch.arange(slots - 1, -1, -1, dtype=dtype).to(session.device)
        if not dtype.is_floating_point:
            return torch.zeros(shape, dtype=dtype, device=session.device)
        return torch.randn(shape, generator=gen).to(dtype).to(session.device)

    inputs = {s.name: make(s) for s in spec.inputs}
    outputs = {s.name: torch.zeros(s.shape(dims), dtype=TORCH_DTYPES[s.dtype], device=session.device)
               for s in spec.outputs}
    times = []
    for i in range(FRAMES_PER_POINT + 1):
        t0 = time.perf_counter()
        session.backend.run("match", inputs, outputs)
        session.backend.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    bank = sum(v.numel() * v.element_size() for k, v in inputs.items() if k.startswith("mem_") or k == "tracks")
    return {"median_ms": stats_ms(times)["median_ms"], "bank_mb": round(bank / 2**20, 2)}


def run_scaling(args, log: Callable[[str], None]) -> dict:
    session, _ = open_session(_choice(args), args.size, log)
    capacity = session.capacity
    slot_points = sorted({1, 2, 4, 8, 16, 32, capacity} & set(range(1, capacity + 1)))
    sizes = args.scaling_sizes or [(args.size[0] // 2, args.size[1] // 2), tuple(args.size)]
    result = {"slots": {}, "objects": {}, "sizes": {}}
    for t in slot_points:
        result["slots"][t] = _match_point(session, args.size, args.objects, t)
        detail(log, f"  scaling: match with {t} slots: {result['slots'][t]}")
    for n in (1, 2, 4, 8):
        result["objects"][n] = _frames_point(session, args.size, n)
        detail(log, f"  scaling: {n} objects: {result['objects'][n]}")
    for size in sizes:
        key = f"{size[0]}x{size[1]}"
        result["sizes"][key] = _frames_point(session, size, args.objects)
        detail(log, f"  scaling: {key}: {result['sizes'][key]}")
    os.makedirs(args.scaling, exist_ok=True)
    write_table(result, os.path.join(args.scaling, "scaling.md"))
    result["plot"] = write_plot(result, os.path.join(args.scaling, "scaling.png"), log)
    return result


def write_table(result: dict, path: str) -> None:
    lines: List[str] = ["| memory slots | match ms | bank MB |", "| --- | --- | --- |"]
    lines += [f"| {t} | {p['median_ms']:.1f} | {p['bank_mb']} |" for t, p in result["slots"].items()]
    lines += ["", "| objects | frame ms | state MB |", "| --- | --- | --- |"]
    lines += [f"| {n} | {p['median_ms']:.1f} | {p['state_mb']} |" for n, p in result["objects"].items()]
    lines += ["", "| size | frame ms | state MB |", "| --- | --- | --- |"]
    lines += [f"| {s} | {p['median_ms']:.1f} | {p['state_mb']} |" for s, p in result["sizes"].items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_plot(result: dict, path: str, log) -> str:
    fig = scaling_figure(result)
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    log(f"scaling table and plot in {os.path.dirname(path)}")
    return path


def scaling_figure(result: dict):
    """Latency (solid) and memory (dashed) against slots, objects and sizes: a matplotlib figure
    (also drawn by hmmn-bench --report, from the JSON result)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (("slots", "memory slots T", "match ms", "bank_mb", "bank MB"),
              ("objects", "objects", "frame ms", "state_mb", "state MB"),
              ("sizes", "frame size", "frame ms", "state_mb", "state MB"))
    for ax, (key, xlabel, ylabel, mem_key, mem_label) in zip(axes, panels):
        xs = list(result[key])
        positions = np.arange(len(xs))
        ax.plot(positions, [result[key][x]["median_ms"] for x in xs], "o-", color="tab:blue")
        ax.set_xticks(positions, [str(x) for x in xs])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, color="tab:blue")
        twin = ax.twinx()
        twin.plot(positions, [result[key][x][mem_key] for x in xs], "s--", color="tab:orange")
        twin.set_ylabel(mem_label, color="tab:orange")
    fig.tight_layout()
    return fig
