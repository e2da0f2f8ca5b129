"""`hmmn-run`: segment a frame folder, a video file, or a DAVIS / YouTube-VOS dataset.

Outputs: OUT/<sequence>/<frame>.png (the annotation's ids and palette), optional
OUT/overlays/<sequence>.mp4 and OUT/probs/<sequence>/<frame>.npz, and OUT/summary.json.
A sequence is written to OUT/.partial/, read back, and moved into place when complete, so an
interrupted run resumes on the next call (finished sequences are skipped); one run at a time
writes OUT (a lock). Exit status (hmmn_ref/errors.py, docs/reliability.md): 0 every sequence
done; 1 some failed (the others are written) or summary.json could not be written; 2 bad
arguments, input, model or output folder (OUT locked by another run, or OUT/<sequence> holding
something hmmn-run did not write); 130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import List, Optional

import hmmn_ref
from hmmn_ref import protocol, shell
from hmmn_ref.errors import Exit
from hmmn_ref.shell import parse_size
from hmmn_ref.video import cells_16

from ..core.working_size import WorkingSize, WorkingSizeError
from ..runtime import BACKENDS
from ..runtime.errors import RuntimeInputError
from ..models import ModelChoice, open_session
from ..models.working_size import for_run
from . import signals
from .outdir import WORK, OutputError, OutputFolder
from .ownership import DONE, FOREIGN, inspect
from .progress import bar as progress_bar, say as progress_line
from .sequence import SequenceError, SequenceOptions, SequenceRun
from .sources import InputError, check_output_outside_inputs, discover
from .summary import closing_line, load_summary, record_done, record_failed, save_summary


# The demo clip: generated at 96x128 (the small model's first training size; the default mobile model
# processes it at 240x320, the smallest size it works at, the masks resized back).
DEMO_SEED, DEMO_FRAMES, DEMO_SIZE = 4242, 24, (96, 128)
NATIVE = "native"  # --size native: every video at its own size, whatever the weights' record says


def size_option(text: str):
    """--size: HxW, or 'native' (the frames' own size)."""
    return NATIVE if text.strip().lower() == NATIVE else parse_size(text)


def _say(line: str) -> None:
    try:
        progress_line(line)  # on standard error, never onto a progress bar
    except OSError:  # SIGHUP: the terminal is gone; the clean-up goes on
        pass


log = shell.Logger("hmmn-run", _say)


def build_parser():
    p = shell.parser("hmmn-run", __doc__)
    p.add_argument("input", nargs="?",
                   help="folder of frames, video file, DAVIS root or YouTube-VOS root (default: the demo, a "
                        "generated video with ground truth written to OUT/demo_input/, scored after the run)")
    p.add_argument("-o", "--out", required=True, help="output folder (created; reused to resume)")
    p.add_argument("--mask", help="first-frame label PNG (palette or greyscale), for a folder or a video file")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", help="checkpoint (default: the built-in mobile model; --config small the small one)")
    source.add_argument("--artifacts", help="an hmmn-export folder (graphs, engines, manifest)")
    source.add_argument("--random-weights", action="store_true",
                        help="random weights (the golden fill rule): the pipeline runs, the masks mean nothing")
    p.add_argument("--backend", choices=BACKENDS, default="onnxruntime")
    p.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16", "int8"),
                   help="default fp32, or the artifacts' precision; with --backend openvino: auto (the default: "
                        "int8 where its recorded J&F cost is within 0.5, bf16 on a CPU with native BF16, else "
                        "fp32; it says what it picked and why), fp32, bf16 or int8")
    p.add_argument("--device", choices=("cpu", "cuda", "CPU", "GPU", "NPU"),
                   help="where torch / onnxruntime run (default cpu; tensorrt always runs on cuda); openvino: CPU, "
                        "GPU or NPU as OpenVINO names them (default CPU)")
    p.add_argument("--config", choices=sorted(hmmn_ref.CONFIGS),
                   help="model configuration of --weights / --random-weights (default paper); without them, which "
                        "built-in model: mobile (the default) or small")
    p.add_argument("--mem-every", type=int, help="keep every N-th frame in memory (default "
                   f"{protocol.DEFAULT_MEM_EVERY}, or the artifacts')")
    p.add_argument("--capacity", type=int, help="1/16 memory slots per object group (default "
                   f"{protocol.DEFAULT_CAPACITY}, or the artifacts')")
    p.add_argument("--size", type=size_option,
                   help="process frames at HxW, or 'native' at their own size (masks are written at the frames' size; "
                        "default: a size the model was trained at when its weights' record gives them, as the "
                        "built-in model's does, else the frames' own)")
    p.add_argument("--imageset", help="DAVIS image set, e.g. 2017/val (default: every sequence)")
    p.add_argument("--sequences", nargs="+", help="only these sequences of a dataset")
    p.add_argument("--overlay", action="store_true", help="also write OUT/overlays/<sequence>.mp4")
    p.add_argument("--save-probs", action="store_true",
                   help="also write per-object probabilities, OUT/probs/<sequence>/<frame>.npz (uint8, p*255)")
    p.add_argument("--skip-bad-frames", action="store_true",
                   help="repeat the last mask for an unreadable frame (recorded in summary.json) instead of failing")
    p.add_argument("--max-frames", type=int, help="segment only the first N frames of each sequence")
    p.add_argument("--strict", action="store_true",
                   help="a warning fails its sequence (a video file with fewer frames than it declares)")
    p.add_argument("--force", action="store_true",
                   help="segment again sequences that are already done (each replaced whole once its redo is complete)")
    p.add_argument("--threads", type=int, help="CPU threads for torch / ONNX Runtime")
    p.add_argument("--cache", help="folder for graphs exported on the fly (default ~/.cache/hmmn-deploy/graphs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    ray = p.add_argument_group("Ray (docs/ray.md): a whole video per worker, on a local or an existing cluster")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="segment on Ray: without ADDRESS a private local cluster (started and stopped by this run); "
                          "with one ('auto', 'HOST:PORT') an existing cluster, where OUT and the inputs must be on "
                          "storage every node mounts at the same path")
    ray.add_argument("--workers", type=int, metavar="N", help="Ray workers, each with the model open (default 1; --threads each, "
                                                  "default 1)")
    ray.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs each Ray worker reserves (with --device cuda or "
                                                           "--backend tensorrt)")
    return p


