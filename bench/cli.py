"""`hmmn-bench`: per-stage latency of the runtime, against the public code's way of running.

    hmmn-bench --size 480x854 --objects 2 --frames 10 --compare --json
    hmmn-bench --random-weights --config paper --compare \
        --run onnxruntime:fp32 openvino:fp32 openvino:bf16 openvino:int8

Warm-up frames, then timed frames; per stage the median, p90, p99, min and max; frames per
second; memory; FLOPs per frame counted from the graphs and the rate achieved. `--compare`
runs every backend / precision asked for and the baseline (hmmn_ref's eager loop, the public
evaluation protocol) in one process, interleaved frame by frame, prints speed ratios against
the baseline and checks that the masks agree. `--run BACKEND:PRECISION ...` names the runs
one by one (openvino's precisions: fp32, bf16, int8 on the FP32 graphs); `--backend` x
`--precision` is the cross product, without the pairs a backend does not have. The rate of each
stage is given against the CPU's peak for the run's precision (bench/machine.py: computed per
microarchitecture, and a matrix-product probe beside it). `--json` prints one JSON object on
standard output; everything else goes to standard error.

`--versus WEIGHTS[:CONFIG]` (or `--versus builtin`, the default built-in model, or `builtin:small`) times a second model with the same runs,
interleaved with the first: each model on the frames resized to the size hmmn-run processes them at
for that model, its runs named after it, its masks compared within its own runs.

    hmmn-bench --versus builtin:small --size 480x640 \
        --run onnxruntime:fp32 openvino:fp32
"""

from __future__ import annotations

import argparse
import json
import resource
from typing import List, Optional

import numpy as np

import hmmn_ref
from hmmn_ref import matching, protocol, shell
from hmmn_ref.errors import Exit, UsageError
from hmmn_ref.sample_video import make_sample_video
from hmmn_ref.shell import parse_size

from ..runtime import BACKENDS
from ..core.report_page import check_folder
from ..models import ModelChoice, load_model, open_session, resolve_weights
from . import machine, public_matching, scaling
from . import report as html_report
from .flops import FlopModel
from .runs import BaselineRun, SessionRun, summarise
from .timing import StageTimer


log = shell.Logger("hmmn-bench")


