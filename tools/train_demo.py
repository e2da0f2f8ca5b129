"""Train the demo model: the small HMMN configuration on generated videos, on a CPU or a GPU.

    python tools/train_demo.py --out runs/demo --iterations 12000      # resumes if runs/demo has a checkpoint

Each iteration draws a fresh generated video (seeds >= 1,000,000; validation uses seeds below)
and a clip of `--clip` frames starting at its first frame, with random strides (`--variety
varied`: videos with motion blur, a sweeping light, objects that leave and come back). The clip runs
through the inference protocol: frame 0 memorised with its one-hot mask, every later frame
segmented against the memory (frame 0 permanent, the previous frame memorised with the
model's own soft prediction), soft aggregation, cross-entropy on the aggregated logits. The
BatchNorm layers stay in inference mode (running statistics fixed), so one-frame batches train
them as plain affine layers. Logs loss and validation J&F; a checkpoint every `--save-every`
iterations makes the run resumable; `--export` writes the final weights and the record of
how they were made. `--schedule constant --keep-every N` keeps the weights every N iterations
along a constant learning rate, for tools/average_weights.py to average; `--time-limit S`
ends a run after S seconds of training (tools/parallel_runs.sh runs several side by side).
`--teacher W.pth --teacher-sizes 96x128 --distill 1` adds, on the clips of those sizes, the
KL divergence from another model's predictions on the same clip (its own memory, its own
soft predictions): a model trained at one size can pass what it knows to one trained at many.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

import hmmn_ref
from hmmn_deploy.core.files import sha256_file
from hmmn_deploy.demo.synthetic import PLAIN, VARIETIES, Variety, make_video
from hmmn_deploy.evaluate.metrics import mean_jf, sequence_scores
from hmmn_ref import protocol
from hmmn_ref.shell import parse_size
from hmmn_ref.video import object_labels, protocol_steps, run_video

TRAIN_SEED_BASE = 1_000_000  # validation videos use seeds below this
IGNORED = -100  # a target pixel no loss sees (torch's default ignore_index): see outline_band


def pixel_loss(logits: torch.Tensor, target: torch.Tensor, hard_pixels: float) -> torch.Tensor:
    """logits [K+1, H, W], target long [H, W] -> cross-entropy over the `hard_pixels` fraction
    of pixels that score worst (1.0: every pixel). A frame is mostly easy background; the hard
    pixels are where objects touch, emerge from occlusion, or look alike."""
    per_pixel = torch.nn.functional.cross_entropy(logits[None], target[None], reduction="none").flatten()
    per_pixel = per_pixel[target.flatten() != IGNORED]
    if per_pixel.numel() == 0:  # every pixel near an outline
        return logits.sum() * 0.0
    if hard_pixels >= 1.0:
        return per_pixel.mean()
    count = max(1, int(per_pixel.numel() * hard_pixels))
    return per_pixel.topk(count, sorted=False).values.mean()


def jaccard_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """logits [K+1, H, W], target long [H, W] -> mean over the K objects of 1 - soft IoU of the
    object's probability map with its mask. J&F averages objects, whatever their size, while
    cross-entropy averages pixels: a small object lost costs J a whole object but the
    cross-entropy only its few pixels. The +1 smoothing makes an absent object predicted absent
    score IoU 1, as J does."""
    seen = (target.flatten() != IGNORED).to(logits.dtype)  # [HW]
    probs = torch.softmax(logits, dim=0)[1:].flatten(1) * seen  # [K, HW]
    masks = torch.nn.functional.one_hot(target.flatten().clamp(min=0), logits.shape[0])[:, 1:].T.to(probs.dtype) * seen
    intersection = (probs * masks).sum(1)
    union = (probs + masks).sum(1) - intersection
    return (1 - (intersection + 1) / (union + 1)).mean()


def distill_loss(logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """logits, teacher_logits [K+1, H, W] -> KL(teacher || model) of the per-pixel class
    distributions, averaged over pixels: 0 where the model predicts what the teacher does."""
    log_model = torch.log_softmax(logits, dim=0)
    log_teacher = torch.log_softmax(teacher_logits, dim=0)
    return (log_teacher.exp() * (log_teacher - log_model)).sum(0).mean()


def outline_band(targets: torch.Tensor, width: int) -> torch.Tensor:
    """targets long [T, H, W] -> the same with every pixel within `width` pixels (a square window) of
    another label set to IGNORED: the losses then judge what lies beyond an outline's few pixels,
    not where exactly a generated outline falls (a convention of the generator, not of real video)."""
    if width <= 0:
        return targets
    labels = targets.to(torch.float32)[:, None]  # [T, 1, H, W]
    window = dict(kernel_size=2 * width + 1, stride=1, padding=width)
    highest = torch.nn.functional.max_pool2d(labels, **window)
    lowest = -torch.nn.functional.max_pool2d(-labels, **window)
    return torch.where((highest != lowest)[:, 0], torch.full_like(targets, IGNORED), targets)


def object_targets(labels: torch.Tensor) -> torch.Tensor:
    """labels long [T, H, W] -> the same with frame 0's objects renumbered 1..K in object_labels'
    order (the class index of each object in the logits) and every other label 0."""
    targets = torch.zeros_like(labels)
    for j, label in enumerate(object_labels(labels[0].cpu().numpy()), start=1):
        targets[labels == label] = j
    return targets


def clip_loss(model: hmmn_ref.HMMN, frames: torch.Tensor, labels: torch.Tensor, hard_pixels: float = 1.0,
              jaccard_weight: float = 0.0, mem_every: int = 1, capacity: int | None = None,
              teacher: hmmn_ref.HMMN | None = None, distill_weight: float = 0.0,
              ignore_band: int = 0) -> torch.Tensor:
    """frames float [T, 3, H, W] in [0, 1], labels long [T, H, W] (frame 0's objects tracked).
    Mean loss of frames 1..T-1 through the memory protocol of `run_video`: `pixel_loss` plus
    `jaccard_weight` times `jaccard_loss`, plus, with a `teacher`, `distill_weight` times
    `distill_loss` against the teacher's logits (the teacher runs the same protocol on the clip,
    without gradients). Frames 0, mem_every, 2*mem_every, ... stay in the 1/16 memory (1: every
    frame, the default for short clips; 5: inference's schedule); with a `capacity`, the memory
    keeps at most that many frames, evicting as inference's bank does."""
    targets = outline_band(object_targets(labels), ignore_band)
    teacher_logits = {}
    if teacher is not None:
        with torch.no_grad():
            teacher_logits = dict(protocol_steps(teacher, frames, labels[0], mem_every, capacity=capacity))
    losses = []
    for t, logits in protocol_steps(model, frames, labels[0], mem_every, capacity=capacity):
        loss = pixel_loss(logits, targets[t], hard_pixels)
        if jaccard_weight > 0:
            loss = loss + jaccard_weight * jaccard_loss(logits, targets[t])
        if teacher is not None:
            loss = loss + distill_weight * distill_loss(logits, teacher_logits[t])
        losses.append(loss)
    return torch.stack(losses).mean()


def learning_rate(it: int, peak: float, warmup: int, iterations: int, schedule: str = "cosine") -> float:
    """Learning rate of iteration `it` (from 0): linear warm-up to `peak` over `warmup` iterations,
    then cosine decay to 0 at `iterations`, or constant at `peak`."""
    if it < warmup:
        return peak * (it + 1) / warmup
    if schedule == "constant":
        return peak
    return peak * 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, iterations - warmup)))


