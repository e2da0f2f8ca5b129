"""Train the mobile model: HMMN's memory, matching and decoder over ImageNet MobileNetV2 trunks.

    python tools/train_mobile.py --out runs/mobile --iterations 6000 --export W.pth   # resumes from runs/mobile

Starts from torchvision's ImageNet MobileNetV2 (hmmn_ref.imagenet_weights) as the trunk, which both
encoders share and which stays frozen, so that what ImageNet taught it about real things survives
training on a few photos. Keys are the trunk's own unit-length maps (hmmn_ref MOBILE: nothing to
learn); the value projections and the decoder train (`--config mobile-wide` gives them room; the
default `mobile` is the built-in model's narrow layout). A run that starts from ImageNet zeroes the
decoder's last convolution, so the model starts as label propagation over the trunk (the mask prior,
MOBILE.mask_prior) and learns a correction to it; `--iterations 0 --size HxW --export W.pth` writes
that untrained model, with HxW recorded as the size it runs at. Each iteration draws a
clip: with probability `--photo-share` a video made of real photos (demo/photo_clips.py), else one
of the blob generator's varied videos (demo/synthetic.py), at one of the `--size`s. The clip runs
through the inference protocol and the loss of tools/train_demo.py (cross-entropy of the aggregated
logits, plus `--jaccard` times a soft IoU); BatchNorm stays in inference mode. Validation: J&F on
held-out photo videos (seeds below 1,000,000). Resumable (`OUT/checkpoint.pth`); `--time-limit S`
stops after S seconds of training; `--export` writes the weights and a record of how they were
made: the command, seeds, the ImageNet file's SHA-256, every photo with its licence.
`--area-weight W` holds the correction to the prior's area (CorrectionArea); `--ignore-band PX`
makes the losses blind within PX pixels of an outline (train_demo.outline_band). Neither made a
correction that helps on real video (docs/mobile_model.md, "Why the correction hurts").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # tools/train_demo.py: its loss and schedule

import hmmn_ref  # noqa: E402
from hmmn_deploy.demo.photo_clips import PHOTO_SOURCES, make_photo_video, photo_library  # noqa: E402
from hmmn_deploy.demo.synthetic import VARIED, make_video  # noqa: E402
from hmmn_deploy.evaluate.metrics import mean_jf, sequence_scores  # noqa: E402
from hmmn_ref.modules import prior_logits  # noqa: E402
from hmmn_ref.imagenet_weights import init_mobile_trunks, sha256_of, weights_path  # noqa: E402
from hmmn_ref.video import object_labels, run_video  # noqa: E402
from train_demo import TRAIN_SEED_BASE, clip_loss, learning_rate, parse_sizes  # noqa: E402

def as_tensors(video: np.ndarray, labels: np.ndarray):
    """uint8 [T, H, W, 3], [T, H, W] -> float [T, 3, H, W] in [0, 1], long [T, H, W]."""
    return torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(labels.astype(np.int64))


def draw_clip(rng: np.random.Generator, sizes: list, photos: dict, photo_share: float):
    """-> (kind, seed, frames float [T, 3, H, W], labels long [T, H, W]) of a fresh training clip with
    an object in its first frame (a clip whose cut-outs all start hidden is drawn again)."""
    while True:
        clip = draw_any_clip(rng, sizes, photos, photo_share)
        if clip[3][0].any():
            return clip


def draw_any_clip(rng: np.random.Generator, sizes: list, photos: dict, photo_share: float):
    height, width, length = sizes[int(rng.integers(len(sizes)))]
    seed = int(rng.integers(TRAIN_SEED_BASE, 2**31 - 1))
    if rng.random() < photo_share:
        return ("photo", seed, *as_tensors(*make_photo_video(seed, photos, length, height, width)))
    strides = rng.integers(1, 4, length - 1)
    index = np.concatenate([[0], np.cumsum(strides)])
    video, labels = make_video(seed, int(index[-1]) + 1, height, width, variety=VARIED)
    return ("blob", seed, *as_tensors(video[index], labels[index]))


def start_as_propagation(model: hmmn_ref.HMMN) -> hmmn_ref.HMMN:
    """Zero the decoder's last convolution: its correction to the mask prior (MOBILE.mask_prior) is
    then 0, and the model is label propagation over the ImageNet trunk's keys until it trains."""
    with torch.no_grad():
        model.Decoder.pred2.weight.zero_()
        model.Decoder.pred2.bias.zero_()
    return model


