"""Per-frame time and bank memory of the runtime on a generated clip (a stand-in until hmmn-bench).

    python tools/time_runtime.py EXPORT_DIR --backend onnxruntime torch --frames 100 --objects 2

The torch backend needs the weights the folder was exported from: --random-weights (golden
fill) or --weights W.pth. Backends run one after the other on the same clip; the masks of
each are compared with the first backend's.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

import hmmn_ref
from hmmn_deploy.export import manifest
from hmmn_deploy.runtime import Session
from hmmn_ref.sample_video import make_sample_video


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("export_dir")
    p.add_argument("--backend", nargs="+", default=["onnxruntime"])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--weights")
    p.add_argument("--random-weights", action="store_true")
    args = p.parse_args()
    record = manifest.read_manifest(args.export_dir)
    height, width = record["input"]["height"], record["input"]["width"]
    frames, labels = make_sample_video(num_frames=args.frames + 1, height=height, width=width,
                                       num_objects=args.objects, seed=0)
    model = None
    if "torch" in args.backend:
        model = hmmn_ref.HMMN(hmmn_ref.HMMNConfig.from_dict(record["model"]["config"]))
        model = hmmn_ref.fill_golden_weights(model) if args.random_weights else hmmn_ref.load_weights(model, args.weights)
    runs, first_masks = [], None
    for backend in args.backend:
        session = Session.open(args.export_dir, backend, model=model)
        state = session.start(frames[0], labels[0])
        times, masks = [], []
        for t in range(1, len(frames)):
            t0 = time.perf_counter()
            result = session.step(state, frames[t])
            times.append(time.perf_counter() - t0)
            masks.append(result.labels)
            print(f"{backend} frame {t}: {times[-1] * 1000:.0f} ms, bank {state.bank_bytes() / 2**20:.1f} MiB",
                  file=sys.stderr, flush=True)
        masks = np.stack(masks)
        first_masks = masks if first_masks is None else first_masks
        ms = np.array(times) * 1000
        runs.append({
            "backend": backend, "frames": len(times), "size": [height, width], "objects": args.objects,
            "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "fps": float(1000 / np.median(ms)),
            "bank_mib": state.bank_bytes() / 2**20, "capacity": session.capacity,
            "slots_read_at_end": state.groups[0].slots_read,
            "mask_agreement_with_first": float((masks == first_masks).mean()),
        })  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"runs": runs, "peak_rss_mib": peak}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
