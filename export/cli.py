"""`hmmn-export`: four ONNX graphs, validated against hmmn_ref, TensorRT engines, a manifest.

The output folder appears complete or not at all: everything is written to a temporary
folder beside it and renamed at the end. Exit status: 0 done; 1 validation or audit failed
(the files are kept in OUT.failed for inspection) or a graph could not be exported (nothing
is kept); 2 bad arguments, weights or size; 3 engines were asked for but could not be built
(the ONNX files and the manifest are written, with the reason); 130 interrupted (nothing written).
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
from hmmn_ref.video import cells_16, padding_for

from .. import demo
from ..core import tensorrt_lib
from . import manifest, tensorrt_step
from ..core.contracts import GRAPH_NAMES, PRECISIONS, graph_specs
from ..core.graphs import build_graph
from .onnx_export import OPSET, ExportError, export_graph
from ..runtime.backends import OnnxRuntimeBackend
from ..runtime.errors import ArtifactMismatch
from .validate import NameMismatch, OutputCheck, case_dims, reference_cases, sample_clip, validate_graph, validate_video

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
    p.add_argument("--engines", action="store_true",
                   help="also build TensorRT engines (tensorrt-rtx builds them without a GPU)")
    p.add_argument("--builder", choices=tensorrt_lib.BUILDER_CHOICES, default="auto",
                   help="engine builder: tensorrt (enterprise, on the GPU the engines are for), tensorrt-rtx (any "
                        "machine, no GPU needed), auto (default: tensorrt when it sees a GPU, else tensorrt-rtx)")
    p.add_argument("--gpu-arch", type=tensorrt_lib.parse_gpu_arch, default=None, metavar="LIST",
                   help="tensorrt-rtx: compute capabilities the engines target, e.g. 8.6,8.9,12.0 (default: its "
                        "portable set 8.0, 8.6, 8.9, 12.0 and later)")
    p.add_argument("--timing-cache", default=None,
                   help="enterprise TensorRT's timing cache (default ~/.cache/hmmn-deploy/timing-<gpu>-trt<version>"
                        ".cache; tensorrt-rtx has none)")
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
    cells = cells_16(*args.size)
    if cells < cfg.min_cells_16:
        raise ValueError(f"size {args.size[0]}x{args.size[1]} has {cells} cells on the 1/16 grid; "
                         f"the {args.config} model needs at least {cfg.min_cells_16}")
    if args.max_objects < 1 or args.capacity < 2 or args.mem_every < 1 or args.check_frames < 3:
        raise ValueError("need --max-objects >= 1, --capacity >= 2, --mem-every >= 1 and --check-frames >= 3")
    if os.path.exists(args.out) and not args.overwrite:
        raise ValueError(f"{args.out!r} exists; choose another --out or pass --overwrite")
    if os.path.exists(args.out) and not _is_export(args.out):
        raise ValueError(f"--overwrite would delete {args.out!r}, which is not an hmmn-export folder (no manifest of "
                         "ours in it); choose another --out, or remove it yourself")
    if args.gpu_arch and args.builder == "tensorrt":
        raise ValueError("--gpu-arch picks TensorRT-RTX's targets; enterprise TensorRT builds for the GPU it runs on")
    if (args.gpu_arch or args.builder != "auto") and not args.engines:
        raise ValueError("--builder and --gpu-arch choose how engines are built: add --engines")


def _is_export(folder: str) -> bool:
    try:
        manifest.read_manifest(folder)
    except (OSError, ValueError):  # no manifest, another format, or an older schema of ours
        return os.path.isfile(os.path.join(folder, manifest.FILE_NAME)) and _names_our_format(folder)
    return True


def _names_our_format(folder: str) -> bool:
    try:
        with open(os.path.join(folder, manifest.FILE_NAME)) as f:
            return f'"{manifest.FORMAT}"' in f.read(4096)
    except OSError:
        return False


def load_model(args) -> hmmn_ref.HMMN:
    model = hmmn_ref.HMMN(hmmn_ref.get_config(args.config))
    if args.random_weights:
        return hmmn_ref.fill_golden_weights(model)
    return hmmn_ref.load_weights(model, args.weights)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        # The builder is chosen before the long work: a bad --gpu-arch is refused at once (exit 2); a
        # missing TensorRT is reported now, and the graphs are still exported and checked (exit 3).
        builder = tensorrt_step.choose_builder(args.builder, args.gpu_arch) if args.engines else None
        model = load_model(args)
    except (ValueError, CheckpointError) as exc:
        log(f"hmmn-export: error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("hmmn-export: interrupted; nothing was written")
        return 130
    out = os.path.abspath(args.out)
    work = f"{out}.partial-{os.getpid()}"
    try:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    except OSError as exc:
        log(f"hmmn-export: error: cannot write beside {out!r} ({exc.strerror}); choose another --out")
        return 2
    try:
        return run_export(args, model, out, work, builder)
    except KeyboardInterrupt:
        shutil.rmtree(work, ignore_errors=True)
        log(f"hmmn-export: interrupted; nothing was written to {out}")
        return 130
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def run_export(args, model: hmmn_ref.HMMN, out: str, work: str, builder) -> int:
    started = time.perf_counter()
    specs = graph_specs(model.config, args.precision)
    graph_files: Dict[str, dict] = {}
    log(f"hmmn-export: {model.config.name} model, {args.precision}, {args.size[0]}x{args.size[1]} -> {out}")
    for i, name in enumerate(GRAPH_NAMES, start=1):
        t0 = time.perf_counter()
        log(f"[{i}/4] exporting {name} ...")
        try:
            export_graph(build_graph(name, model, args.precision), specs[name],
                                             os.path.join(work, f"{name}.onnx"))
        except ExportError as exc:
            log(f"hmmn-export: error: {exc}")
            shutil.rmtree(work, ignore_errors=True)
            return 1
        graph_files[name] = manifest.file_entry(work, f"{name}.onnx")
        log(f"      {graph_files[name]['bytes'] / 2**20:.1f} MiB in {time.perf_counter() - t0:.1f} s")

    if isinstance(builder, str):
        log(f"hmmn-export: engines cannot be built here: {builder}. The graphs are still exported and checked.")
    flavor = None if isinstance(builder, str) else builder
    audit_ok, network_record = tensorrt_step.verdict(work, specs, args.precision, flavor, log)

    log(f"validation on ONNX Runtime (CPU) against hmmn_ref at {args.size[0]}x{args.size[1]}:")
    checks, video = validate_all(args, model, specs, work, graph_files)
    validation_ok = all(c.passed for c in checks) and video.passed

    engine_info = tensorrt_step.not_built("not requested (--engines)")
    exit_code = 0
    if args.engines and audit_ok and validation_ok:
        if flavor is None:
            log(f"engines not built: {builder}. The ONNX graphs and the manifest are written.")
            engine_info, exit_code = tensorrt_step.not_built(builder), 3
        else:
            log(f"TensorRT engines ({flavor.name} {tensorrt_lib.version(flavor)}):")
            engine_info, exit_code = tensorrt_step.build(work, specs, args.size, args.max_objects, args.capacity,
                                                         flavor, args.gpu_arch, args.timing_cache, log)

    record = manifest.build_manifest(
        config=model.config, weights_source=args.weights or "golden fill rule (random)",
        weights_sha256=manifest.weights_sha256(model), size=args.size, pad=padding_for(*args.size),
        precision=args.precision, mem_every=args.mem_every, capacity=args.capacity,
        max_objects=args.max_objects, specs=specs, graph_files=graph_files, opset=OPSET,
        engines=engine_info, tensorrt_network=network_record, validation=validation_record(checks, video),
    )
    manifest.write_manifest(work, record)
    print_summary(specs, graph_files, checks, args.precision, video, network_record, engine_info)

    if not (audit_ok and validation_ok):
        failed = f"{out}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.replace(work, failed)
        log(f"hmmn-export: validation or audit FAILED; nothing written to {out}; files kept in {failed}")
        return 1
    publish(work, out)
    log(f"hmmn-export: done in {time.perf_counter() - started:.0f} s -> {out}")
    return exit_code


def validate_all(args, model, specs, work, graph_files):
    frames, labels = sample_clip(*args.size, num_frames=args.check_frames)
    inputs, expected = reference_cases(model, frames, labels[0])
    dims = case_dims(labels[0], num_objects=int(labels[0].max()))
    try:  # the runtime's own loader and backend: what hmmn-run will use on these files
        run = OnnxRuntimeBackend(work, specs, graphs=graph_files)
    except ArtifactMismatch as exc:
        raise NameMismatch(str(exc)) from None
    checks: List[OutputCheck] = []
    for name in GRAPH_NAMES:
        for check in validate_graph(specs[name], run, inputs[name], expected[name], dims):
            log("  " + check.line())
            checks.append(check)
    log(f"  running the chained graphs over a {args.check_frames}-frame clip (teacher-forced) ...")
    margin, min_agreement = VIDEO_GATES[args.precision]
    video = validate_video(model, run, frames, labels[0], args.mem_every, min_agreement=min_agreement, margin=margin,
                           measure_floor=args.precision == "fp32", precision=args.precision)  # the FP16 gate is against FP32, not rounding
    label = "FP16 plan vs FP32 hmmn_ref" if args.precision == "fp16" else "chained graphs vs hmmn_ref.run_video"
    log("  " + video.line(label))
    return checks, video


def validation_record(checks, video) -> dict:
    return {
        "graphs": {c.graph + "." + c.output: {"measured": c.measured, "tolerance": c.tolerance, "passed": c.passed}
                   for c in checks},
        "video": {"frames": video.frames, "agreement": video.agreement, "decided_fraction": video.decided_fraction,
                  "decided_agreement": video.decided_agreement, "margin": video.margin, "max_dp": video.max_dp,
                  "max_rel_dl": video.max_rel_dl, "min_agreement": video.min_agreement, "passed": video.passed,
                  "frame_agreement": video.frame_agreement, "floor_agreement": video.floor_agreement,
                  "at_floor": video.at_floor},
    }


def print_summary(specs, graph_files, checks, precision, video, network_record, engine_info) -> None:
    log("")
    log(f"{'graph':<14} {'file':<20} {'size':>10}  {'parity':<34} {'precision':<10} {'TensorRT layers':<26} engine")
    for name in specs:
        mine = [c for c in checks if c.graph == name]
        worst = max(mine, key=lambda c: (not c.passed, 0))
        status = "PASS" if all(c.passed for c in mine) else "FAIL"
        parity = f"{status} {len(mine)} outputs"
        if not worst.passed:
            parity += f" ({worst.output})"
        network = network_record.get("graphs", {}).get(name)
        layers = "-" if network is None else (f"FP16 {network['precisions'].get('FP16', 0)} / FP32 "
                                              f"{network['precisions'].get('FP32', 0)}")
        engine = engine_info["files"].get(name)
        engine = "-" if engine is None else f"{engine['bytes'] / 2**20:.1f} MiB, {engine['build_seconds']:.1f} s"
        log(f"{name:<14} {graph_files[name]['file']:<20} {graph_files[name]['bytes'] / 2**20:>7.1f} MiB  "
            f"{parity:<34} {precision:<10} {layers:<26} {engine}")
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
