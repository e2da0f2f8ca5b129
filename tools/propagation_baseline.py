#!/usr/bin/env python3
"""Training-free label propagation over ImageNet MobileNetV2 features: the reference that a trained
model must beat (issue 38).

Each frame: torchvision's ImageNet MobileNetV2 (hmmn_ref.imagenet_weights) gives the 1/8 map
(features.6, 32 channels) and the 1/16 map (features.13, 96 channels, upsampled bilinearly to
1/8); each is L2-normalised per position and the two are concatenated (128 channels), and by
default normalised again (--affinity). Every 1/8 query cell takes its 20 largest affinities (dot
products) over the memory's cells, softmax at temperature 0.05, and averages those cells' label
maps with those weights. The memory: frame 0
(its annotation, one-hot, area-downsampled to 1/8), the 8 most recent of frames 5, 10, 15, ... and
the previous frame (their own propagated soft labels). The 1/8 label map is upsampled bilinearly to
the frame and its argmax is the mask.

    tools/propagation_baseline.py ../shared/data/box -o box_prop       # a DAVIS root
    tools/propagation_baseline.py video.avi --mask first.png -o out --max-frames 100 --overlay-frames 10,99
    hmmn-eval --gt ../shared/data/box --pred box_prop

Writes OUT/<seq>/<frame>.png (palette PNGs, the annotation's ids and palette: hmmn-eval's layout),
with --overlay-frames OUT/overlays/<seq>/<frame>.jpg. --copy-first-mask writes the first mask on
every frame instead: the floor to compare with.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from hmmn_deploy.segment.sources import Sequence, discover
from hmmn_deploy.core.drawing import overlay, palette_colours
from hmmn_ref.imagenet_weights import imagenet_input, load_imagenet_mobilenet_v2
from hmmn_ref.media import read_frames, read_image, read_mask, write_mask
from hmmn_ref.mobilenet_v2 import MobileNetV2
from hmmn_ref.video import object_labels, one_hot

TOP_K = 20
TEMPERATURE = 0.05
KEEP_EVERY = 5  # frames 5, 10, 15, ... join the memory
MAX_KEPT = 8  # of them, the most recent
STRIDE = 8
QUERY_CHUNK = 1024  # query cells per affinity block: [1024, memory cells] floats at a time


# ---- features ------------------------------------------------------------------------------

# How the two unit-length halves meet. "cosine": the concatenation is L2-normalised again, so an
# affinity is the mean of the two cosines, in [-1, 1]. "sum": left as it is, an affinity is their
# sum, in [-2, 2] (twice as sharp a softmax at the same temperature). Measured on box: docs/imagenet_trunk.md.
AFFINITIES = ("cosine", "sum")


@torch.no_grad()
def frame_features(trunk: MobileNetV2, frame: np.ndarray, affinity: str = "cosine") -> torch.Tensor:
    """uint8 RGB [H, W, 3] -> float32 [128, h, w] at 1/8: L2-normalised 1/8 and 1/16 maps, concatenated."""
    maps = trunk.trunk(imagenet_input(frame), (8, 16))
    fine = maps[8]
    coarse = F.interpolate(maps[16], size=fine.shape[-2:], mode="bilinear", align_corners=False)
    both = torch.cat([F.normalize(fine, dim=1), F.normalize(coarse, dim=1)], dim=1)[0]
    return both / math.sqrt(2) if affinity == "cosine" else both  # each half has norm 1: the whole, sqrt 2


def downsample_labels(probabilities: torch.Tensor, size) -> torch.Tensor:
    """[K+1, H, W] -> [K+1, h, w]: each cell the mean of the pixels it covers."""
    return F.interpolate(probabilities[None], size=size, mode="area")[0]


# ---- propagation ---------------------------------------------------------------------------

def memory_frames(t: int) -> List[int]:
    """Indices frame t reads: 0, the MAX_KEPT most recent multiples of KEEP_EVERY before t, and t-1."""
    kept = [k for k in range(KEEP_EVERY, t, KEEP_EVERY)][-MAX_KEPT:]
    return sorted({0, *kept, t - 1})


def top_k_aggregate(query: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, top_k: int = TOP_K,
                    temperature: float = TEMPERATURE) -> torch.Tensor:
    """query [C, Nq], keys [C, Nm], labels [K+1, Nm] -> [K+1, Nq]: per query cell, the softmax
    (affinity / temperature) over its top_k affinities weights those memory cells' labels."""
    top_k = min(top_k, keys.shape[1])
    out = torch.empty(labels.shape[0], query.shape[1])
    for start in range(0, query.shape[1], QUERY_CHUNK):
        block = query[:, start:start + QUERY_CHUNK].T @ keys  # [n, Nm] affinities
        values, indices = block.topk(top_k, dim=1)  # [n, k]
        weights = torch.softmax(values / temperature, dim=1)  # [n, k]
        gathered = labels[:, indices]  # [K+1, n, k]
        out[:, start:start + QUERY_CHUNK] = (gathered * weights[None]).sum(dim=2)
    return out


