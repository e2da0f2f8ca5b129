"""Frames per second when other processes want the same cores: ONNX Runtime with its workers
spinning (its own default) or sleeping (this project's), and OpenVINO, each beside 0, 1, ... busy
processes. The figures behind the runtime's thread defaults (docs/openvino.md).

    .venv/bin/python tools/shared_cores.py [--artifacts EXPORT] [--size 240x320] [--frames 12]
                                           [--loads 0 1 2] [--threads 2]

Without --artifacts the built-in model is exported once into the cache (as hmmn-run does).
Each busy process is a Python loop at normal priority (what a second job, a browser or a video
decoder looks like to the scheduler). Runs alternate between the variants, so the machine's own
drift hits them alike; the table gives each variant's median frames per second and the spread
(min-max of its frames).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time


def busy() -> None:
    while True:
        pass


VARIANTS = {  # name -> (backend, Session.open keyword arguments)
    "onnxruntime, workers spin (ORT's default)": ("onnxruntime", {"spin_wait": True}),
    "onnxruntime, workers sleep (default here)": ("onnxruntime", {"spin_wait": False}),
    "openvino fp32, threads pinned (OpenVINO's default)": ("openvino", {"compute": "fp32", "pin_threads": True}),
    "openvino fp32, not pinned (default here)": ("openvino", {"compute": "fp32", "pin_threads": False}),
}


def frame_times(session, frames, mask) -> list:
    state = session.start(frames[0], mask)
    times = []
    for frame in frames[1:]:
        t0 = time.perf_counter()
        session.step(state, frame)
        times.append(time.perf_counter() - t0)
    return times[1:]  # the first step compiles / allocates


def main(argv=None) -> int:
    from hmmn_ref.shell import parse_size
    from hmmn_deploy.demo.synthetic import make_video
    from hmmn_deploy.models import ModelChoice, open_session
    from hmmn_deploy.runtime import Session

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", help="an hmmn-export folder (default: the built-in model, exported once)")
    p.add_argument("--size", type=parse_size, default=(240, 320))
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2], help="busy processes beside the run")
    p.add_argument("--threads", type=int, default=None, help="the runtime's threads (default: the backends')")
    p.add_argument("--rounds", type=int, default=2, help="alternations of the variants per load")
    args = p.parse_args(argv)

    folder = args.artifacts
    if folder is None:
        _, described = open_session(ModelChoice(backend="onnxruntime"), args.size, lambda m: print(m, file=sys.stderr))
        folder = described["graphs"]
    frames, labels = make_video(7, args.frames + 2, args.size[0], args.size[1])
    sessions = {name: Session.open(folder, backend, threads=args.threads, **kw) for name, (backend, kw) in VARIANTS.items()}
    print(f"{os.cpu_count()} CPUs, {args.size[0]}x{args.size[1]}, {args.frames} frames, threads "
          f"{args.threads or 'default'}, {folder}")
    print(f"| busy processes | {' | '.join(VARIANTS)} |")
    print("|---|" + "---|" * len(VARIANTS))
    for load in args.loads:
        workers = [multiprocessing.Process(target=busy, daemon=True) for _ in range(load)]
        for w in workers:
            w.start()
        try:
            per = {name: [] for name in VARIANTS}
            for _ in range(args.rounds):
                for name, session in sessions.items():
                    per[name] += frame_times(session, frames, labels[0])
        finally:
            for w in workers:
                w.terminate()
                w.join()
        cells = [f"{1 / statistics.median(t):.2f} fps ({1 / max(t):.2f}-{1 / min(t):.2f})" for t in per.values()]
        print(f"| {load} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
