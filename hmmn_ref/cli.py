"""`hmmn-ref`: segment a video with the PyTorch reference model, and time it.

Without arguments it segments a built-in generated clip, so it runs on a fresh machine.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import List, Optional

import numpy as np
import torch

from . import media, protocol, shell
from .checkpoint import load_weights
from .config import CONFIGS, get_config
from .errors import Exit, UsageError
from .golden_init import fill_golden_weights
from .model import HMMN
from .sample_video import make_sample_video
from .shell import parse_size
from .video import object_labels, run_video

log = shell.Logger("hmmn-ref")


def build_parser():
    p = shell.parser("hmmn-ref", __doc__)
    p.add_argument("video", nargs="?", help="video file or folder of frames (default: a built-in generated clip)")
    p.add_argument("--mask", help="first-frame label PNG (palette or greyscale); required with VIDEO")
    p.add_argument("--weights", help="checkpoint, e.g. the published HMMN_weights.pth (default: random golden-fill)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="paper", help="model configuration")
    p.add_argument("--size", type=parse_size, help="generated clip size HxW (default 240x432)")
    p.add_argument("--frames", type=int, default=None, help="segment only the first N frames")
    p.add_argument("--mem-every", type=int, default=protocol.DEFAULT_MEM_EVERY)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("-o", "--out", default="hmmn_ref_out", help="output folder for the masks (default %(default)s)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    return shell.main(build_parser, segment, log, argv)


def segment(args) -> int:
    """Segment the video, write its masks, print the summary line (JSON) on standard output."""
    if args.threads:
        torch.set_num_threads(args.threads)
    frames, first_mask, palette, source = load_input(args)
    model = HMMN(get_config(args.config))
    if args.weights:
        load_weights(model, args.weights)
    else:
        fill_golden_weights(model)
        log("no --weights given: random golden-fill weights, masks are not meaningful")

    labels = object_labels(first_mask)
    num_frames, height, width = frames.shape[:3]
    log(f"{source}: {num_frames} frames {height}x{width}, {len(labels)} objects, "
        f"config {args.config}, {torch.get_num_threads()} threads")
    times: List[float] = []
    clock = [time.perf_counter()]

    def on_frame(t: int, total: int) -> None:
        now = time.perf_counter()
        times.append(now - clock[0])
        clock[0] = now
        log.detail(f"  frame {t}/{total - 1}: {times[-1] * 1000:.0f} ms")

    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    logits = run_video(model, video, torch.from_numpy(first_mask.astype(np.int64)),
                       mem_every=args.mem_every, on_frame=on_frame)
    write_outputs(args.out, first_mask, logits, labels, palette)
    summary = {
        "source": source,
        "frames": int(num_frames),
        "size": [int(height), int(width)],
        "objects": labels,
        "config": args.config,
        "threads": torch.get_num_threads(),
        "median_frame_ms": float(np.median(times) * 1000) if times else None,
        "out": os.path.abspath(args.out),
    }
    print(json.dumps(summary))
    return Exit.DONE


def load_input(args):
    """-> (frames uint8 [T, H, W, 3], first mask [H, W], palette, description)."""
    if args.video is None:
        height, width = args.size or (240, 432)
        frames, labels = make_sample_video(num_frames=args.frames or 12, height=height, width=width)
        return frames, labels[0], media.davis_palette(), "generated clip"
    if args.mask is None:
        raise UsageError("give the first frame's mask with --mask FIRST.png")
    frames = media.read_frames(args.video, args.frames)
    mask, palette = media.read_mask(args.mask)
    return frames, mask, palette, args.video


def write_outputs(out: str, first_mask: np.ndarray, logits: torch.Tensor, labels: List[int], palette) -> None:
    """One palette PNG a frame; object channel j is written as its original label."""
    os.makedirs(out, exist_ok=True)
    label_of = np.array([0] + labels, dtype=np.uint8)
    media.write_mask(os.path.join(out, "00000.png"), first_mask, palette)
    for t, frame_logits in enumerate(logits, start=1):
        media.write_mask(os.path.join(out, f"{t:05d}.png"), label_of[frame_logits.argmax(0).numpy()], palette)


if __name__ == "__main__":
    sys.exit(main())
