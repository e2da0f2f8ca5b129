"""The exporter as a library: a model and options in, an export folder and a report out.

    report = export_model(model, ExportOptions(out="hmmn_480p", weights_source="HMMN_weights.pth"))
    report.status  # "done", "engines_not_built" (graphs and manifest written) or "failed"

`hmmn-export` (export/cli.py) is a thin command over it; `hmmn-run`'s export cache and the
tests call it too. The output folder appears complete or not at all: everything is written to
a temporary folder beside it and renamed at the end; a failed validation or audit keeps the
files in OUT.failed. Bad options raise ExportOptionsError (nothing written), a graph that
torch cannot export raises ExportError (nothing kept), Ctrl-C removes what was written.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import hmmn_ref
from hmmn_ref import protocol
from hmmn_ref.errors import Exit, HMMNError
from hmmn_ref.shell import Logger, detail
from hmmn_ref.video import cells_16, padding_for

from ..core import tensorrt_lib
from ..core.contracts import GRAPH_NAMES, graph_specs
from ..core.graphs import build_graph
from ..runtime.backends import OnnxRuntimeBackend
from ..runtime.errors import ArtifactMismatch
from . import manifest, tensorrt_step
from .onnx_export import OPSET, export_graph
from .validate import NameMismatch, OutputCheck, case_dims, reference_cases, sample_clip, validate_graph, validate_video

Log = Callable[[str], None]
DONE, ENGINES_NOT_BUILT, FAILED = "done", "engines_not_built", "failed"

# The teacher-forced video check, (decision margin, minimum mask agreement on the pixels the
# reference decides by more than the margin). FP32 graphs must reproduce hmmn_ref: a margin
# of 1e-3 is the spec's probability tolerance. The FP16 plan moves probabilities by up to
# ~0.1 on random weights: it is measured against FP32 (printed), and only pixels decided by
# more than 0.1 are held to 99%, a sanity bar that catches broken graphs, not an accuracy claim.
VIDEO_GATES = {"fp32": (1e-3, 0.999), "fp16": (0.1, 0.99)}




class ExportOptionsError(HMMNError, ValueError):
    """Options that cannot make an export; nothing was written."""


@dataclasses.dataclass
class ExportOptions:
    out: str  # the export folder
    weights_source: str = "golden fill rule (random)"  # recorded in the manifest: where the weights came from
    size: Tuple[int, int] = (480, 854)  # the size engines are built for and the validation runs at
    precision: str = "fp32"
    max_objects: int = protocol.DEFAULT_MAX_OBJECTS  # engines' profile
    capacity: int = protocol.DEFAULT_CAPACITY  # engines' profile: 1/16 memory slots
    mem_every: int = protocol.DEFAULT_MEM_EVERY  # the protocol of the video check, recorded as the folder's default
    engines: bool = False
    builder: str = "auto"  # auto, tensorrt or tensorrt-rtx
    gpu_arch: Optional[Sequence[str]] = None  # tensorrt-rtx targets
    timing_cache: Optional[str] = None
    check_frames: int = 6  # frames of the chained video check
    overwrite: bool = False
    trained_sizes: Optional[Sequence[Sequence[int]]] = None  # from the weights' record, kept in the manifest


@dataclasses.dataclass
class ExportReport:
    status: str  # DONE, ENGINES_NOT_BUILT or FAILED
    folder: str  # the export folder, or OUT.failed when the validation or audit failed
    manifest: dict

    @property
    def exit_code(self) -> int:
        return {DONE: Exit.DONE, FAILED: Exit.FAILED, ENGINES_NOT_BUILT: Exit.ENGINES_NOT_BUILT}[self.status]


def check_options(options: ExportOptions, config: hmmn_ref.HMMNConfig) -> None:
    """ExportOptionsError for options that cannot work, before any work starts."""
    cells = cells_16(*options.size)
    if cells < config.min_cells_16:
        raise ExportOptionsError(f"size {options.size[0]}x{options.size[1]} has {cells} cells on the 1/16 grid; "
                                 f"the {config.name} model needs at least {config.min_cells_16}")
    problem = protocol.settings_problem(True, max_objects=options.max_objects, capacity=options.capacity,
                                        mem_every=options.mem_every)
    if problem or options.check_frames < 3:
        raise ExportOptionsError(problem or f"--check-frames {options.check_frames}: give a whole number >= 3")
    if options.precision not in ("fp32", "fp16"):
        raise ExportOptionsError(f"precision {options.precision!r}: choose fp32 or fp16")
    if os.path.exists(options.out) and not options.overwrite:
        raise ExportOptionsError(f"{options.out!r} exists; choose another --out or pass --overwrite")
    if os.path.exists(options.out) and not _is_export(options.out):
        raise ExportOptionsError(f"--overwrite would delete {options.out!r}, which is not an hmmn-export folder (no "
                                 "manifest of ours in it); choose another --out, or remove it yourself")
    if options.gpu_arch and options.builder == "tensorrt":
        raise ExportOptionsError("--gpu-arch picks TensorRT-RTX's targets; enterprise TensorRT builds for the GPU it "
                                 "runs on")
    if (options.gpu_arch or options.builder != "auto") and not options.engines:
        raise ExportOptionsError("--builder and --gpu-arch choose how engines are built: add --engines")


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


def export_model(model: hmmn_ref.HMMN, options: ExportOptions, log: Log = Logger("hmmn-export")) -> ExportReport:
    """Export, validate (and build engines for) `model` into options.out."""
    check_options(options, model.config)
    # The builder is chosen before the long work: a bad --gpu-arch is refused at once; a missing
    # TensorRT is reported now, and the graphs are still exported and checked (ENGINES_NOT_BUILT).
    try:
        builder = tensorrt_step.choose_builder(options.builder, options.gpu_arch) if options.engines else None
    except ValueError as exc:
        raise ExportOptionsError(str(exc)) from None
    out = os.path.abspath(options.out)
    work = f"{out}.partial-{os.getpid()}"
    try:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    except OSError as exc:
        raise ExportOptionsError(f"cannot write beside {out!r} ({exc.strerror}); choose another --out") from None
    try:
        return _export_into(options, model, out, work, builder, log)
    except BaseException:  # Ctrl-C included: nothing half-written stays behind
        shutil.rmtree(work, ignore_errors=True)
        raise


def _export_into(args: ExportOptions, model: hmmn_ref.HMMN, out: str, work: str, builder, log: Log) -> ExportReport:
    started = time.perf_counter()
    specs = graph_specs(model.config, args.precision)
    graph_files: Dict[str, dict] = {}
    log(f"{model.config.name} model, {args.precision}, {args.size[0]}x{args.size[1]} -> {out}")
    for i, name in enumerate(GRAPH_NAMES, start=1):
        t0 = time.perf_counter()
        detail(log, f"[{i}/4] exporting {name} ...")
        export_graph(build_graph(name, model, args.precision), specs[name], os.path.join(work, f"{name}.onnx"))
        graph_files[name] = manifest.file_entry(work, f"{name}.onnx")
        detail(log, f"      {graph_files[name]['bytes'] / 2**20:.1f} MiB in {time.perf_counter() - t0:.1f} s")

    if isinstance(builder, str):
        log(f"engines cannot be built here: {builder}. The graphs are still exported and checked.")
    flavor = None if isinstance(builder, str) else builder
    audit_ok, network_record = tensorrt_step.verdict(work, specs, args.precision, flavor, log)

    detail(log, f"validation on ONNX Runtime (CPU) against hmmn_ref at {args.size[0]}x{args.size[1]}:")
    checks, video = validate_all(args, model, specs, work, graph_files, log)
    validation_ok = all(c.passed for c in checks) and video.passed

    engine_info = tensorrt_step.not_built("not requested (--engines)")
    exit_code = Exit.DONE
    if args.engines and audit_ok and validation_ok:
        if flavor is None:
            detail(log, f"engines not built: {builder}. The ONNX graphs and the manifest are written.")
            engine_info, exit_code = tensorrt_step.not_built(builder), Exit.ENGINES_NOT_BUILT
        else:
            detail(log, f"TensorRT engines ({flavor.name} {tensorrt_lib.version(flavor)}):")
            engine_info, exit_code = tensorrt_step.build(work, specs, args.size, args.max_objects, args.capacity,
                                                         flavor, args.gpu_arch, args.timing_cache, log)

    record = manifest.build_manifest(
        config=model.config, weights_source=args.weights_source,
        weights_sha256=manifest.weights_sha256(model), size=args.size, pad=padding_for(*args.size),
        precision=args.precision, mem_every=args.mem_every, capacity=args.capacity,
        max_objects=args.max_objects, specs=specs, graph_files=graph_files, opset=OPSET,
        engines=engine_info, tensorrt_network=network_record, validation=validation_record(checks, video),
        trained_sizes=args.trained_sizes,
    )
    manifest.write_manifest(work, record)
    print_summary(specs, graph_files, checks, args.precision, video, network_record, engine_info, log)

    if not (audit_ok and validation_ok):
        failed = f"{out}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.replace(work, failed)
        log(f"validation or audit FAILED; nothing written to {out}; files kept in {failed}")
        return ExportReport(FAILED, failed, record)
    publish(work, out)
    log(f"done in {time.perf_counter() - started:.0f} s -> {out}")
    return ExportReport(DONE if exit_code == Exit.DONE else ENGINES_NOT_BUILT, out, record)


def validate_all(args, model, specs, work, graph_files, log: Log):
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
            detail(log, "  " + check.line())
            checks.append(check)
    detail(log, f"  running the chained graphs over a {args.check_frames}-frame clip (teacher-forced) ...")
    margin, min_agreement = VIDEO_GATES[args.precision]
    video = validate_video(model, run, frames, labels[0], args.mem_every, min_agreement=min_agreement, margin=margin,
                           measure_floor=args.precision == "fp32", precision=args.precision)  # the FP16 gate is against FP32, not rounding
    label = "FP16 plan vs FP32 hmmn_ref" if args.precision == "fp16" else "chained graphs vs hmmn_ref.run_video"
    detail(log, "  " + video.line(label))
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


def print_summary(specs, graph_files, checks, precision, video, network_record, engine_info, log: Log) -> None:
    detail(log, "")
    detail(log, f"{'graph':<14} {'file':<20} {'size':>10}  {'parity':<34} {'precision':<10} {'TensorRT layers':<26} engine")
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
        detail(log, f"{name:<14} {graph_files[name]['file']:<20} {graph_files[name]['bytes'] / 2**20:>7.1f} MiB  "
                    f"{parity:<34} {precision:<10} {layers:<26} {engine}")
    floor = "" if video.floor_agreement is None else f", hmmn_ref vs itself {video.floor_agreement * 100:.3f}%"
    detail(log, f"{'video':<14} {'':<20} {'':>10}  {'PASS' if video.passed else 'FAIL'} agreement "
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