def check_arguments(args) -> None:
    problem = protocol.settings_problem(True, mem_every=args.mem_every, capacity=args.capacity)
    if problem:
        raise InputError(problem)
    if args.max_frames is not None and args.max_frames < 2:
        raise InputError("--max-frames must be at least 2")
    if os.path.isfile(args.out):
        raise InputError(f"--out {args.out!r} is a file; give a folder")
    if args.ray is None and (args.workers is not None or args.gpus_per_worker is not None):
        raise InputError("--workers and --gpus-per-worker are for --ray; add --ray (a local cluster) or --ray ADDRESS")
    if args.ray is not None:
        from .distributed import check_ray_arguments

        check_ray_arguments(args)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    with signals.handled():
        return shell.run(lambda: _main(args), log)


def _main(args) -> int:
    """Bad arguments, input, model or output folder raise (exit 2, hmmn_ref/errors.py); errors
    reading the input or writing the demo's before any sequence too."""
    folder = OutputFolder(args.out, log)
    try:
        check_arguments(args)
        if os.path.isdir(os.path.join(args.out, WORK)):  # a killed run's work: its publish finished or rolled
            folder.open()                                 # back first, whatever this run then does
        data = None
        if args.input is not None:  # refused before OUT is created or locked
            data = discover(args.input, args.mask, args.imageset, args.sequences)
            check_output_outside_inputs(args.out, data)
        if not folder.is_open:
            folder.open()
        return run(args, folder.path, data)
    except KeyboardInterrupt as exc:  # during start-up (run_sequences handles its own): told apart by signal
        log(f"{signals.describe(exc)}; nothing half-written is kept (run the same command again to resume)")
        return signals.exit_code(exc)
    finally:
        folder.close()


