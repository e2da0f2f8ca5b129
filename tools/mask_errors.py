"""Which way masks go wrong: the pixels a model adds to its objects and the pixels it misses, frame by frame.

    python tools/mask_errors.py run --gt ../shared/data/box --pred OUT [--block 30]
    python tools/mask_errors.py photo [--weights W.pth --config mobile] [--seeds 2000 2019] [--frames 6] [--size 240x320]

`run`: an hmmn-run output folder against DAVIS ground truth; for each sequence, per block of
`--block` frames, the mean per frame of the ground truth's object pixels, the pixels added (labelled
an object the ground truth does not give them) and the pixels missed (an object's pixels labelled
otherwise). `photo`: a model (default the built-in mobile one) on videos made of photos
(demo/photo_clips.py, the training clips of tools/train_mobile.py) through hmmn_ref.run_video, per
frame index, averaged over the seeds. Added above missed: the masks spread; below: they shrink. A
correction trained where the masks shrink learns to grow them (docs/mobile_model.md, "Why the
correction hurts").
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Sequence, Tuple

import numpy as np

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # tools/train_mobile.py: the photo videos' predictions


def added_and_missed(pred: np.ndarray, gt: np.ndarray) -> Tuple[int, int, int]:
    """Label maps [H, W] -> (the ground truth's object pixels, pixels added, pixels missed). A pixel
    given the wrong object counts as both added and missed."""
    wrong = pred != gt
    return int((gt > 0).sum()), int(((pred > 0) & wrong).sum()), int(((gt > 0) & wrong).sum())


def table(rows: Sequence[Tuple[str, np.ndarray]]) -> str:
    """(label, [object pixels, added, missed] per frame) rows -> aligned text, with added / missed."""
    lines = [f"{'frames':>14} {'objects':>9} {'added':>8} {'missed':>8} {'added/missed':>13}"]
    for label, (objects, added, missed) in rows:
        ratio = f"{added / missed:.2f}" if missed else "-"
        lines.append(f"{label:>14} {objects:9.0f} {added:8.0f} {missed:8.0f} {ratio:>13}")
    return "\n".join(lines)


def run_errors(gt: str, pred: str, block: int) -> str:
    from hmmn_deploy.evaluate.davis import annotations_root, check_gt, list_sequences, load_pairs

    check_gt(gt)
    gt = annotations_root(gt)
    out = []
    for name in list_sequences(gt, None):
        preds, gts = load_pairs(gt, pred, name)
        counts = np.array([added_and_missed(p, g) for p, g in zip(preds, gts)], dtype=np.float64)
        rows = [(f"{s}-{min(s + block, len(counts)) - 1}", counts[s:s + block].mean(0)) for s in range(0, len(counts), block)]
        out.append(f"{name}: {len(counts)} frames, mean per frame\n{table(rows)}")
    return "\n\n".join(out)


def photo_errors(weights: str, config: str, seeds: Sequence[int], frames: int, size: Tuple[int, int]) -> str:
    import hmmn_ref
    from train_mobile import photo_library, photo_video_predictions  # the clips the correction trains on

    model = hmmn_ref.load_weights(hmmn_ref.HMMN(hmmn_ref.get_config(config)), weights).eval()
    photos = photo_library()
    counts = np.zeros((frames, 3))
    for seed in seeds:
        labels, preds = photo_video_predictions(model, photos, seed, frames, *size)
        for t in range(1, frames):
            counts[t] += added_and_missed(preds[t], labels[t])
    rows = [(f"frame {t}", counts[t] / len(seeds)) for t in range(1, frames)]
    return f"{len(seeds)} photo videos, {frames} frames at {size[0]}x{size[1]}, mean per video\n{table(rows)}"


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    run = sub.add_parser("run", help="an hmmn-run output against DAVIS ground truth")
    run.add_argument("--gt", required=True, help="DAVIS root (or its Annotations/480p)")
    run.add_argument("--pred", required=True, help="hmmn-run's output folder")
    run.add_argument("--block", type=int, default=30, help="frames per row (default 30)")
    photo = sub.add_parser("photo", help="a model on videos made of photos")
    photo.add_argument("--weights", help="default: the built-in mobile model")
    photo.add_argument("--config", default="mobile")
    photo.add_argument("--seeds", type=int, nargs=2, default=(2000, 2019), metavar=("FIRST", "LAST"))
    photo.add_argument("--frames", type=int, default=6)
    photo.add_argument("--size", default="240x320", help="HxW")
    photo.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.mode == "run":
        if args.block < 1:
            p.error("--block must be at least 1")
        from hmmn_deploy.evaluate.davis import EvaluationError

        try:
            print(run_errors(args.gt, args.pred, args.block))
        except EvaluationError as exc:
            print(f"mask_errors.py: {exc}", file=sys.stderr)
            return 2
        return 0
    import torch

    from hmmn_deploy import demo
    from hmmn_ref.shell import parse_size

    torch.set_num_threads(args.threads)
    if args.frames < 2 or args.seeds[1] < args.seeds[0]:
        p.error("--frames must be at least 2 and --seeds FIRST LAST in order")
    weights = args.weights or demo.BUILT_IN["mobile"].weights
    print(photo_errors(weights, args.config, range(args.seeds[0], args.seeds[1] + 1), args.frames, parse_size(args.size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
