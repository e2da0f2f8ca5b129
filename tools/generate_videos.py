"""Write generated videos with ground truth in the DAVIS layout (the demo model's data).

    python tools/generate_videos.py --out data/generated --split val --count 20 --frames 24 --size 96x128 \
        --copy-first-mask data/copy_first

`--copy-first-mask DIR` also writes the trivial baseline's predictions (every frame gets the
first frame's mask) in hmmn-run's layout, for hmmn-eval.

Seeds: video i of split 'train' has seed 1,000,000 + i (the training script draws its own
seeds >= 1,000,000 on the fly); 'val' videos have seed `--first-seed` + i (default 0), below
every training seed, so validation videos are never seen in training. One seed draws a
different scene at another size or length (the draws depend on both), so videos of one seed
at two sizes are not the same scene resized.

Validation seeds already used (pick others for a fresh set): 0-19, 100-105 (train_demo's
validation), 300-419, 900-919, 4242 (the demo clip), 5000-5019, 7000-7019, 13000-13019,
24000-24019 (docs/demo_model.md's table for stages 9 and 10), 24100-24119
(its varied videos), 40000-40019 (its table for stage 8),
41000-41003 (tests/segment/test_working_size.py), 700000-700005 and 700100-700102 (tests/demo/test_demo.py).
"""

from __future__ import annotations

import argparse
import sys

from hmmn_deploy.demo.synthetic import VARIETIES, write_davis

TRAIN_SEED_BASE = 1_000_000


def write_copy_first(root: str, out: str, names) -> None:
    """Predictions that repeat each video's first annotation on every frame."""
    import os
    import shutil

    for name in names:
        annotations = os.path.join(root, "Annotations", "480p", name)
        frames = sorted(os.listdir(annotations))
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for frame in frames:
            shutil.copyfile(os.path.join(annotations, frames[0]), os.path.join(out, name, frame))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="dataset root (JPEGImages/480p, Annotations/480p, ImageSets/2017)")
    p.add_argument("--split", choices=("train", "val"), default="val")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", default="96x128", help="HxW")
    p.add_argument("--variety", choices=sorted(VARIETIES), default="plain",
                   help="varied: add motion blur, a sweeping light and objects that leave and come back")
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first validation video")
    p.add_argument("--copy-first-mask", help="also write 'copy the first mask' predictions here")
    args = p.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    base = TRAIN_SEED_BASE if args.split == "train" else args.first_seed
    if args.split == "val" and base + args.count > TRAIN_SEED_BASE:
        p.error(f"validation seeds must stay below {TRAIN_SEED_BASE}")
    videos = [(f"{args.split}{i:04d}", base + i) for i in range(args.count)]
    write_davis(args.out, videos, args.frames, height, width, args.split, VARIETIES[args.variety])
    if args.copy_first_mask:
        write_copy_first(args.out, args.copy_first_mask, [name for name, _ in videos])
    kind = "" if args.variety == "plain" else f", {args.variety}"
    print(f"{args.count} videos of {args.frames} frames ({height}x{width}{kind}) in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