def trainable_parameters(model: hmmn_ref.HMMN) -> list:
    """Freezes the trunk (shared by both encoders); -> the parameters that train: the key and value
    projections and the decoder."""
    model.Encoder_Q.features.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


class CorrectionArea:
    """How much the decoder's correction changes each object's area, frame by frame: a forward hook on
    model.Decoder that keeps, per call, the mean over objects of |sum p_model - sum p_prior| /
    (sum p_prior + 16), with p_prior the object's share under the mask prior alone (the read at 1/4,
    MOBILE.mask_prior) and p_model under the prior plus the correction, on the same frame and memory.
    Photo clips teach a correction that grows masks (there the prior under-segments the cut-outs; on
    real video it does not), and on a real video that growth compounds through memory; `--area-weight`
    holds the correction to the prior's area so that it may only move boundaries."""

    def __init__(self, model: hmmn_ref.HMMN) -> None:
        self.terms: list = []
        model.Decoder.register_forward_hook(self._record)

    def _record(self, decoder, inputs, logits) -> None:
        if not torch.is_grad_enabled():
            return
        prior = prior_logits(inputs[4][:, -1:])  # m2's last channel: the mask read at 1/4 [N, 1, h, w]
        p_model = torch.softmax(logits, dim=1)[:, 1].flatten(1).sum(1)  # [N] soft areas in pixels
        p_prior = torch.softmax(prior, dim=1)[:, 1].flatten(1).sum(1)
        self.terms.append(((p_model - p_prior).abs() / (p_prior + 16.0)).mean())

    def take(self) -> torch.Tensor:
        """The mean of the terms since the last take (0 if none), and forget them."""
        term = torch.stack(self.terms).mean() if self.terms else torch.zeros(())
        self.terms = []
        return term


def photo_video_predictions(model: hmmn_ref.HMMN, photos: dict, seed: int, num_frames: int, height: int,
                            width: int):
    """A photo video's labels uint8 [T, H, W] and the model's label maps for it, frame 0 the given
    mask (the inference protocol, memory every 5th frame, no autograd)."""
    video, labels = make_photo_video(seed, photos, num_frames, height, width)
    frames, first = as_tensors(video, labels)
    with torch.no_grad():
        logits = run_video(model, frames, first[0])
    ids = np.array([0] + object_labels(labels[0]))
    return labels, [labels[0]] + [ids[lg.argmax(0).numpy()] for lg in logits]


def validate(model: hmmn_ref.HMMN, photos: dict, seeds, num_frames: int, height: int, width: int) -> float:
    """J&F (0-100) on held-out photo videos, with the inference protocol (memory every 5th frame)."""
    scores = {}
    for seed in seeds:
        labels, preds = photo_video_predictions(model, photos, seed, num_frames, height, width)
        scores[str(seed)] = sequence_scores(preds, list(labels))
    return mean_jf(scores)[0]


