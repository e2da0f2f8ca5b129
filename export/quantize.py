"""INT8 graphs for the openvino backend: NNCF's post-training quantization of an export folder.

    hmmn-quantize EXPORT_FOLDER [--calibration DAVIS_ROOT] [--videos 4] [--frames 8] [--accuracy-videos 8]

Calibration: the runtime itself runs the folder's FP32 graphs (OpenVINO, FP32) on the
calibration videos, following the memory protocol, and every graph call's inputs are kept;
NNCF then quantizes encode_query, encode_memory and decode on those inputs (8-bit weights per
channel, 8-bit activations per tensor, fast bias correction). match is never quantized: it is
FP32 in every plan (runtime/openvino_backend.py). Videos: the demo's generated videos
(`hmmn_deploy.demo.synthetic`, training-split seeds) unless `--calibration` names a DAVIS-style
root (JPEGImages/<seq>/*.jpg and Annotations/<seq>/<first>.png) of the user's own frames.

The accuracy cost is measured right after, on generated videos of other seeds with their
ground truth: J&F of INT8 (and BF16) against FP32, and pixel agreement with FP32's masks. It is
printed and recorded in EXPORT_FOLDER/openvino_int8/quantization.json beside the graphs, with
the SHA-256 of the FP32 graphs they came from (a re-export makes them stale; the backend
refuses stale ones). With random weights the J&F figures mean nothing (recorded as such).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from hmmn_ref import shell
from hmmn_ref.errors import Exit, HMMNError

from ..core.int8_files import INT8_FOLDER, QUANTIZED, record_path

CALIBRATION_SEED = 1_000_000  # the generator's training split: disjoint from the accuracy seeds
ACCURACY_SEED = 13_000  # the held-out check set, seeds 13000-13019 (docs/demo_training.md, stage 8's table)


class QuantizeError(HMMNError, RuntimeError):
    """Quantization could not run or its inputs are wrong; the message says what to do."""


_log = shell.Logger("hmmn-quantize")


# -- videos ------------------------------------------------------------------------------------
def generated_videos(count: int, frames: int, size: Tuple[int, int], seed: int):
    """-> [(name, frames uint8 [T,H,W,3], labels uint8 [T,H,W])] from the demo's generator."""
    from ..demo.synthetic import make_video

    return [(f"gen{seed + i}", *make_video(seed + i, frames, size[0], size[1])) for i in range(count)]


def davis_videos(root: str, count: int, frames: int):
    """-> [(name, frames, first label map)] from a DAVIS-style root (first mask only)."""
    from hmmn_ref.media import list_frames, read_frames, read_mask

    images = os.path.join(root, "JPEGImages")
    if os.path.isdir(os.path.join(images, "480p")):
        images = os.path.join(images, "480p")
    notes = os.path.join(root, "Annotations")
    if os.path.isdir(os.path.join(notes, "480p")):
        notes = os.path.join(notes, "480p")
    if not os.path.isdir(images) or not os.path.isdir(notes):
        raise QuantizeError(f"--calibration {root!r}: expected JPEGImages/<seq>/ and Annotations/<seq>/ inside")
    videos = []
    for name in sorted(os.listdir(images))[:count]:
        masks = list_frames(os.path.join(notes, name)) if os.path.isdir(os.path.join(notes, name)) else []
        if not masks:
            raise QuantizeError(f"--calibration: {os.path.join(notes, name)!r} has no first-frame mask")
        video = read_frames(os.path.join(images, name), frames)
        labels, _ = read_mask(masks[0])
        videos.append((name, video, labels[None]))
    if not videos:
        raise QuantizeError(f"--calibration {root!r} holds no sequences")
    return videos