def sequences_to_do(out: str, data, force: bool) -> list:
    """The sequences to segment: those OUT lacks, and with --force those hmmn-run finished too.
    OutputError when OUT holds, at a sequence's path, something hmmn-run did not write."""
    todo = []
    for s in data.sequences:
        found = inspect(out, s.name)
        if found.kind == FOREIGN:
            raise OutputError(f"{s.name}: {found.reason}; nothing was touched: move it away, or give another -o")
        if found.kind == DONE and not force:
            log(f"{s.name}: already done in {os.path.join(out, s.name)}, skipped (--force to redo)")
        else:
            todo.append(s)
    return todo


def run(args, out: str, data=None) -> int:
    demo_root = None
    if data is None:
        args.input = write_demo_input(os.path.join(out, "demo_input"))
        demo_root = args.input
        data = discover(args.input, args.mask, args.imageset, args.sequences)
    if args.max_frames:
        for s in data.sequences:
            s.truncate(args.max_frames)
    summary = load_summary(out, log)
    todo = sequences_to_do(out, data, args.force)
    if not todo:
        log("nothing to do")
        return Exit.DONE if save_summary(out, summary, log) else Exit.FAILED

    choice = ModelChoice(backend=args.backend, precision=args.precision, config=args.config, weights=args.weights,
                         random_weights=args.random_weights, artifacts=args.artifacts, mem_every=args.mem_every,
                         capacity=args.capacity, threads=args.threads, cache=args.cache, device=args.device)
    fixed = args.size if isinstance(args.size, tuple) else None
    try:
        working = working_size(args) if args.size is None else None
    except WorkingSizeError as exc:
        raise WorkingSizeError(f"{exc}; fix the record, or give --size HxW or --size native (the record is then "
                               "not read)") from None
    first_size = first_frame_size(todo[0]) if working or (args.backend == "tensorrt" and not fixed) else None
    # Engines are built for one size: the processing size of the first video.
    engine_size = fixed or (((working and working.size_for(first_size)) or first_size)
                            if args.backend == "tensorrt" else None)
    session, described = open_session(choice, engine_size, log)
    check_size(fixed, session.config)
    if working:
        working = dataclasses.replace(working, min_cells=session.config.min_cells_16)
        log_working_size(working, first_size, described["weights"])
    summary.update({"input": os.path.abspath(args.input), "kind": data.kind, **described,
                    "working_size": describe_size(args.size, working)})
    options = SequenceOptions(size=fixed, working_size=working, skip_bad_frames=args.skip_bad_frames,
                              save_probs=args.save_probs, overlay=args.overlay, strict=args.strict)
    log(f"{len(todo)} of {len(data.sequences)} sequences ({data.kind}), {args.backend} "
        f"{described['precision']} on {described['device']}, {session.config.name} model -> {out}")
    if args.ray is not None:
        from .distributed import run_on_ray

        code = run_on_ray(args, out, choice, engine_size, described["graphs"], todo, options, summary,
                          progress=not args.no_progress)
    else:
        code = run_sequences(session, todo, out, options, summary, progress=not args.no_progress)
    if demo_root and code == 0:
        score_demo(demo_root, out)
    return code


def working_size(args) -> Optional[WorkingSize]:
    """The trained sizes of the run's weights (models.working_size.for_run); None: frames at their own size."""
    return for_run(args.weights, args.random_weights, args.artifacts, args.config)


def log_working_size(working: WorkingSize, first_size, weights: str) -> None:
    """The one line that says the frames are resized, and why."""
    example = ""
    if first_size:
        picked = working.size_for(first_size)
        example = (f" (here {first_size[0]}x{first_size[1]} -> {picked[0]}x{picked[1]})" if picked else
                   f" (here {first_size[0]}x{first_size[1]}: as it is)")
    from .. import demo

    builtin = weights.startswith("the built-in") or any(
        os.path.abspath(weights) == os.path.abspath(model.weights) for model in demo.BUILT_IN.values())
    # The built-in mobile model is not trained: its record's sizes are those it was made for.
    model = "the built-in model works at" if builtin else "these weights were trained at"
    log(f"{model} {working.sentence()} {working.rule_sentence()}{example}, its masks resized back to its size; "
        "--size HxW sets another size, --size native keeps the frames' own")


