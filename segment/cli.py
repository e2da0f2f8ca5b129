"""`hmmn-run`: segment a frame folder, a video file, or a DAVIS / YouTube-VOS dataset.

Outputs: OUT/<sequence>/<frame>.png (the annotation's ids and palette), optional
OUT/overlays/<sequence>.mp4 and OUT/probs/<sequence>/<frame>.npz, and OUT/summary.json.
A sequence is written to OUT/.partial/ and moved into place when complete, so an interrupted
run resumes on the next call (finished sequences are skipped). Exit status: 0 every sequence
done; 1 some failed (the others are written); 2 bad arguments, input or model; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import List, Optional

from hmmn_ref.cli import parse_size

from ..runtime import BACKENDS
from ..runtime.errors import RuntimeInputError
from .models import ModelChoice, ModelError, open_session
from .sequence import SequenceError, SequenceOptions, SequenceRun
from .sources import InputError, discover


DEMO_SEED, DEMO_FRAMES, DEMO_SIZE = 4242, 24, (96, 128)  # the demo model works at its training size


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hmmn-run", description=__doc__.split("\n")[0])
    p.add_argument("input", nargs="?",
                   help="folder of frames, video file, DAVIS root or YouTube-VOS root (default: the demo, a "
                        "generated video with ground truth written to OUT/demo_input/, scored after the run)")
    p.add_argument("-o", "--out", required=True, help="output folder (created; reused to resume)")
    p.add_argument("--mask", help="first-frame label PNG (palette or greyscale), for a folder or a video file")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", help="checkpoint (default: the built-in demo model, trained on generated videos)")
    source.add_argument("--artifacts", help="an hmmn-export folder (graphs, engines, manifest)")
    source.add_argument("--random-weights", action="store_true",
                        help="random weights (the golden fill rule): the pipeline runs, the masks mean nothing")
    p.add_argument("--backend", choices=BACKENDS, default="onnxruntime")
    p.add_argument("--precision", choices=("fp32", "fp16"), help="default fp32, or the artifacts' precision")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="where torch / onnxruntime run (default cpu; tensorrt always runs on cuda)")
    p.add_argument("--config", choices=("paper", "small"),
                   help="model configuration of --weights / --random-weights (default paper; the demo model is small)")
    p.add_argument("--mem-every", type=int, help="keep every N-th frame in memory (default 5)")
    p.add_argument("--capacity", type=int, help="1/16 memory slots per object group (default 48, or the artifacts')")
    p.add_argument("--size", type=parse_size, help="process frames at HxW (masks are written at the frames' size)")
    p.add_argument("--imageset", help="DAVIS image set, e.g. 2017/val (default: every sequence)")
    p.add_argument("--sequences", nargs="+", help="only these sequences of a dataset")
    p.add_argument("--overlay", action="store_true", help="also write OUT/overlays/<sequence>.mp4")
    p.add_argument("--save-probs", action="store_true",
                   help="also write per-object probabilities, OUT/probs/<sequence>/<frame>.npz (uint8, p*255)")
    p.add_argument("--skip-bad-frames", action="store_true",
                   help="repeat the last mask for an unreadable frame (recorded in summary.json) instead of failing")
    p.add_argument("--max-frames", type=int, help="segment only the first N frames of each sequence")
    p.add_argument("--force", action="store_true", help="segment again sequences that are already done")
    p.add_argument("--threads", type=int, help="CPU threads for torch / ONNX Runtime")
    p.add_argument("--cache", help="folder for graphs exported on the fly (default ~/.cache/hmmn-deploy/graphs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def check_arguments(args) -> None:
    if args.mem_every is not None and args.mem_every < 1:
        raise InputError("--mem-every must be at least 1")
    if args.capacity is not None and args.capacity < 2:
        raise InputError("--capacity must be at least 2 (the first frame and the previous one)")
    if args.max_frames is not None and args.max_frames < 2:
        raise InputError("--max-frames must be at least 2")
    if os.path.isfile(args.out):
        raise InputError(f"--out {args.out!r} is a file; give a folder")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    demo_root = None
    try:
        check_arguments(args)
        if args.input is None:
            args.input = write_demo_input(os.path.join(args.out, "demo_input"))
            demo_root = args.input
        data = discover(args.input, args.mask, args.imageset, args.sequences)
        if args.max_frames:
            for s in data.sequences:
                s.truncate(args.max_frames)
    except InputError as exc:
        log(f"hmmn-run: error: {exc}")
        return 2
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    summary = load_summary(out)
    todo = [s for s in data.sequences if args.force or not os.path.isdir(os.path.join(out, s.name))]
    for s in data.sequences:
        if s not in todo:
            log(f"hmmn-run: {s.name}: already done in {os.path.join(out, s.name)}, skipped (--force to redo)")
    if not todo:
        log("hmmn-run: nothing to do")
        return 0

    choice = ModelChoice(backend=args.backend, precision=args.precision, config=args.config, weights=args.weights,
                         random_weights=args.random_weights, artifacts=args.artifacts, mem_every=args.mem_every,
                         capacity=args.capacity, threads=args.threads, cache=args.cache, device=args.device)
    # Engines are built for one size: the processing size, or the first video's own.
    engine_size = args.size or (first_frame_size(todo[0]) if args.backend == "tensorrt" else None)
    try:
        session, described = open_session(choice, engine_size, log)
    except ModelError as exc:
        log(f"hmmn-run: error: {exc}")
        return 2
    summary.update({"input": os.path.abspath(args.input), "kind": data.kind, **described})
    options = SequenceOptions(size=args.size, skip_bad_frames=args.skip_bad_frames, save_probs=args.save_probs,
                              overlay=args.overlay)
    log(f"hmmn-run: {len(todo)} of {len(data.sequences)} sequences ({data.kind}), {args.backend} "
        f"{session.precision} on {session.device.type}, {session.config.name} model -> {out}")
    code = run_sequences(session, todo, out, options, summary, progress=not args.no_progress)
    if demo_root and code == 0:
        score_demo(demo_root, out)
    return code


def write_demo_input(folder: str) -> str:
    """The built-in default: one generated video with ground truth, in the DAVIS layout
    (sequence 'demo', seed below the training seeds). -> the dataset root."""
    from ..demo.synthetic import write_davis

    if not os.path.isfile(os.path.join(folder, "ImageSets", "2017", "demo.txt")):
        write_davis(folder, [("demo", DEMO_SEED)], DEMO_FRAMES, *DEMO_SIZE, split="demo")
        log(f"hmmn-run: no INPUT given: the demo, a generated {DEMO_FRAMES}-frame {DEMO_SIZE[0]}x{DEMO_SIZE[1]} "
            f"video with ground truth, written to {folder}")
    return folder


def score_demo(root: str, out: str) -> None:
    """Print the demo's J&F against its ground truth."""
    from ..evaluate import evaluate

    report = evaluate(root, out, sequences=["demo"])
    log(f"hmmn-run: demo J&F {report.jf:.1f} (J {report.j:.1f}, F {report.f:.1f}) against the generated ground truth")