def parse_sizes(values, clip: int) -> list:
    """["96x128:10", "240x320", ...] -> [(height, width, frames), ...]; FRAMES defaults to `clip`."""
    sizes = []
    for value in values:
        size, _, frames = value.partition(":")
        try:
            height, width = parse_size(size)
            count = int(frames) if frames else clip
        except (ValueError, argparse.ArgumentTypeError):
            raise ValueError(f"--size {value!r}: write HxW or HxW:FRAMES, e.g. 240x320:5") from None
        if height < 32 or width < 32 or count < 2:
            raise ValueError(f"--size {value!r}: sides of at least 32 and at least 2 frames per clip")
        sizes.append((height, width, count))
    return sizes


def draw_clip(rng: np.random.Generator, sizes: list, max_stride: int) -> tuple:
    """-> (frame indices, video seed, height, width): the clip's random choices, in the order the
    rng draws them. With one size the rng draws no size, so single-size runs draw what they did."""
    height, width, clip = sizes[int(rng.integers(len(sizes)))] if len(sizes) > 1 else sizes[0]
    strides = rng.integers(1, max_stride + 1, clip - 1)
    index = np.concatenate([[0], np.cumsum(strides)])
    return tuple(int(i) for i in index), int(rng.integers(TRAIN_SEED_BASE, 2**31 - 1)), height, width