def describe_size(size, working: Optional[WorkingSize]) -> dict:
    """summary.json's record of how the processing size was chosen."""
    if isinstance(size, tuple):
        return {"source": "--size", "size": list(size)}
    if size == NATIVE:
        return {"source": "--size native", "note": "every video at its own size"}
    if working is not None:
        return working.describe()
    return {"source": "frames", "note": "the weights' record gives no trained sizes: every video at its own size"}


def check_size(size, config) -> None:
    """--size against the model's fewest 16x16 cells (the frames are padded to multiples of 16)."""
    if size and cells_16(*size) < config.min_cells_16:
        raise InputError(f"--size {size[0]}x{size[1]} is too small for the {config.name} model: it needs at least "
                         f"{config.min_cells_16} cells of 16x16 pixels, for example 96x96")


def write_demo_input(folder: str) -> str:
    """The built-in default: one generated video with ground truth, in the DAVIS layout
    (sequence 'demo', seed below the training seeds). -> the dataset root."""
    from ..demo.synthetic import write_davis

    if not os.path.isfile(os.path.join(folder, "ImageSets", "2017", "demo.txt")):
        write_davis(folder, [("demo", DEMO_SEED)], DEMO_FRAMES, *DEMO_SIZE, split="demo")
        log(f"no INPUT given: the demo, a generated {DEMO_FRAMES}-frame {DEMO_SIZE[0]}x{DEMO_SIZE[1]} "
            f"video with ground truth, written to {folder}")
    return folder


def score_demo(root: str, out: str) -> None:
    """Print the demo's J&F against its ground truth."""
    from ..evaluate import evaluate

    report = evaluate(root, out, sequences=["demo"])
    log(f"demo J&F {report.jf:.1f} (J {report.j:.1f}, F {report.f:.1f}) against the generated ground truth")


def first_frame_size(sequence):
    """H, W of a sequence's first frame (for engines built at the video's own size)."""
    from .reader import FrameReader

    with FrameReader(sequence, prefetch=1) as reader:
        for item in reader:
            return item.original_size
    return None


def run_sequences(session, todo, out: str, options: SequenceOptions, summary: dict, progress: bool) -> int:
    records = summary.setdefault("sequences", {})
    failed = 0
    saved = True
    this_run = []  # the records of the sequences done by this run
    # Off a terminal each sequence's closing line is the progress of the whole run.
    total = progress_bar(len(todo), "sequences", "seq", progress and len(todo) > 1, log, plain=False, position=0)
    try:
        for sequence in todo:
            bar = progress_bar(sequence.num_frames, sequence.name, "frame", progress, log, position=1, leave=False)
            try:
                record = SequenceRun(session, sequence, out, options, bar.update).run()
                record_done(records, sequence.name, record, log)
                this_run.append(record)
            except (SequenceError, RuntimeInputError, OutputError, OSError) as exc:
                failed += 1
                record_failed(out, records, sequence.name, str(exc), log)
            finally:
                bar.close()
            saved = save_summary(out, summary, log) and saved
            total.update(1)
    except KeyboardInterrupt as exc:
        log(f"{signals.describe(exc)}; finished sequences are kept in {out}; run the same command again "
            "to resume")
        save_summary(out, summary, log)
        return signals.exit_code(exc)
    finally:
        total.close()
    saved = save_summary(out, summary, log) and saved
    log(closing_line(f"{len(todo) - failed} of {len(todo)} sequences done", failed, saved, this_run, ""))
    return Exit.FAILED if failed or not saved else Exit.DONE


if __name__ == "__main__":
    sys.exit(main())