def first_frame_size(sequence):
    """H, W of a sequence's first frame (for engines built at the video's own size)."""
    from .reader import FrameReader

    with FrameReader(sequence, prefetch=1) as reader:
        for item in reader:
            return item.original_size
    return None


def run_sequences(session, todo, out: str, options: SequenceOptions, summary: dict, progress: bool) -> int:
    from tqdm import tqdm

    records = summary.setdefault("sequences", {})
    failed = 0
    total = tqdm(total=len(todo), desc="sequences", unit="seq", position=0, disable=not progress or len(todo) < 2)
    try:
        for sequence in todo:
            bar = tqdm(total=sequence.num_frames, desc=sequence.name, unit="frame", position=1, leave=False,
                       disable=not progress)
            try:
                record = SequenceRun(session, sequence, out, options, bar.update).run()
                log(f"hmmn-run: {sequence.name}: {record['frames']} frames, objects {record['objects']}, "
                    f"{record['fps']} frames/s (model), skipped {len(record['skipped_frames'])}")
            except (SequenceError, RuntimeInputError, OSError) as exc:
                failed += 1
                record = {"status": "failed", "error": str(exc)}
                log(f"hmmn-run: {sequence.name}: FAILED: {exc}")
            finally:
                bar.close()
            records[sequence.name] = record
            write_summary(out, summary)
            total.update(1)
    except KeyboardInterrupt:
        log(f"hmmn-run: interrupted; finished sequences are kept in {out}; run the same command again to resume")
        write_summary(out, summary)
        return 130
    finally:
        total.close()
    write_summary(out, summary)
    done = [r for r in records.values() if r.get("status") == "done"]
    log(f"hmmn-run: {len(todo) - failed} of {len(todo)} sequences done"
        + (f", {failed} FAILED (see summary.json)" if failed else "")
        + (f"; {summary['frames']} frames at {summary['fps']} frames/s" if done else ""))
    return 1 if failed else 0


def load_summary(out: str) -> dict:
    path = os.path.join(out, "summary.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                return json.load(f)
        except ValueError:
            log(f"hmmn-run: {path} is not JSON; starting a new one")
    return {}


def write_summary(out: str, summary: dict) -> None:
    """Totals over the finished sequences and peak memory, written atomically."""
    done = [r for r in summary.get("sequences", {}).values() if r.get("status") == "done"]
    frames = sum(r["frames"] for r in done)
    seconds = sum(r["model_seconds"] for r in done)
    stepped = sum(r["frames"] - 1 for r in done)
    summary.update({
        "frames": frames, "fps": round(stepped / seconds, 4) if seconds else None,
        "peak_host_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_device_memory_mb": _device_peak_mb(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    path = os.path.join(out, "summary.json")
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(path + ".tmp", path)


def _device_peak_mb() -> Optional[float]:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return None


if __name__ == "__main__":
    sys.exit(main())