def make_clip(drawn: tuple, variety: Variety = PLAIN):
    """-> frames uint8 [T, H, W, 3], labels uint8 [T, H, W] of a drawn clip (runs in workers too)."""
    index, seed, height, width = drawn
    video, labels = make_video(seed, index[-1] + 1, height, width, variety=variety)
    return video[list(index)], labels[list(index)]


class ClipSource:
    """Training clips in the order the seeded rng draws them. With workers, the next clips are
    generated ahead in other processes (the generator, not the model, limits a GPU run); the
    clips are the same as without. `state()` holds the rng and the clips drawn but not used yet,
    so a resumed run sees what an uninterrupted one would."""

    def __init__(self, rng, sizes, max_stride, workers=0, pending=(), variety: Variety = PLAIN) -> None:
        self.rng, self.sizes, self.max_stride, self.variety = rng, sizes, max_stride, variety
        self.pool = None
        if workers > 0:
            import multiprocessing

            self.pool = multiprocessing.get_context("spawn").Pool(workers)
        self.queue = []  # [(drawn, async result or None)]
        for drawn in pending:
            self._submit(drawn)
        while self.pool is not None and len(self.queue) < 2 * workers:
            self._submit(draw_clip(self.rng, self.sizes, self.max_stride))

    def _submit(self, drawn) -> None:
        job = self.pool.apply_async(make_clip, (drawn, self.variety)) if self.pool is not None else None
        self.queue.append((drawn, job))

    def next(self):
        """-> frames float [T, 3, H, W] in [0, 1], labels long [T, H, W] (on the CPU)."""
        if not self.queue:
            self._submit(draw_clip(self.rng, self.sizes, self.max_stride))
        drawn, job = self.queue.pop(0)
        if self.pool is not None:
            self._submit(draw_clip(self.rng, self.sizes, self.max_stride))
        video, labels = job.get() if job is not None else make_clip(drawn, self.variety)
        frames = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0
        return frames, torch.from_numpy(labels.astype(np.int64))

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "pending": [drawn for drawn, _ in self.queue]}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()


def validate(model: hmmn_ref.HMMN, seeds, num_frames: int, height: int, width: int, device="cpu") -> float:
    """J&F (0-100) of the model on generated validation videos, with the inference protocol."""
    scores = {}
    for seed in seeds:
        video, labels = make_video(seed, num_frames, height, width)
        frames = (torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0).to(device)
        logits = run_video(model, frames, torch.from_numpy(labels[0].astype(np.int64)).to(device))
        ids = np.array([0] + object_labels(labels[0]))
        preds = [labels[0]] + [ids[lg.argmax(0).numpy()] for lg in logits]
        scores[str(seed)] = sequence_scores(preds, list(labels))
    return mean_jf(scores)[0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="run folder: checkpoint.pth, log.jsonl")
    p.add_argument("--iterations", type=int, default=12000)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--clip", type=int, default=3, help="frames per training clip")
    p.add_argument("--max-stride", type=int, default=3)
    p.add_argument("--size", nargs="+", default=["96x128"], metavar="HxW[:FRAMES]",
                   help="training frame sizes, one drawn per clip, each alike (default 96x128; list one twice "
                        "to draw it twice as often); :FRAMES gives that size's clip length (default --clip), "
                        "e.g. 96x128:10 240x320:5 480x640:3")
    p.add_argument("--variety", choices=sorted(VARIETIES), default="plain",
                   help="varied: training videos with motion blur, a sweeping light and objects that leave "
                        "and come back (hmmn_deploy.demo.synthetic.VARIED)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, or cuda (a GPU: pair it with --workers)")
    p.add_argument("--workers", type=int, default=0, help="processes generating clips ahead (default 0: inline)")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--val-videos", type=int, default=6)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--hard-pixels", type=float, default=1.0,
                   help="fraction of each frame's pixels the loss averages, the worst-scoring ones "
                        "(default 1.0: plain cross-entropy; e.g. 0.2 weighs the hard pixels)")
    p.add_argument("--jaccard", type=float, default=0.0,
                   help="weight of a soft-IoU loss per object added to the pixel loss (default 0: none); "
                        "weighs every object alike, as J&F does, whatever its size")
    p.add_argument("--mem-every", type=int, default=1,
                   help="keep every N-th clip frame in the 1/16 memory (default 1: every frame; "
                        "5 with --max-stride 1 is inference's schedule, for whole-video clips)")
    p.add_argument("--capacity", type=int, default=None,
                   help="frames the 1/16 memory keeps at most, evicting as hmmn-run --capacity does "
                        "(default: all; for long clips with --mem-every 5, e.g. 96x128:100 --max-stride 1)")
    p.add_argument("--teacher", help="weights (a state dict of the small configuration) whose predictions the "
                        "model also learns from, on the clips of --teacher-sizes (see --distill)")
    p.add_argument("--teacher-sizes", nargs="+", metavar="HxW",
                   help="the --size entries whose clips the teacher scores (default: all)")
    p.add_argument("--distill", type=float, default=1.0,
                   help="weight of the KL divergence from the teacher's predictions added to the loss (default 1)")
    p.add_argument("--init", help="start from these weights (a state dict), e.g. a second stage with longer clips")
    p.add_argument("--warmup", type=int, default=300, help="iterations of linear learning-rate warm-up")
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="learning rate after the warm-up: cosine decay to 0, or constant (for averaging "
                        "the weights of --keep-every along the way)")
    p.add_argument("--keep-every", type=int, default=0,
                   help="also keep the weights every N iterations, OUT/weights/iteration_NNNNNN.pth "
                        "(state dicts, for tools/average_weights.py; default 0: none)")
    p.add_argument("--time-limit", type=float, default=0.0,
                   help="stop after the iteration during which this many seconds of training have passed "
                        "(resumes count the earlier time; default 0: no limit). With --schedule cosine the "
                        "learning rate then stops short of its decay")
    p.add_argument("--export", help="write the final weights (state dict) here, and a .json record beside them")
    return p