@torch.no_grad()
def propagate(trunk: MobileNetV2, frames: np.ndarray, first_probabilities: torch.Tensor,
              report=None, affinity: str = "cosine", temperature: float = TEMPERATURE) -> np.ndarray:
    """frames uint8 [T, H, W, 3], first_probabilities [K+1, H, W] -> label indices uint8 [T, H, W]
    (0 background, j the j-th object); frame 0 is the annotation itself."""
    height, width = frames.shape[1:3]
    features: Dict[int, torch.Tensor] = {0: frame_features(trunk, frames[0], affinity)}  # [C, h, w] per frame
    cell_size = features[0].shape[-2:]
    soft: Dict[int, torch.Tensor] = {0: downsample_labels(first_probabilities, cell_size)}  # [K+1, h, w]
    indices = np.empty(frames.shape[:3], np.uint8)
    indices[0] = first_probabilities.argmax(0).numpy()
    for t in range(1, len(frames)):
        features[t] = frame_features(trunk, frames[t], affinity)
        memory = memory_frames(t)
        keys = torch.cat([features[m].flatten(1) for m in memory], dim=1)  # [C, M*h*w]
        labels = torch.cat([soft[m].flatten(1) for m in memory], dim=1)  # [K+1, M*h*w]
        soft[t] = top_k_aggregate(features[t].flatten(1), keys, labels, temperature=temperature).view(-1, *cell_size)
        full = F.interpolate(soft[t][None], size=(height, width), mode="bilinear", align_corners=False)[0]
        indices[t] = full.argmax(0).numpy()
        for old in set(features) - set(memory_frames(t + 1)) - {t}:  # keep only what later frames read
            del features[old], soft[old]
        if report:
            report(t, len(frames))
    return indices


# ---- input and output ----------------------------------------------------------------------

def sequence_frames(sequence: Sequence, max_frames: Optional[int]) -> np.ndarray:
    """uint8 [T, H, W, 3], as hmmn-run reads them (hmmn_ref.media)."""
    if sequence.video_path:
        return read_frames(sequence.video_path, max_frames)
    return np.stack([read_image(p) for p in sequence.frame_paths[:max_frames]])


def write_sequence(out: str, sequence: Sequence, indices: np.ndarray, objects: List[int], palette: List[int],
                   frames: np.ndarray, overlay_frames: List[int]) -> None:
    """OUT/<seq>/<frame>.png with the annotation's ids; overlays at the frames asked."""
    ids = np.array([0, *objects], np.uint8)  # label index -> annotation id
    folder = os.path.join(out, sequence.name)
    os.makedirs(folder, exist_ok=True)
    for t, name in enumerate(sequence.frame_names[:len(indices)]):
        write_mask(os.path.join(folder, name + ".png"), ids[indices[t]], palette)
    if overlay_frames:
        from PIL import Image

        overlays = os.path.join(out, "overlays", sequence.name)
        os.makedirs(overlays, exist_ok=True)
        colours = palette_colours(palette)
        for t in (t for t in overlay_frames if t < len(indices)):
            image = overlay(frames[t], ids[indices[t]], colours, index=t)
            Image.fromarray(image).save(os.path.join(overlays, sequence.frame_names[t] + ".jpg"), quality=90)


def coverage(indices: np.ndarray, objects: List[int], t: int) -> str:
    return ", ".join(f"object {o}: {int((indices[t] == j + 1).sum())} px" for j, o in enumerate(objects))


def run_sequence(trunk: MobileNetV2, sequence: Sequence, args) -> None:
    frames = sequence_frames(sequence, args.max_frames)
    first, palette = read_mask(sequence.annotations[0])
    if first.shape != frames.shape[1:3]:
        sys.exit(f"{sequence.name}: the first mask is {first.shape}, the frames {frames.shape[1:3]}")
    objects = object_labels(first)
    probabilities = one_hot(torch.from_numpy(first.astype(np.int64)), objects)  # [K+1, H, W]
    started = time.perf_counter()
    if args.copy_first_mask:
        indices = np.repeat(probabilities.argmax(0).numpy().astype(np.uint8)[None], len(frames), axis=0)
    else:
        def report(t: int, total: int) -> None:
            if t % 20 == 0 or t == total - 1:
                rate = t / (time.perf_counter() - started)
                print(f"  {sequence.name}: frame {t}/{total - 1}, {rate:.2f} frames/s", flush=True)

        indices = propagate(trunk, frames, probabilities, report, args.affinity, args.temperature)
    seconds = time.perf_counter() - started
    write_sequence(args.out, sequence, indices, objects, palette, frames, args.overlay_frames)
    print(f"{sequence.name}: {len(frames)} frames {frames.shape[2]}x{frames.shape[1]}, {len(objects)} objects, "
          f"{(len(frames) - 1) / seconds:.2f} frames/s")
    for t in args.overlay_frames:
        if t < len(indices):
            print(f"  frame {t}: {coverage(indices, objects, t)} of {indices[t].size} px")


def parse_frames(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="a DAVIS root, a frame folder or a video file")
    parser.add_argument("--mask", help="first frame's label PNG (frame folder or video)")
    parser.add_argument("-o", "--out", required=True, help="output folder: OUT/<seq>/<frame>.png")
    parser.add_argument("--max-frames", type=int, help="the first N frames only")
    parser.add_argument("--overlay-frames", type=parse_frames, default=[], metavar="I,J,...",
                        help="write overlays of these frames and print each object's pixel count there")
    parser.add_argument("--affinity", choices=AFFINITIES, default="cosine",
                        help="cosine: the concatenated features re-normalised (default); sum: the two cosines added")
    parser.add_argument("--temperature", type=float, default=TEMPERATURE, help="of the top-k softmax (default 0.05)")
    parser.add_argument("--copy-first-mask", action="store_true", help="write the first mask on every frame")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machines)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = discover(args.input, args.mask)
    trunk = None if args.copy_first_mask else load_imagenet_mobilenet_v2()
    for sequence in dataset.sequences:
        run_sequence(trunk, sequence, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
