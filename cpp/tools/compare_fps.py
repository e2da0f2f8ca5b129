"""Frames per second of hmmn_segment (libhmmn) beside the Python runtime on the same graphs.

    .venv/bin/python cpp/tools/compare_fps.py --artifacts DIR [--frames 12] [--repeats 3]

Both segment the same generated video (PNG frames, at the export's size) with ONNX Runtime on
the CPU, default threads; both count start() and every step() (not file reading or writing):
fps = (frames - 1) / seconds, as hmmn-run reports. Runs alternate; the median is printed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime
from PIL import Image

from hmmn_deploy.demo.synthetic import make_video
from hmmn_deploy.runtime import Session
from hmmn_ref.media import davis_palette

HERE = pathlib.Path(__file__).resolve().parent


def python_fps(artifacts: str, frames, first) -> float:
    session = Session.open(artifacts, "onnxruntime")
    started = time.perf_counter()
    state = session.start(frames[0], first)
    for frame in frames[1:]:
        session.step(state, frame)
    return (len(frames) - 1) / (time.perf_counter() - started)


def cpp_fps(segment: str, artifacts: str, folder: pathlib.Path, mask: pathlib.Path, out: pathlib.Path) -> float:
    done = subprocess.run([segment, "--artifacts", artifacts, "--frames", str(folder), "--mask", str(mask),
                           "--out", str(out)], capture_output=True, text=True, check=True)
    return float(re.search(r"([0-9.eE+-]+) frames per second", done.stdout).group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", required=True)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--segment", default=str(HERE.parent / "build" / "hmmn_segment"))
    args = p.parse_args()
    record = json.loads((pathlib.Path(args.artifacts) / "manifest.json").read_text())
    height, width = record["input"]["height"], record["input"]["width"]
    frames, labels = make_video(3, args.frames, height, width)
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "frames").mkdir()
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(root / "frames" / f"{t:05d}.png")
        mask = Image.fromarray(labels[0])
        mask.putpalette(davis_palette())
        mask.save(root / "first.png")
        runs = {"python": [], "cpp": []}
        for r in range(args.repeats):
            runs["python"].append(python_fps(args.artifacts, list(frames), labels[0]))
            runs["cpp"].append(cpp_fps(args.segment, args.artifacts, root / "frames", root / "first.png", root / f"out{r}"))
    model = record["model"]["config"]["name"]
    print(f"{model} model, {height}x{width}, {args.frames} frames, {len(np.unique(labels[0])) - 1} object(s), "
          f"onnxruntime {onnxruntime.__version__} on the CPU")
    for name, values in runs.items():
        print(f"  {name:7s} median {statistics.median(values):8.4g} frames/s  (runs: "
              + ", ".join(f"{v:.4g}" for v in values) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