def check_options(p: argparse.ArgumentParser, args) -> list:
    """The run's sizes, [(H, W, clip frames)]; p.error (exit 2) for an option out of range."""
    if not 0.0 < args.hard_pixels <= 1.0:
        p.error(f"--hard-pixels {args.hard_pixels}: give a fraction in (0, 1]")
    problem = protocol.settings_problem(True, mem_every=args.mem_every, capacity=args.capacity)
    if problem:
        p.error(problem)
    if not args.jaccard >= 0.0:
        p.error(f"--jaccard {args.jaccard}: give a weight >= 0")
    if not args.time_limit >= 0.0:
        p.error(f"--time-limit {args.time_limit:g}: give seconds >= 0 (0: no limit)")
    if args.keep_every < 0:
        p.error(f"--keep-every {args.keep_every}: give a whole number >= 0 (0 keeps none)")
    try:
        sizes = parse_sizes(args.size, args.clip)
    except ValueError as exc:
        p.error(str(exc))
    if not args.distill >= 0.0:
        p.error(f"--distill {args.distill}: give a weight >= 0")
    if args.teacher_sizes and not args.teacher:
        p.error("--teacher-sizes: give the --teacher weights too")
    return sizes


def load_teacher(p: argparse.ArgumentParser, args, run_sizes: set) -> tuple:
    """--teacher: (its model, its SHA-256, the sizes whose clips it scores); (None, None, set())
    without one. p.error for weights or sizes it cannot use."""
    if not args.teacher:
        return None, None, set()
    try:
        teacher_sizes = {parse_size(s) for s in args.teacher_sizes} if args.teacher_sizes else run_sizes
    except argparse.ArgumentTypeError as exc:
        p.error(f"--teacher-sizes: {exc}")
    unknown = sorted(teacher_sizes - run_sizes)
    if unknown:
        p.error(f"--teacher-sizes {' '.join(f'{h}x{w}' for h, w in unknown)}: not a --size of this run; "
                f"give sizes it trains at")
    if not os.path.isfile(args.teacher):
        p.error(f"--teacher {args.teacher}: cannot read it (no such file)")
    try:  # the project's checkpoint loader: every name and shape checked, its reason in the message
        teacher = hmmn_ref.load_weights(hmmn_ref.HMMN(hmmn_ref.SMALL), args.teacher).requires_grad_(False)
    except hmmn_ref.HMMNError as exc:
        p.error(f"--teacher {args.teacher}: not a state dict of the small configuration ({exc})")
    return teacher, sha256_file(args.teacher), teacher_sizes  # the hash at the start, for the record