def build_parser() -> argparse.ArgumentParser:
    p = shell.parser("hmmn-bench", __doc__)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--artifacts", help="an hmmn-export folder")
    source.add_argument("--weights", help="checkpoint (default: the built-in mobile model; --config small the small one)")
    source.add_argument("--random-weights", action="store_true", help="random weights (golden fill rule)")
    p.add_argument("--config", choices=sorted(hmmn_ref.CONFIGS),
                   help="with --weights / --random-weights (default paper); without them, which built-in model "
                        "(mobile, the default, or small)")
    p.add_argument("--backend", nargs="+", choices=BACKENDS, default=["onnxruntime"])
    p.add_argument("--precision", nargs="+", choices=PRECISIONS, default=None,
                   help="default fp32 (or the artifacts' precision); openvino's default is auto (its rule: "
                        "docs/openvino.md); bf16 and int8 are openvino's")
    p.add_argument("--run", nargs="+", metavar="BACKEND:PRECISION", type=parse_run,
                   help="the runs one by one, e.g. onnxruntime:fp32 openvino:bf16 (instead of --backend x --precision)")
    p.add_argument("--device", choices=("cpu", "cuda", "CPU", "GPU", "NPU"),
                   help="where torch / onnxruntime and the baseline run (default cpu; tensorrt: cuda); "
                        "openvino's device (CPU, GPU, NPU; cpu is CPU)")
    p.add_argument("--no-probe", action="store_true", help="skip the matrix-product probe of the CPU's rate")
    p.add_argument("--baseline-matching", choices=("public", "current"), default="public",
                   help="the baseline's memory reads: the public code's formulation (default; bench/public_matching.py) "
                        "or hmmn_ref's current, faster one")
    p.add_argument("--accuracy", type=int, metavar="N", default=0,
                   help="also J&F of onnxruntime fp32 and openvino fp32 / bf16 / int8 on the small built-in model, "
                        "N generated videos with ground truth (against openvino fp32)")
    p.add_argument("--size", type=parse_size, default=None,
                   help="the size to time at, HxW: a generated clip's size, or --input's frames resized to it "
                        "(default: a 480x854 clip, or --input's own size; either timed at the size hmmn-run processes "
                        "it at when the weights' record gives trained sizes, as the built-in models' do)")
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--frames", type=int, default=10, help="timed frames (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames first (default 2)")
    p.add_argument("--capacity", type=int, help="1/16 memory slots (default "
                   f"{protocol.DEFAULT_CAPACITY}, or the artifacts')")
    p.add_argument("--mem-every", type=int, help="keep every N-th frame in memory (default "
                   f"{protocol.DEFAULT_MEM_EVERY}, or the artifacts')")
    p.add_argument("--input", help="a video file to read frames from (default: a generated clip)")
    p.add_argument("--mask", help="first-frame label PNG for --input (default: --objects boxes)")
    p.add_argument("--versus", type=parse_versus, metavar="WEIGHTS[:CONFIG]",
                   help="also time this model (a checkpoint, its configuration after a colon; 'builtin' for the "
                        "default built-in model (mobile), 'builtin:small' for the small one) with the same runs, interleaved")
    p.add_argument("--compare", action="store_true", help="add the baseline (hmmn_ref.run_video's loop), interleaved")
    p.add_argument("--json", action="store_true", help="one JSON object on standard output")
    p.add_argument("--scaling", help="also measure latency and memory against slots, objects and sizes; "
                                     "write the table and a PNG plot into this folder")
    p.add_argument("--scaling-sizes", nargs="+", type=parse_size, default=None,
                   help="sizes for --scaling (default: half and full --size)")
    p.add_argument("--report", metavar="DIR", help="also write an HTML report, DIR/index.html (bench/report.py)")
    p.add_argument("--profile", help="write a per-operator profile of the slowest stage into this folder")
    p.add_argument("--threads", type=int, help="CPU threads for torch and ONNX Runtime (default: all cores)")
    p.add_argument("--cache", help="folder for graphs exported on the fly")
    return p


PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")


def parse_run(text: str):
    backend, _, precision = text.partition(":")
    if backend not in BACKENDS:
        raise argparse.ArgumentTypeError(f"{text!r}: backend {backend!r} is not one of {BACKENDS}")
    if precision and precision not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"{text!r}: precision {precision!r} is not one of {PRECISIONS}")
    return backend, precision or None


BUILTIN = "builtin"


def parse_versus(text: str):
    """'builtin' -> (None, None), the default built-in model; 'builtin:mobile' -> (None, 'mobile');
    'W.pth' -> ('W.pth', None); 'W.pth:mobile' -> ('W.pth', 'mobile')."""
    if text == BUILTIN:
        return None, None
    weights, _, config = text.rpartition(":")
    if config in hmmn_ref.CONFIGS and weights:
        return (None if weights == BUILTIN else weights), config
    return text, None


def model_label(weights: Optional[str], config: Optional[str]) -> str:
    """How a model's runs are named beside another model's: 'built-in mobile' (or small), or the
    checkpoint's file name and its configuration."""
    if not weights:
        from ..demo import DEMO_CONFIG

        return f"built-in {config or DEMO_CONFIG}"
    import os

    return f"{os.path.basename(weights)} ({config or 'paper'})"


def run_pairs(args) -> list:
    """-> [(backend, precision or None)]: --run as given, else --backend x --precision without the
    pairs a backend does not have (bf16 / int8 are openvino's; openvino has no fp16)."""
    if args.run:
        return list(args.run)
    pairs = []
    for backend in args.backend:
        for precision in args.precision or [None]:
            if precision in ("bf16", "int8") and backend != "openvino" or precision == "fp16" and backend == "openvino":
                log(f"{backend} has no {precision}: skipped")
                continue
            pairs.append((backend, precision))
    return pairs