# -- calibration -------------------------------------------------------------------------------
def collect_inputs(folder: str, videos, threads: Optional[int] = None) -> Dict[str, List[dict]]:
    """Run the folder's FP32 graphs (OpenVINO) through the memory protocol on `videos` and keep
    each call's inputs of the graphs to quantize: graph -> [ {input name: array} ]."""
    from ..runtime import Session

    samples: Dict[str, List[dict]] = {g: [] for g in QUANTIZED}

    def keep(graph, inputs):
        if graph in samples:
            samples[graph].append({name: t.numpy().copy() for name, t in inputs.items()})

    session = Session.open(folder, "openvino", compute="fp32", threads=threads, on_graph_inputs=keep)
    for _, frames, labels in videos:
        state = session.start(frames[0], labels[0])
        for frame in frames[1:]:
            session.step(state, frame)
    return samples


def quantize_folder(folder: str, calibration: Optional[str] = None, videos: int = 4, frames: int = 8,
                    size: Optional[Tuple[int, int]] = None, accuracy_videos: int = 0,
                    threads: Optional[int] = None, log: Callable[[str], None] = _log) -> dict:
    """Quantize the folder's graphs into folder/openvino_int8/ and return the record written
    beside them. size: of the generated calibration videos (default: the size the export was
    validated at, which bounds the calibration's cost on the paper model)."""
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise QuantizeError(f"INT8 quantization needs openvino and nncf ({exc}); "
                            "pip install 'hmmn-deploy[openvino]'") from None
    from ..core import manifest as manifest_io

    record = manifest_io.read_manifest(folder)
    if record["precision"]["name"] != "fp32":
        raise QuantizeError(f"{folder!r} holds {record['precision']['name']} graphs; quantize an FP32 export")
    size = size or (record["input"]["height"], record["input"]["width"])
    started = time.perf_counter()
    if calibration:
        clips = davis_videos(calibration, videos, frames)
        source = f"{calibration} ({len(clips)} sequences, {frames} frames each)"
    else:
        clips = generated_videos(videos, frames, size, CALIBRATION_SEED)
        source = (f"demo generator, seeds {CALIBRATION_SEED}..{CALIBRATION_SEED + videos - 1}, {frames} frames, "
                  f"{size[0]}x{size[1]}")
    log(f"calibrating on {source}")
    samples = collect_inputs(folder, clips, threads)
    out = os.path.join(folder, INT8_FOLDER)
    work = out + ".partial"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    core = ov.Core()
    nncf.set_log_level(40)  # errors only: its progress bars would flood the log
    for name in QUANTIZED:
        t0 = time.perf_counter()
        model = core.read_model(os.path.join(folder, record["graphs"][name]["file"]))
        dataset = nncf.Dataset(samples[name])
        # NNCF draws its progress bars on standard output whatever its log level; standard output
        # belongs to the caller (hmmn-bench --json prints one JSON object there).
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(model, dataset, subset_size=len(samples[name]), fast_bias_correction=True,
                                      preset=nncf.QuantizationPreset.PERFORMANCE)
        ov.save_model(quantized, os.path.join(work, f"{name}.xml"), compress_to_fp16=False)
        log(f"{name}: {len(samples[name])} calibration calls, {time.perf_counter() - t0:.1f} s")
    result = {
        "format": "hmmn-deploy.openvino-int8", "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"nncf {nncf.__version__} (quantize, preset performance, fast bias correction) on openvino {ov.__version__}",
        "quantized": list(QUANTIZED), "fp32": ["match"],
        "sources": {g: record["graphs"][g]["sha256"] for g in QUANTIZED},
        "calibration": {"source": source, "calls": {g: len(v) for g, v in samples.items()}},
        "weights": record["model"]["weights"]["source"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    with open(os.path.join(work, "quantization.json"), "w") as f:
        json.dump(result, f, indent=2)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(work, out)
    if accuracy_videos:
        result["accuracy"] = measure_accuracy(folder, accuracy_videos, threads=threads, log=log)
        with open(record_path(folder), "w") as f:
            json.dump(result, f, indent=2)
    return result


# -- accuracy ----------------------------------------------------------------------------------
def run_video(session, frames: np.ndarray, first: np.ndarray) -> List[np.ndarray]:
    state = session.start(frames[0], first)
    return [first] + [session.step(state, f).labels for f in frames[1:]]


def measure_accuracy(folder: str, count: int = 8, computes: Optional[Sequence[str]] = None,
                     frames: int = 24, size: Tuple[int, int] = (96, 128), seed: int = ACCURACY_SEED,
                     threads: Optional[int] = None, log: Callable[[str], None] = _log,
                     others: Sequence[str] = ()) -> dict:
    """J&F (vos-benchmark convention, first and last frames left out) of each openvino compute
    precision on `count` generated videos with ground truth, and agreement with the first's
    masks (FP32). others: more backends on the folder's own graphs (e.g. 'onnxruntime'), listed
    after them under their name."""
    from ..core import manifest as manifest_io
    from ..evaluate.metrics import mean_jf, sequence_scores
    from ..runtime import Session

    from ..core import cpu

    # Default: FP32 and the precisions this CPU computes natively (BF16 emulated through FP32 is
    # slow, and not what a user of this CPU would run).
    computes = computes or [c for c in ("fp32", "bf16", "int8") if c in cpu.native_precisions()]
    clips = generated_videos(count, frames, size, seed)
    masks: Dict[str, Dict[str, List[np.ndarray]]] = {}
    for compute in list(computes) + list(others):
        if compute in others:
            session = Session.open(folder, compute, threads=threads)
        else:
            session = Session.open(folder, "openvino", compute=compute, threads=threads)
        masks[compute] = {name: run_video(session, video, labels[0]) for name, video, labels in clips}
    computes = list(computes) + list(others)
    truth = {name: list(labels) for name, _, labels in clips}
    source = manifest_io.read_manifest(folder)["model"]["weights"]["source"]
    result = {"videos": f"demo generator, seeds {seed}..{seed + count - 1}, {frames} frames, {size[0]}x{size[1]}",
              "weights": source, "meaningful": not source.startswith("golden fill rule"), "computes": {}}
    base = None
    for compute in computes:
        jf, j, f = mean_jf({n: sequence_scores(masks[compute][n], truth[n]) for n in truth})
        agree = float(np.mean([np.mean(a == b) for n in truth for a, b in zip(masks[compute][n], masks[computes[0]][n])]))
        base = jf if base is None else base
        result["computes"][compute] = {"J&F": round(jf, 3), "J": round(j, 3), "F": round(f, 3),
                                       "dJ&F": round(jf - base, 3), "agreement_%": round(100 * agree, 4)}
        log(f"{'openvino ' if compute not in others else ''}{compute}: J&F {jf:.2f} (J {j:.2f}, F {f:.2f}), {jf - base:+.2f} against "
            f"{computes[0]}, masks {100 * agree:.3f}% equal to {computes[0]}'s")
    return result


def build_parser():
    p = shell.parser("hmmn-quantize", __doc__)
    p.add_argument("folder", help="an FP32 hmmn-export folder")
    p.add_argument("--calibration", help="a DAVIS-style root of your own frames (default: generated demo videos)")
    p.add_argument("--videos", type=int, default=4, help="calibration videos (default 4)")
    p.add_argument("--frames", type=int, default=8, help="frames per calibration video (default 8)")
    p.add_argument("--size", type=shell.parse_size, help="generated calibration videos' size (default: the export's)")
    p.add_argument("--accuracy-videos", type=int, default=8,
                   help="generated videos to measure J&F against FP32 on (default 8; 0 skips)")
    p.add_argument("--threads", type=int)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    return shell.main(build_parser, quantize, _log, argv)


def quantize(args) -> int:
    result = quantize_folder(args.folder, args.calibration, args.videos, args.frames, args.size,
                             args.accuracy_videos, args.threads)
    _log(f"wrote {os.path.join(args.folder, INT8_FOLDER)} in {result['seconds']} s")
    return Exit.DONE


if __name__ == "__main__":
    sys.exit(main())
