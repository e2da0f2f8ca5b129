"""`hmmn-export`: four ONNX graphs, validated against hmmn_ref, TensorRT engines, a manifest.

The output folder appears complete or not at all: everything is written to a temporary
folder beside it and renamed at the end. Exit status: 0 done; 1 validation or audit failed
(the files are kept in OUT.failed for inspection) or a graph could not be exported (nothing
is kept); 2 bad arguments, weights or size; 3 engines were asked for but could not be built
(the ONNX files and the manifest are written, with the reason).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Dict, List, Optional


import hmmn_ref
from hmmn_ref.checkpoint import CheckpointError
from hmmn_ref.cli import parse_size
from hmmn_ref.video import grid_16, padding_for

from .. import demo
from . import audit, engines, manifest
from .contracts import GRAPH_NAMES, PRECISIONS, graph_specs
from .graphs import build_graph
from .onnx_export import OPSET, ExportError, export_graph
from .ort_runner import OrtGraphs
from .validate import OutputCheck, case_dims, reference_cases, sample_clip, validate_graph, validate_video

# The teacher-forced video check, (decision margin, minimum mask agreement on the pixels the
# reference decides by more than the margin). FP32 graphs must reproduce hmmn_ref: a margin
# of 1e-3 is the spec's probability tolerance. The FP16 plan moves probabilities by up to
# ~0.1 on random weights: it is measured against FP32 (printed), and only pixels decided by
# more than 0.1 are held to 99%, a sanity bar that catches broken graphs, not an accuracy claim.
VIDEO_GATES = {"fp32": (1e-3, 0.999), "fp16": (0.1, 0.99)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hmmn-export", description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", help="checkpoint (the published HMMN_weights.pth, or one of this project; "
                                          "default: the built-in demo model, small configuration)")
    source.add_argument("--random-weights", action="store_true",
                        help="deterministic random weights (the golden fill rule), for tests and demos")
    p.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--config", choices=sorted(hmmn_ref.CONFIGS),
                   help="model configuration (default: paper with --weights or --random-weights, small for the demo model)")
    p.add_argument("--size", type=parse_size, default=(480, 854),
                   help="video size HxW the engines and the validation use (default 480x854)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--max-objects", type=int, default=8, help="engine profile: objects 1..N (default 8)")
    p.add_argument("--capacity", type=int, default=48,
                   help="engine profile: 1/16 memory slots 1..S (default 48: the public protocol on videos up to "
                        "237 frames with --mem-every 5)")
    p.add_argument("--mem-every", type=int, default=5)
    p.add_argument("--engines", action="store_true", help="also build TensorRT engines (needs tensorrt and a GPU)")
    p.add_argument("--timing-cache", default=None,
                   help="TensorRT timing cache (default ~/.cache/hmmn-deploy/timing-<gpu>-trt<version>.cache)")
    p.add_argument("--check-frames", type=int, default=6, help="frames of the chained video check (default 6)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    return p


def resolve_source(args) -> None:
    """No --weights and no --random-weights: the built-in demo model (small configuration)."""
    if args.weights or args.random_weights:
        args.config = args.config or "paper"
        return
    if args.config not in (None, demo.DEMO_CONFIG):
        raise ValueError(f"the built-in demo model is the {demo.DEMO_CONFIG} configuration; for --config "
                         f"{args.config} give --weights or --random-weights")
    args.config = demo.DEMO_CONFIG
    try:
        args.weights = demo.weights_path()
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    log(f"hmmn-export: no --weights: exporting {demo.DESCRIPTION}")


def check_arguments(args) -> None:
    resolve_source(args)
    cfg = hmmn_ref.get_config(args.config)
    h, w = grid_16(*args.size)
    if h * w < cfg.min_cells_16:
        raise ValueError(f"size {args.size[0]}x{args.size[1]} has {h * w} cells on the 1/16 grid; "
                         f"the {args.config} model needs at least {cfg.min_cells_16}")
    if args.max_objects < 1 or args.capacity < 2 or args.mem_every < 1 or args.check_frames < 3:
        raise ValueError("need --max-objects >= 1, --capacity >= 2, --mem-every >= 1 and --check-frames >= 3")
    if os.path.exists(args.out) and not args.overwrite:
        raise ValueError(f"{args.out!r} exists; choose another --out or pass --overwrite")


def load_model(args) -> hmmn_ref.HMMN:
    model = hmmn_ref.HMMN(hmmn_ref.get_config(args.config))
    if args.random_weights:
        return hmmn_ref.fill_golden_weights(model)
    return hmmn_ref.load_weights(model, args.weights)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        model = load_model(args)
    except (ValueError, CheckpointError) as exc:
        log(f"hmmn-export: error: {exc}")
        return 2
    out = os.path.abspath(args.out)
    work = f"{out}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        return run_export(args, model, out, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def run_export(args, model: hmmn_ref.HMMN, out: str, work: str) -> int:
    started = time.perf_counter()
    specs = graph_specs(model.config, args.precision)
    graph_files: Dict[str, dict] = {}
    onnx_models = {}
    log(f"hmmn-export: {model.config.name} model, {args.precision}, {args.size[0]}x{args.size[1]} -> {out}")
    for i, name in enumerate(GRAPH_NAMES, start=1):
        t0 = time.perf_counter()
        log(f"[{i}/4] exporting {name} ...")
        try:
            onnx_models[name] = export_graph(build_graph(name, model, args.precision), specs[name],
                                             os.path.join(work, f"{name}.onnx"))
        except ExportError as exc:
            log(f"hmmn-export: error: {exc}")
            shutil.rmtree(work, ignore_errors=True)
            return 1
        graph_files[name] = manifest.file_entry(work, f"{name}.onnx")
        log(f"      {graph_files[name]['bytes'] / 2**20:.1f} MiB in {time.perf_counter() - t0:.1f} s")

    log("TensorRT 10 compatibility audit (no GPU needed):")
    findings = audit.audit_models(onnx_models)
    for name, items in findings.items():
        log(f"  {'PASS' if not items else 'FAIL'}  {name}: {len(onnx_models[name].graph.node)} nodes"
            + "".join(f"\n        {f}" for f in items))
    audit_ok = not any(findings.values())

    log(f"validation on ONNX Runtime (CPU) against hmmn_ref at {args.size[0]}x{args.size[1]}:")
    checks, video = validate_all(args, model, specs, work)
    validation_ok = all(c.passed for c in checks) and video.passed

    engine_info = {"built": False, "reason": "not requested (--engines)", "target": None, "files": {}}
    exit_code = 0
    if args.engines and audit_ok and validation_ok:
        reason = engines.tensorrt_unavailable_reason()
        if reason:
            log(f"engines not built: {reason}. The ONNX graphs and the manifest are written.")
            engine_info["reason"] = reason
            exit_code = 3
        else:
            try:
                files = engines.build_engines(work, specs, args.size, args.max_objects, args.capacity,
                                              args.timing_cache or engines.default_cache_path(), log=log)
                engine_info = {"built": True, "reason": "", "target": engines.gpu_target(),
                               "files": {g: {**manifest.file_entry(work, e["file"]), "profile": e["profile"]}
                                         for g, e in files.items()}}
            except Exception as exc:  # parser, builder or CUDA errors: keep the validated graphs
                log(f"engines not built: {exc}. The ONNX graphs and the manifest are written.")
                engine_info["reason"] = f"build failed: {exc}"
                for name in specs:
                    partial = os.path.join(work, f"{name}.engine")
                    if os.path.exists(partial):
                        os.remove(partial)
                exit_code = 3

    record = manifest.build_manifest(
        config=model.config, weights_source=args.weights or "golden fill rule (random)",
        weights_sha256=manifest.weights_sha256(model), size=args.size, pad=padding_for(*args.size),
        precision=args.precision, mem_every=args.mem_every, capacity=args.capacity,
        max_objects=args.max_objects, specs=specs, graph_files=graph_files, opset=OPSET,
        engines=engine_info, validation=validation_record(checks, video, findings),
    )
    manifest.write_manifest(work, record)
    print_summary(specs, graph_files, checks, args.precision, video)

    if not (audit_ok and validation_ok):
        failed = f"{out}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.replace(work, failed)
        log(f"hmmn-export: validation or audit FAILED; nothing written to {out}; files kept in {failed}")
        return 1
    publish(work, out)
    log(f"hmmn-export: done in {time.perf_counter() - started:.0f} s -> {out}")
    return exit_code


def validate_all(args, model, specs, work):
    frames, labels = sample_clip(*args.size, num_frames=args.check_frames)
    inputs, expected = reference_cases(model, frames, labels[0])
    dims = case_dims(labels[0], num_objects=int(labels[0].max()))
    run = OrtGraphs(work, specs)
    checks: List[OutputCheck] = []
    for name in GRAPH_NAMES:
        for check in validate_graph(specs[name], run, inputs[name], expected[name], dims):
            log("  " + check.line())
            checks.append(check)
    log(f"  running the chained graphs over a {args.check_frames}-frame clip (teacher-forced) ...")
    margin, min_agreement = VIDEO_GATES[args.precision]
    video = validate_video(model, run, frames, labels[0], args.mem_every, min_agreement=min_agreement, margin=margin,
                           measure_floor=args.precision == "fp32")  # the FP16 gate is against FP32, not rounding
    label = "FP16 plan vs FP32 hmmn_ref" if args.precision == "fp16" else "chained graphs vs hmmn_ref.run_video"
    log("  " + video.line(label))
    return checks, video


def validation_record(checks, video, findings) -> dict:
    return {
        "graphs": {c.graph + "." + c.output: {"measured": c.measured, "tolerance": c.tolerance, "passed": c.passed}
                   for c in checks},
        "video": {"frames": video.frames, "agreement": video.agreement, "decided_fraction": video.decided_fraction,
                  "decided_agreement": video.decided_agreement, "margin": video.margin, "max_dp": video.max_dp,
                  "max_rel_dl": video.max_rel_dl, "min_agreement": video.min_agreement, "passed": video.passed,
                  "frame_agreement": video.frame_agreement, "floor_agreement": video.floor_agreement,
                  "at_floor": video.at_floor},
        "audit": {name: [str(f) for f in items] for name, items in findings.items()},
    }


def print_summary(specs, graph_files, checks, precision, video) -> None:
    log("")
    log(f"{'graph':<14} {'file':<20} {'size':>10}  {'parity':<34} precision")
    for name in specs:
        mine = [c for c in checks if c.graph == name]
        worst = max(mine, key=lambda c: (not c.passed, 0))
        status = "PASS" if all(c.passed for c in mine) else "FAIL"
        parity = f"{status} {len(mine)} outputs"
        if not worst.passed:
            parity += f" ({worst.output})"
        log(f"{name:<14} {graph_files[name]['file']:<20} {graph_files[name]['bytes'] / 2**20:>7.1f} MiB  "
            f"{parity:<34} {precision}")
    floor = "" if video.floor_agreement is None else f", hmmn_ref vs itself {video.floor_agreement * 100:.3f}%"
    log(f"{'video':<14} {'':<20} {'':>10}  {'PASS' if video.passed else 'FAIL'} agreement "
        f"{video.decided_agreement * 100:.3f}% (decided pixels), {video.agreement * 100:.3f}% (all){floor}")


def publish(work: str, out: str) -> None:
    """Move the finished folder into place; an existing one (with --overwrite) goes only then."""
    if os.path.exists(out):
        old = f"{out}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, out)


if __name__ == "__main__":
    sys.exit(main())