def export(path: str, model: hmmn_ref.HMMN, args, done: int, elapsed: float, val_seeds) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    record = {
        "command": "python tools/train_mobile.py " + " ".join(sys.argv[1:]), "config": args.config,
        "settings": vars(args), "iterations_done": done, "train_seconds": round(elapsed, 1),
        "torch": torch.__version__, "device": "cpu", "train_seeds": f">= {TRAIN_SEED_BASE}",
        "val_seeds": list(val_seeds),
        "imagenet_weights": {"file": os.path.basename(weights_path()), "sha256": sha256_of(weights_path()),
                             "licence": "BSD-3-Clause (torchvision)"},
        "photos": {name: {"package": pkg, "path": rel, "licence": lic} for name, (pkg, rel, lic) in PHOTO_SOURCES.items()},
        "trained_sizes": [list(s) for s in dict.fromkeys((h, w) for h, w, _ in parse_sizes(args.size, args.clip))],
    }
    previous = os.path.splitext(args.init)[0] + ".json" if args.init else None
    if previous and os.path.isfile(previous):  # the stage these weights started from
        with open(previous) as f:
            record["previous_stage"] = json.load(f)
        record["trained_sizes"] += [s for s in record["previous_stage"].get("trained_sizes", [])
                                    if s not in record["trained_sizes"]]
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(record, f, indent=2)
    print(f"weights written to {path}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="run folder: checkpoint.pth, log.jsonl")
    p.add_argument("--iterations", type=int, default=6000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--clip", type=int, default=4, help="frames per clip (a --size without :FRAMES)")
    p.add_argument("--size", nargs="+", default=["192x256"], metavar="HxW[:FRAMES]")
    p.add_argument("--photo-share", type=float, default=0.8, help="fraction of clips made of photos (else blobs)")
    p.add_argument("--jaccard", type=float, default=0.5)
    p.add_argument("--area-weight", type=float, default=0.0,
                   help="add this times the correction's relative change of each object's area (CorrectionArea)")
    p.add_argument("--ignore-band", type=int, default=0, metavar="PX",
                   help="the losses ignore pixels within PX of an outline (train_demo.outline_band)")
    p.add_argument("--mem-every", type=int, default=1,
                   help="frames 0, N, 2N, ... stay in a clip's 1/16 memory (1: every frame; inference keeps every 5th)")
    p.add_argument("--config", choices=("mobile", "mobile-wide"), default="mobile",
                   help="mobile: the built-in model's layout, value projections and decoder at their narrowest "
                        "(for --iterations 0); mobile-wide: room for a trained correction (hmmn_ref/config.py)")
    p.add_argument("--init", help="start from these weights (a state dict of --config's configuration)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-videos", type=int, default=8)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--keep-every", type=int, default=0, help="keep the weights every N iterations in OUT/weights/")
    p.add_argument("--time-limit", type=float, default=0.0, help="stop after this many seconds of training")
    p.add_argument("--export", help="write the final weights here, and a .json record beside them")
    args = p.parse_args()
    for name in ("jaccard", "area_weight", "ignore_band"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)}: give a value >= 0 (0: off)")
    sizes = parse_sizes(args.size, args.clip)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    photos = photo_library()
    model = hmmn_ref.HMMN(hmmn_ref.get_config(args.config))
    if args.init:
        hmmn_ref.load_weights(model, args.init)
    else:
        start_as_propagation(init_mobile_trunks(model))
    model.eval()  # BatchNorm in inference mode
    parameters = trainable_parameters(model)
    area = CorrectionArea(model) if args.area_weight > 0 else None
    optimiser = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed)
    checkpoint = os.path.join(args.out, "checkpoint.pth")
    start, elapsed = 0, 0.0
    if os.path.isfile(checkpoint):
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start, elapsed = state["iteration"], state["elapsed"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming at iteration {start}", file=sys.stderr)
    val_seeds = range(100, 100 + args.val_videos)
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    running, kinds, t0, done = [], [], time.perf_counter(), start

    def save_checkpoint() -> None:
        nonlocal elapsed, t0
        now = time.perf_counter()
        elapsed, t0 = elapsed + now - t0, now
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "iteration": done,
                    "elapsed": elapsed, "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()},
                   checkpoint + ".tmp")
        os.replace(checkpoint + ".tmp", checkpoint)

    for it in range(start, args.iterations):
        rate = learning_rate(it, args.lr, args.warmup, args.iterations)
        for group in optimiser.param_groups:
            group["lr"] = rate
        kind, _, frames, labels = draw_clip(rng, sizes, photos, args.photo_share)
        loss = clip_loss(model, frames, labels, jaccard_weight=args.jaccard, mem_every=args.mem_every,
                         ignore_band=args.ignore_band)
        if area is not None:
            loss = loss + args.area_weight * area.take()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimiser.step()
        running.append(loss.item())
        kinds.append(kind)
        done = it + 1
        validating = done % args.val_every == 0 or done == args.iterations
        if done % 25 == 0 or validating:
            record = {"iteration": done, "loss": round(float(np.mean(running)), 4), "lr": rate,
                      "photo_clips": kinds.count("photo"), "seconds": round(elapsed + time.perf_counter() - t0, 1)}
            if validating:
                height, width = sizes[0][:2]
                record["val_jf_photo"] = round(validate(model, photos, val_seeds, 12, height, width), 2)
            print(json.dumps(record), file=sys.stderr, flush=True)
            log.write(json.dumps(record) + "\n")
            log.flush()
            running, kinds = [], []
        if args.keep_every and done % args.keep_every == 0:
            kept = os.path.join(args.out, "weights", f"iteration_{done:06d}.pth")
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, kept)
        over_time = bool(args.time_limit) and elapsed + time.perf_counter() - t0 >= args.time_limit
        if done % args.save_every == 0 or done == args.iterations or over_time:
            save_checkpoint()
        if over_time:
            print(f"--time-limit {args.time_limit:g} s reached after iteration {done}", file=sys.stderr)
            break
    if args.export:
        export(args.export, model, args, done, elapsed, val_seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