def open_model(p: argparse.ArgumentParser, args, teacher) -> tuple:
    """-> (the model to train, seeded, from --init if given, on --device; that device)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # before the model: its initial weights come from it
    os.makedirs(args.out, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU")
    model = hmmn_ref.HMMN(hmmn_ref.SMALL)
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True, map_location="cpu"))
    model.to(device).eval()  # BatchNorm in inference mode: see the module docstring
    if teacher is not None:
        teacher.to(device).eval()
    return model, device


class Run:
    """What one training run works with; `checkpoint` holds its resumable state. (A plain class:
    the tests load this script without registering it as a module, which dataclasses need.)"""

    def __init__(self, args, model: hmmn_ref.HMMN, optimiser: torch.optim.Optimizer, device: torch.device,
                 sizes: list, teacher, teacher_sizes: set, val_seeds: list) -> None:
        self.args, self.model, self.optimiser, self.device = args, model, optimiser, device
        self.sizes = sizes  # [(H, W, clip frames)]; validation at the first size, and at each other one
        self.teacher, self.teacher_sizes = teacher, teacher_sizes  # the --teacher model or None; (H, W) it scores
        self.val_seeds = val_seeds

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.args.out, "checkpoint.pth")

    def lr_at(self, it: int) -> float:
        return learning_rate(it, self.args.lr, self.args.warmup, self.args.iterations, self.args.schedule)


class TrainingTime:
    """Seconds of training across resumes: `elapsed` up to the last checkpoint, plus the time since."""

    def __init__(self, elapsed: float) -> None:
        self.elapsed, self.t0 = elapsed, time.perf_counter()

    def now(self) -> float:
        return self.elapsed + time.perf_counter() - self.t0

    def lap(self) -> float:
        """Adds up the time since the last lap (at a checkpoint); -> the total."""
        now = time.perf_counter()
        self.elapsed, self.t0 = self.elapsed + now - self.t0, now
        return self.elapsed


def resume(run: Run, rng: np.random.Generator) -> tuple:
    """The checkpoint's state into the model, the optimiser and the rngs, when there is one.
    -> (iterations done, seconds of training, clips drawn but not used yet)."""
    if not os.path.isfile(run.checkpoint):
        return 0, 0.0, []
    state = torch.load(run.checkpoint, weights_only=False, map_location="cpu")  # the optimiser moves its own
    run.model.load_state_dict(state["model"])
    run.optimiser.load_state_dict(state["optimiser"])
    rng.bit_generator.state = state["rng"]
    height, width = run.sizes[0][:2]
    # clips drawn before sizes were part of a draw: (index, seed) at the first size
    pending = [(tuple(d[0]), *d[1:]) if len(d) == 4 else (tuple(d[0]), d[1], height, width)
               for d in state.get("pending_clips", [])]
    torch.set_rng_state(state["torch_rng"])
    print(f"resuming at iteration {state['iteration']}", file=sys.stderr)
    return state["iteration"], state["elapsed"], pending


def save_checkpoint(run: Run, clips: "ClipSource", done: int, elapsed: float) -> None:
    """The resumable state after `done` iterations and `elapsed` seconds of training."""
    source = clips.state()
    torch.save({"model": run.model.state_dict(), "optimiser": run.optimiser.state_dict(), "iteration": done,
                "elapsed": elapsed, "rng": source["rng"], "pending_clips": source["pending"],
                "torch_rng": torch.get_rng_state()}, run.checkpoint + ".tmp")
    os.replace(run.checkpoint + ".tmp", run.checkpoint)


def keep_weights(run: Run, done: int) -> None:
    """--keep-every: OUT/weights/iteration_NNNNNN.pth, a state dict on the CPU."""
    kept = os.path.join(run.args.out, "weights", f"iteration_{done:06d}.pth")
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in run.model.state_dict().items()}, kept + ".tmp")
    os.replace(kept + ".tmp", kept)


def train_step(run: Run, frames: torch.Tensor, labels: torch.Tensor, it: int) -> float:
    """One optimiser step on one clip; -> its loss."""
    args = run.args
    for group in run.optimiser.param_groups:
        group["lr"] = run.lr_at(it)
    taught = tuple(frames.shape[-2:]) in run.teacher_sizes
    loss = clip_loss(run.model, frames.to(run.device), labels.to(run.device), args.hard_pixels, args.jaccard,
                     args.mem_every, args.capacity, run.teacher if taught else None, args.distill)
    run.optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 5.0)
    run.optimiser.step()
    return loss.item()


def progress_record(run: Run, done: int, losses: list, seconds: float) -> dict:
    """The log line of the last 50 iterations; with validation J&F every --val-every."""
    height, width = run.sizes[0][:2]
    record = {"iteration": done, "loss": float(np.mean(losses)), "lr": run.lr_at(done - 1),
              "seconds": round(seconds, 1)}
    if done % run.args.val_every == 0 or done == run.args.iterations:
        record["val_jf"] = round(validate(run.model, run.val_seeds, 16, height, width, run.device), 2)
        for h, w in dict.fromkeys((h, w) for h, w, _ in run.sizes[1:] if (h, w) != (height, width)):
            record[f"val_jf_{h}x{w}"] = round(validate(run.model, run.val_seeds, 16, h, w, run.device), 2)
    return record


def train(run: Run, clips: "ClipSource", start: int, clock: TrainingTime) -> tuple:
    """Iterations start..--iterations (or until --time-limit). -> (iterations done, stopped early)."""
    args = run.args
    done, stopped_early, running = start, False, []
    with open(os.path.join(args.out, "log.jsonl"), "a") as log:
        for it in range(start, args.iterations):
            running.append(train_step(run, *clips.next(), it))
            done = it + 1
            if done % 50 == 0:
                record = progress_record(run, done, running, clock.now())
                print(json.dumps(record), file=sys.stderr, flush=True)
                log.write(json.dumps(record) + "\n")
                log.flush()
                running = []
            # kept weights before the checkpoint: a resume after a crash between the two rewrites them
            if args.keep_every and done % args.keep_every == 0:
                keep_weights(run, done)
            stopped_early = bool(args.time_limit) and done < args.iterations and clock.now() >= args.time_limit
            if done % args.save_every == 0 or done == args.iterations or stopped_early:
                save_checkpoint(run, clips, done, clock.lap())
            if stopped_early:
                print(f"--time-limit {args.time_limit:g} s reached: stopped after iteration {done}", file=sys.stderr)
                break
    return done, stopped_early


def write_export(run: Run, done: int, stopped_early: bool, elapsed: float, teacher_sha256) -> None:
    """--export W.pth: the weights (a state dict) and W.json, the record of how they were made."""
    args = run.args
    os.makedirs(os.path.dirname(os.path.abspath(args.export)), exist_ok=True)
    torch.save({k: v.cpu() for k, v in run.model.state_dict().items()}, args.export)
    record = {"command": "python tools/train_demo.py " + " ".join(sys.argv[1:]), "config": "small",
              "settings": vars(args), "iterations_done": done, "stopped_by_time_limit": stopped_early,
              "train_seconds": round(elapsed, 1), "torch": torch.__version__,
              "device": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
              "train_seeds": f">= {TRAIN_SEED_BASE}", "val_seeds": run.val_seeds}
    if teacher_sha256:
        record["teacher_sha256"] = teacher_sha256
    previous = os.path.splitext(args.init)[0] + ".json" if args.init else None
    trained = [list(s) for s in dict.fromkeys((h, w) for h, w, _ in run.sizes)]  # each once (core.working_size)
    if previous and os.path.isfile(previous):  # the stage these weights started from
        with open(previous) as f:
            record["previous_stage"] = json.load(f)
        trained += [s for s in record["previous_stage"].get("trained_sizes", []) if s not in trained]
    record["trained_sizes"] = trained
    with open(os.path.splitext(args.export)[0] + ".json", "w") as f:
        json.dump(record, f, indent=2)
    print(f"weights written to {args.export}", file=sys.stderr)


def main() -> int:
    p = build_parser()
    args = p.parse_args()
    sizes = check_options(p, args)
    teacher, teacher_sha256, teacher_sizes = load_teacher(p, args, {(h, w) for h, w, _ in sizes})
    model, device = open_model(p, args, teacher)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Run(args, model, optimiser, device, sizes, teacher, teacher_sizes, list(range(100, 100 + args.val_videos)))
    rng = np.random.default_rng(args.seed)
    start, elapsed, pending = resume(run, rng)
    clips = ClipSource(rng, sizes, args.max_stride, args.workers, pending, VARIETIES[args.variety])
    clock = TrainingTime(elapsed)
    done, stopped_early = train(run, clips, start, clock)
    clips.close()
    if args.export:
        write_export(run, done, stopped_early, clock.elapsed, teacher_sha256)
    return 0


if __name__ == "__main__":
    sys.exit(main())