def load_frames(args):
    """-> frames uint8 [W+T+1, H, W, 3], first mask [H, W]."""
    count = args.warmup + args.frames + 1
    if not args.input:
        frames, labels = make_sample_video(num_frames=count, height=args.size[0], width=args.size[1],
                                           num_objects=args.objects, seed=0)
        return frames, labels[0]
    from hmmn_ref.media import read_frames, read_mask

    frames = read_frames(args.input, count)
    if len(frames) < count:
        raise ValueError(f"{args.input!r} has {len(frames)} frames; --warmup + --frames + 1 = {count} are needed")
    if args.mask:
        mask, _ = read_mask(args.mask)
        if mask.shape != frames.shape[1:3]:
            raise ValueError(f"mask is {mask.shape[0]}x{mask.shape[1]} but the frames are "
                             f"{frames.shape[1]}x{frames.shape[2]}")
        return frames, mask
    mask = np.zeros(frames.shape[1:3], np.uint8)
    h, w = mask.shape
    for i in range(args.objects):  # boxes side by side
        mask[h // 3 : 2 * h // 3, (2 * i + 1) * w // (2 * args.objects + 1) : (2 * i + 2) * w // (2 * args.objects + 1)] = i + 1
    return frames, mask


def working_frames(args, weights, config, frames, mask):
    """The frames and mask at the size to time (timing_size), resized once as hmmn-run resizes
    them. -> frames, mask, summary record (None when nothing changed)."""
    from ..core.resize import resize_frame, resize_labels

    chosen = timing_size(args, weights, config, tuple(frames.shape[1:3]))
    if chosen is None:
        return frames, mask, None
    size, record = chosen
    return np.stack([resize_frame(f, size) for f in frames]), resize_labels(mask, size), record


def timing_size(args, weights, config, frame_size):
    """--size when given and the frames (--input's) differ from it; else, for weights whose record
    gives trained sizes (the built-in model's when `weights` is None), the size hmmn-run processes
    frames of frame_size at (core.working_size). Said in one line. -> (size, summary record), or
    None: time the frames as they are."""
    from ..models.working_size import for_run

    h, w = frame_size
    if args.size_given:
        size = tuple(args.size)
        if frame_size == size:  # a generated clip, made at --size
            return None
        log(f"--size {size[0]}x{size[1]}: timing the {h}x{w} frames of --input resized to {size[0]}x{size[1]}, "
            "as hmmn-run --size processes them")
        return size, {"source": "--size", "frames": [h, w], "processing_size": list(size)}
    if args.random_weights or args.artifacts:
        return None
    working = for_run(weights, config=config)
    size = working.size_for(frame_size) if working else None
    if size is None:
        return None
    log(f"the weights' record gives {working.sentence()}: timing at {size[0]}x{size[1]}, the size "
        f"hmmn-run processes {h}x{w} frames at (--size HxW times another)")
    return size, {**working.describe(), "frames": [h, w], "processing_size": list(size)}


def build_runs(args, frames, mask, weights, config, label: str = "") -> list:
    """The runs of one model: --run's backends and precisions (and with --compare the baseline);
    `label` prefixes their names (a model beside another, --versus)."""
    runs = []
    for backend, precision in run_pairs(args):
        device = args.device
        if backend == "openvino" and device in ("cpu", None):
            device = None  # OpenVINO's CPU
        elif backend != "openvino" and device in ("CPU", "GPU", "NPU"):
            device = "cpu" if device == "CPU" else None
        choice = ModelChoice(backend=backend, precision=precision, config=config, weights=weights,
                             random_weights=args.random_weights, artifacts=args.artifacts,
                             mem_every=args.mem_every, capacity=args.capacity, threads=args.threads,
                             cache=args.cache, device=device)
        session, described = open_session(choice, frames.shape[1:3], log,
                                          timer=StageTimer())
        compute = described["precision"]  # openvino: its compute precision on the FP32 graphs
        name = f"{label}{backend} {compute}"
        runs.append(SessionRun(name, session, backend, compute, described["graphs"]))
    if args.mem_every is None:  # the export's (its manifest's), or the protocol's default: what the runs use
        args.mem_every = runs[0].session.mem_every if runs else protocol.DEFAULT_MEM_EVERY
    if args.compare:
        # The baseline runs where the sessions do: on the GPU when any backend is on one.
        on_gpu = any(r.session.device.type == "cuda" for r in runs)
        reads = public_matching.READS if args.baseline_matching == "public" else matching.READS
        baseline = BaselineRun(reference_model(args, weights, config), frames, mask, args.mem_every,
                               "cuda" if on_gpu else "cpu", reads)
        baseline.name = label + baseline.name
        runs.insert(0, baseline)
    return runs


def reference_model(args, weights, config):
    """The eager model with the weights the runs use."""
    if args.artifacts:
        from ..export import manifest as manifest_io
        from ..models import torch_model_for

        choice = ModelChoice(backend="torch", artifacts=args.artifacts, weights=weights)
        return torch_model_for(manifest_io.read_manifest(args.artifacts), choice)
    config, weights, _ = resolve_weights(ModelChoice(config=config, weights=weights,
                                                     random_weights=args.random_weights))
    return load_model(config, weights)


def main(argv: Optional[List[str]] = None) -> int:
    return shell.main(build_parser, bench, log, argv)


def bench(args) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.frames < 1 or args.warmup < 0 or args.objects < 1:
        raise UsageError("need --frames >= 1, --warmup >= 0 and --objects >= 1")
    problem = protocol.settings_problem(True, mem_every=args.mem_every, capacity=args.capacity)
    if problem:
        raise UsageError(problem)
    args.size_given, args.size = args.size is not None, args.size or (480, 854)
    if args.report:
        check_folder(args.report)  # before minutes of timing
    if args.versus and (args.artifacts or args.random_weights):
        raise UsageError("--versus compares two checkpoints (or one and the built-in model): give --weights "
                         "or nothing (the built-in model), not --artifacts or --random-weights")
    if args.versus and (args.scaling or args.profile):
        raise UsageError("--versus times whole frames of two models; run --scaling or --profile for one model")
    generated, first_mask = load_frames(args)
    models = [(args.weights, args.config)] + ([args.versus] if args.versus else [])
    groups = []  # per model: (label, runs, frames, mask, working-size record)
    for weights, config in models:
        label = f"{model_label(weights, config)}: " if args.versus else ""
        frames, mask, working = working_frames(args, weights, config, generated, first_mask)
        groups.append((label, build_runs(args, frames, mask, weights, config, label), frames, mask, working))
    runs = [run for group in groups for run in group[1]]
    import torch

    threads = torch.get_num_threads()
    for label, model_runs, frames, mask, _ in groups:
        log(f"{label}{len(model_runs)} runs, {frames.shape[1]}x{frames.shape[2]}, {len(np.unique(mask)) - 1} objects, "
            f"{args.warmup} warm-up + {args.frames} timed frames, {threads} threads")
    masks = time_runs(args, [(run, frames, mask) for _, model_runs, frames, mask, _ in groups for run in model_runs])
    result = report(args, [group[1] for group in groups], masks, threads, len(np.unique(first_mask)) - 1)
    if groups[0][4]:
        result["settings"]["working_size"] = groups[0][4]
    if args.versus:
        result["settings"]["models"] = [
            {"label": label.rstrip(": "), "runs": [run.name for run in model_runs], "mask_reference": model_runs[0].name,
             "processing_size": list(frames.shape[1:3]), "working_size": working}
            for label, model_runs, frames, _, working in groups]
    if args.profile:
        from .profile import profile_slowest_stage

        result["profile"] = profile_slowest_stage(next(r for r in runs if isinstance(r, SessionRun)),
                                                  frames, mask, args.profile, log)
    if args.scaling:
        result["scaling"] = scaling.run_scaling(args, log)
    print_table(result)
    if args.accuracy:
        from .accuracy import demo_accuracy, print_accuracy

        result["accuracy"] = demo_accuracy(args.accuracy, args.threads, args.cache, log)
        print_accuracy(result["accuracy"], log)
    if args.json:
        print(json.dumps(result, indent=2))
    if args.report:
        log(f"report written: {html_report.write_report(args.report, result)} (open it in a browser)")
    return Exit.DONE


def time_runs(args, runs) -> dict:
    """Every run over its frames, interleaved: each does frame i before any does i + 1.
    runs: [(run, frames [T, H, W, 3], first mask)] (the same T for all).
    -> run name -> the timed frames' label maps."""
    for run, frames, mask in runs:
        run.start(frames[0], mask)
    masks = {run.name: [] for run, _, _ in runs}
    count = len(runs[0][1])
    for i in range(count - 1):
        timed = i >= args.warmup
        for run, frames, _ in runs:
            labels = run.step(frames[i + 1], timed)
            if timed:
                masks[run.name].append(labels)
        if timed:
            log.detail(f"  frame {i + 1}/{count - 1}: "
                       + ", ".join(f"{run.name} {run.frame_seconds[-1] * 1000:.0f} ms" for run, _, _ in runs))
        else:
            log.detail(f"  frame {i + 1}/{count - 1}: warm-up (not timed)")
    return masks


def flop_model_of(runs) -> Optional[FlopModel]:
    """FLOPs per frame and stage of one model's graphs at its runs' size (None without graphs)."""
    first = next((r for r in runs if isinstance(r, SessionRun) and r.graphs), None)
    if first is None:
        return None
    h, w = first.state.dims["H"], first.state.dims["W"]
    return FlopModel(first.graphs, first.session.specs, h, w, len(first.state.object_ids))


def report(args, groups, masks, threads: int, objects: int) -> dict:
    """groups: per model, its runs (the first one the reference of its masks and speed ratios)."""
    entries, ratios = [], {}
    for runs in groups:
        flop_model = flop_model_of(runs)
        model_entries = [summarise(run, flop_model) for run in runs]
        reference = runs[0].name
        for entry in model_entries:
            same = [np.mean(a == b) for a, b in zip(masks[entry["name"]], masks[reference])]
            entry["mask_agreement"] = round(100 * float(np.mean(same)), 4)
        if args.compare:
            base = model_entries[0]["median_ms"]
            ratios.update({e["name"]: round(base / e["median_ms"], 3) for e in model_entries[1:]})
        entries += model_entries
    reference = groups[0][0].name
    machine_info = machine.describe(threads, probe=not getattr(args, "no_probe", False), log=log)
    machine_info["peak_host_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    settings = {"size": list(args.size), "objects": objects, "frames": args.frames, "warmup": args.warmup,
                "mem_every": args.mem_every, "interleaved": True, "mask_reference": reference,
                "baseline_matching": getattr(args, "baseline_matching", "public") if args.compare else None}
    return {"machine": machine_info, "settings": settings, "runs": entries, "ratios": ratios}


def print_table(result: dict) -> None:
    peaks = result["machine"].get("cpu_peak_gflops") or {}
    log.detail("")
    log.detail(f"{'run':<32} {'median ms':>10} {'p90':>9} {'min':>9} {'max':>9} {'fps':>7} {'GFLOP/s':>8} "
               f"{'state MB':>9} {'agree %':>8} {'speed-up':>8}")
    for e in result["runs"]:
        ratio = result["ratios"].get(e["name"])
        log.detail(f"{e['name']:<32} {e['median_ms']:>10.1f} {e['p90_ms']:>9.1f} {e['min_ms']:>9.1f} {e['max_ms']:>9.1f} "
                   f"{e['fps']:>7.3f} {e.get('achieved_gflops', float('nan')):>8.1f} "
                   f"{e['peak_mem_mb'] if e['peak_mem_mb'] is not None else '-':>9} {e['mask_agreement']:>8.3f} "
                   f"{(f'{ratio:.2f}x' if ratio else '-'):>8}")
        for stage, s in e["stages"].items():
            rate = s.get("achieved_gflops")
            plan = e.get("stage_precisions")
            against = machine.stage_peak(peaks, e.get("precision"), stage, plan)
            share = f"{rate / against * 100:.1f}% of {machine.stage_precision(e.get('precision'), stage, plan)} peak" \
                if rate and against else ""
            log.detail(f"    {stage:<28} {s['median_ms']:>10.1f} {s['p90_ms']:>9.1f} {s['min_ms']:>9.1f} {s['max_ms']:>9.1f}"
                       f" {'':>7} {rate if rate else '':>8} {share}")
    m = result["machine"]
    if peaks.get("fp32"):
        per_cycle = m.get("ops_per_cycle_per_core", {})
        log.detail(f"(CPU peak per native precision, {m['threads']} threads x {m.get('clock_ghz')} GHz "
                   f"({m.get('clock_source')}) x operations per cycle per core of {m.get('microarchitecture')} "
                   f"({m.get('ops_per_cycle_source')}): "
                   + ", ".join(f"{p} {per_cycle.get(p)} -> {v} GFLOP/s" for p, v in peaks.items())
                   + "; each stage's % is against the precision it computes in: its run's, match always FP32, and "
                   "OpenVINO's FP32 graphs FP32)")
    if m.get("matmul_probe"):
        log.detail(f"(matrix-product probe, torch {m.get('torch')}, time-bounded: "
                   + ", ".join(f"{p} {r['gflops']} GFLOP/s at {r['size']}x{r['size']} (best of {r['repeats']})"
                        for p, r in m["matmul_probe"].items()) + ")")
    if m.get("load_average"):
        log.detail(f"(load average when the report was made: {' '.join(str(x) for x in m['load_average'])}; "
                   f"{m.get('cpu_count')} CPUs)")
