"""`hmmn-export`: four ONNX graphs, validated against hmmn_ref, TensorRT engines, a manifest.

A thin command over `export.exporter.export_model`. The output folder appears complete or not
at all: everything is written to a temporary folder beside it and renamed at the end.
Exit status (hmmn_ref/errors.py, docs/reliability.md): 0 done; 1 validation or audit failed (the
files are kept in OUT.failed for inspection) or a graph could not be exported (nothing is kept);
2 bad arguments, weights or size; 3 engines were asked for but could not be built (the ONNX files
and the manifest are written, with the reason); 130 interrupted (nothing written).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import List, Optional

import hmmn_ref
from hmmn_ref import protocol, shell
from hmmn_ref.errors import UsageError
from hmmn_ref.shell import parse_size

from .. import demo
from ..core import tensorrt_lib
from ..core.contracts import PRECISIONS
from ..core.working_size import WorkingSize
from .exporter import ExportOptions, export_model

log = shell.Logger("hmmn-export")


def build_parser():
    p = shell.parser("hmmn-export", __doc__)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", help="checkpoint (the published HMMN_weights.pth, or one of this project; "
                                          "default: the built-in mobile model; --config small the small one)")
    source.add_argument("--random-weights", action="store_true",
                        help="deterministic random weights (the golden fill rule), for tests and demos")
    p.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--config", choices=sorted(hmmn_ref.CONFIGS),
                   help="model configuration (default: paper with --weights or --random-weights, else the built-in "
                        "mobile model; small: the built-in small one)")
    p.add_argument("--size", type=parse_size, default=None,
                   help="video size HxW the engines and the validation use (default: the first size the weights' "
                        "record says they were trained at, e.g. 240x320 for the built-in mobile model; else 480x854)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--max-objects", type=int, default=protocol.DEFAULT_MAX_OBJECTS,
                   help="engine profile: objects 1..N (default %(default)s)")
    p.add_argument("--capacity", type=int, default=protocol.DEFAULT_CAPACITY,
                   help="engine profile: 1/16 memory slots 1..S (default %(default)s: the public protocol on videos "
                        f"up to 237 frames with --mem-every {protocol.DEFAULT_MEM_EVERY})")
    p.add_argument("--mem-every", type=int, default=protocol.DEFAULT_MEM_EVERY)
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
    """No --weights and no --random-weights: a built-in model (the mobile configuration's, or with
    --config small the small one)."""
    if args.weights or args.random_weights:
        args.config = args.config or "paper"
        return
    try:
        args.config, args.weights = demo.built_in_for(args.config)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    log(f"no --weights: exporting {demo.BUILT_IN[args.config].description}")


def choose_size(args) -> None:
    """No --size: a size the weights were trained at (their record's trained_sizes, as hmmn-run
    uses them), else 480x854. The trained sizes go into the manifest for hmmn-run --artifacts."""
    working = WorkingSize.for_weights(args.weights) if args.weights else None
    args.trained_sizes = [list(s) for s in working.trained_sizes] if working else None
    if args.size is not None:
        return
    if working is None:
        args.size = (480, 854)
        return
    args.size = working.trained_sizes[0]
    log(f"no --size: {args.size[0]}x{args.size[1]}, the first size the weights were trained at "
        f"({working.record}); engines are built for it (--size HxW for another)")


def load_model(args) -> hmmn_ref.HMMN:
    model = hmmn_ref.HMMN(hmmn_ref.get_config(args.config))
    if args.random_weights:
        return hmmn_ref.fill_golden_weights(model)
    return hmmn_ref.load_weights(model, args.weights)


def export_options(args) -> ExportOptions:
    fields = {f.name for f in dataclasses.fields(ExportOptions)} - {"weights_source"}
    return ExportOptions(weights_source=args.weights or "golden fill rule (random)",
                         **{name: getattr(args, name) for name in fields})


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return shell.run(lambda: export(args), log,
                     interrupted=lambda: f"interrupted; nothing was written to {os.path.abspath(args.out)}")


def export(args) -> int:
    """Bad options, weights or size stop it before anything is written (exit 2); a graph torch
    cannot export (ExportError, exit 1) leaves nothing either."""
    resolve_source(args)
    choose_size(args)
    model = load_model(args)
    return export_model(model, export_options(args), log).exit_code


if __name__ == "__main__":
    sys.exit(main())
