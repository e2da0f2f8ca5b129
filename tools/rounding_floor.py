"""How far does hmmn_ref move from itself when a video's frames move by an invisible amount?

    python tools/rounding_floor.py VIDEO --mask FIRST.png --frames 31 [--weights W.pth] \
        [--compare OUT_TORCH/vtest OUT_ORT/vtest]

Runs `hmmn_ref.run_video` (free-running, the public protocol) on the first `--frames` frames,
then again on the same frames moved by at most `--noise` (default 1e-6, 1/4000 of a grey
level), and prints how many pixels' masks agree. That is the floor for any backend comparison
with these weights on this video: two FP32 implementations that round differently cannot be
expected to agree better than the reference agrees with itself. With `--compare`, hmmn-run
output folders (one PNG per frame, named like `00001.png`) are set against the reference and
against each other on the same frames. Without `--weights` the demo model runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

import numpy as np
import torch

import hmmn_ref
from hmmn_ref.media import read_frames, read_mask
from hmmn_ref.video import object_labels
from hmmn_deploy.evaluate.davis import read_labels
from hmmn_deploy.segment.models import ModelChoice, load_model, resolve_weights


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    """a, b: label maps [T, H, W] -> 'all-pixel % (worst frame %)'."""
    per_frame = (a == b).reshape(len(a), -1).mean(1)
    return f"{(a == b).mean() * 100:.3f}% (worst frame {per_frame.min() * 100:.3f}%)"


def read_run(folder: str, names: List[str]) -> np.ndarray:
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise SystemExit(f"{folder}: no {missing[0]} (give the sequence folder of an hmmn-run output)")
    return np.stack([read_labels(os.path.join(folder, n)) for n in names])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("video", help="a video file or a folder of frames")
    p.add_argument("--mask", required=True, help="the first frame's label PNG")
    p.add_argument("--frames", type=int, default=31, help="frames to run, the first included")
    p.add_argument("--weights", help="a checkpoint (default: the demo model)")
    p.add_argument("--config", help="paper or small (default: paper with --weights)")
    p.add_argument("--mem-every", type=int, default=5)
    p.add_argument("--noise", type=float, default=1e-6, help="largest change of a frame value (0..1 scale)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compare", nargs="*", default=[], help="hmmn-run sequence folders to set beside it")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config, weights, description = resolve_weights(ModelChoice(weights=args.weights, config=args.config))
    model = load_model(config, weights)
    frames = torch.from_numpy(read_frames(args.video, args.frames)).permute(0, 3, 1, 2).float() / 255.0
    mask, _ = read_mask(args.mask)
    ids = np.array([0] + object_labels(mask))
    first_mask = torch.from_numpy(mask.astype(np.int64))
    print(f"model: {description}; {len(frames)} frames of {tuple(frames.shape[-2:])}, {len(ids) - 1} objects",
          file=sys.stderr)
    reference = ids[hmmn_ref.run_video(model, frames, first_mask, args.mem_every).argmax(1).numpy()]
    moved = frames + (torch.rand(frames.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) * args.noise
    itself = ids[hmmn_ref.run_video(model, moved, first_mask, args.mem_every).argmax(1).numpy()]
    print(f"frames 1..{len(frames) - 1}, pixels whose masks agree:")
    print(f"  hmmn_ref vs hmmn_ref on frames moved by +-{args.noise:g}: {agreement(reference, itself)}")
    names = [f"{t:05d}.png" for t in range(1, len(frames))]
    runs = {folder: read_run(folder, names) for folder in args.compare}
    for folder, labels in runs.items():
        print(f"  hmmn_ref vs {folder}: {agreement(reference, labels)}")
    folders = list(runs)
    for i, a in enumerate(folders):
        for b in folders[i + 1 :]:
            print(f"  {a} vs {b}: {agreement(runs[a], runs[b])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
