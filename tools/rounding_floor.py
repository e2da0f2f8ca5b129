"""How far does hmmn_ref move from itself when a video's frames move by an invisible amount?

    python tools/rounding_floor.py VIDEO --mask FIRST.png --frames 31 [--weights W.pth] \
        [--capacity S] [--device cuda] [--compare OUT_TORCH/vtest OUT_ORT/vtest]

Runs `hmmn_ref.run_video` (free-running, the public protocol) on the first `--frames` frames,
then again on the same frames moved by at most `--noise` (default 1e-6, 1/4000 of a grey
level), and prints how many pixels' masks agree. That is the floor for any backend comparison
with these weights on this video: two FP32 implementations that round differently cannot be
expected to agree better than the reference agrees with itself. With `--compare`, hmmn-run
output folders (one PNG per frame, named like `00001.png`) are set against the reference and
against each other on the same frames. Without `--weights` the built-in mobile model runs
(`--config small`: the small one). `--capacity S` runs the runtime's protocol instead (torch backend, S slots: what hmmn-run does), whose memory
stays bounded on long videos; `--device cuda` runs either on a GPU, in true FP32.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

import numpy as np
import torch

import hmmn_ref
from hmmn_ref import protocol
from hmmn_ref.media import read_frames, read_mask
from hmmn_ref.video import object_labels
from hmmn_deploy.evaluate.davis import read_labels
from hmmn_deploy.runtime import Session
from hmmn_deploy.runtime.backends import exact_fp32
from hmmn_deploy.models import ModelChoice, load_model, resolve_weights


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    """a, b: label maps [T, H, W] -> 'all-pixel % (worst frame %)'."""
    per_frame = (a == b).reshape(len(a), -1).mean(1)
    return f"{(a == b).mean() * 100:.3f}% (worst frame {per_frame.min() * 100:.3f}%)"


def read_run(folder: str, names: List[str]) -> np.ndarray:
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise SystemExit(f"{folder}: no {missing[0]} (give the sequence folder of an hmmn-run output)")
    return np.stack([read_labels(os.path.join(folder, n)) for n in names])


def run_labels(model, frames: torch.Tensor, mask: np.ndarray, args, device: torch.device) -> np.ndarray:
    """frames float [T, 3, H, W] in [0, 1] -> label maps [T-1, H, W] of frames 1..T-1."""
    if args.capacity is None:
        ids = np.array([0] + object_labels(mask))
        first_mask = torch.from_numpy(mask.astype(np.int64)).to(device)
        with exact_fp32(device):
            logits = hmmn_ref.run_video(model, frames.to(device), first_mask, args.mem_every)
        return ids[logits.argmax(1).numpy()]
    session = Session.from_model(model, "fp32", args.mem_every, args.capacity, device=str(device))
    state = session.start(frames[0].to(device), mask)
    return np.stack([session.step(state, frame.to(device)).labels for frame in frames[1:]])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("video", help="a video file or a folder of frames")
    p.add_argument("--mask", required=True, help="the first frame's label PNG")
    p.add_argument("--frames", type=int, default=31, help="frames to run, the first included")
    p.add_argument("--weights", help="a checkpoint (default: the built-in mobile model; --config small: the small one)")
    p.add_argument("--config", help="paper, small or mobile (default: paper with --weights)")
    p.add_argument("--mem-every", type=int, default=protocol.DEFAULT_MEM_EVERY)
    p.add_argument("--noise", type=float, default=1e-6, help="largest change of a frame value (0..1 scale)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--capacity", type=int, help="run the runtime's protocol (torch backend, this many 1/16 slots, "
                   "the oldest non-first replaced) instead of hmmn_ref's, whose memory grows without bound")
    p.add_argument("--device", default="cpu", help="where the model runs: cpu or cuda (true FP32, no TF32)")
    p.add_argument("--compare", nargs="*", default=[], help="hmmn-run sequence folders to set beside it")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config, weights, description = resolve_weights(ModelChoice(weights=args.weights, config=args.config))
    device = torch.device(args.device)
    model = load_model(config, weights).to(device)
    frames = torch.from_numpy(read_frames(args.video, args.frames)).permute(0, 3, 1, 2).float() / 255.0
    mask, _ = read_mask(args.mask)
    print(f"model: {description} on {device}; {len(frames)} frames of {tuple(frames.shape[-2:])}, "
          f"{len(object_labels(mask))} objects", file=sys.stderr)
    moved = frames + (torch.rand(frames.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) * args.noise
    reference = run_labels(model, frames, mask, args, device)
    itself = run_labels(model, moved, mask, args, device)
    name = "hmmn_ref" if args.capacity is None else f"torch backend (capacity {args.capacity})"
    print(f"frames 1..{len(frames) - 1}, pixels whose masks agree:")
    print(f"  {name} vs itself on frames moved by +-{args.noise:g}: {agreement(reference, itself)}")
    names = [f"{t:05d}.png" for t in range(1, len(frames))]
    runs = {folder: read_run(folder, names) for folder in args.compare}
    for folder, labels in runs.items():
        print(f"  {name} vs {folder}: {agreement(reference, labels)}")
    folders = list(runs)
    for i, a in enumerate(folders):
        for b in folders[i + 1 :]:
            print(f"  {a} vs {b}: {agreement(runs[a], runs[b])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
