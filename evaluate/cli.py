"""`hmmn-eval`: J&F of predictions against DAVIS-style ground truth, and runs compared.

    hmmn-eval --gt DAVIS/Annotations/480p --pred out/ [--imageset val.txt] [--csv F] [--json F]
    hmmn-eval --compare out_torch out_onnxruntime out_fp16 [--gt ...] [--max-drop 0.5] [--min-agreement 99.9]
    ... --report DIR   also DIR/index.html: tables, J per frame, worst frames, overlay videos

J&F follows vos-benchmark's convention by default (an object's frames count from its first
appearance); --convention davis2017 counts every frame for every object (davis2017-evaluation).
Exit status (hmmn_ref/errors.py, docs/reliability.md): 0 done (and every gate held); 1 a gate
failed (--max-drop, --min-agreement); 2 folders that cannot be compared (the message names the
sequence or file), or a result file or report that cannot be written; 130 interrupted.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import List, Optional

from hmmn_ref import shell
from hmmn_ref.errors import Exit

from .compare import compare, comparison_json, comparison_table
from .davis import EvaluationError, evaluate
from .metrics import CONVENTIONS, DEFAULT_CONVENTION
from .report import EvalRun, write_report
from ..core.report_page import check_folder

log = shell.Logger("hmmn-eval")


def build_parser():
    p = shell.parser("hmmn-eval", __doc__)
    p.add_argument("--gt", help="ground truth: ANNOTATIONS/<seq>/<frame>.png, or a DAVIS root")
    p.add_argument("--pred", help="predictions: PRED/<seq>/<frame>.png (an hmmn-run output folder)")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="prediction folders to compare; the first is the baseline")
    p.add_argument("--imageset", help="text file listing the sequences to score (default: every ground-truth folder)")
    p.add_argument("--sequences", nargs="+", help="only these sequences")
    p.add_argument("--all-frames", action="store_true",
                   help="also score the first and last frames (the DAVIS 2017 semi-supervised protocol leaves them out)")
    p.add_argument("--convention", choices=CONVENTIONS, default=DEFAULT_CONVENTION,
                   help="which frames count for an object: vos-benchmark (default) from its first appearance in "
                        "the ground truth or the prediction; davis2017 every scored frame (absent = J 1, F 1)")
    p.add_argument("--csv", help="write per-object results here")
    p.add_argument("--json", help="write the results here as JSON (0-100 scale)")
    p.add_argument("--report", metavar="DIR",
                   help="also write an HTML report, DIR/index.html (self-contained: J&F tables, J per frame, the "
                        "worst frames, hmmn-run's overlay videos; with --compare the runs side by side)")
    p.add_argument("--max-drop", type=float,
                   help="with --compare and --gt: exit 1 when a run's J&F is more than this below the baseline's")
    p.add_argument("--min-agreement", type=float,
                   help="with --compare: exit 1 when a run agrees with the baseline on fewer than this %% of pixels")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    return shell.main(build_parser, score, log, argv)


def score(args) -> int:
    if args.report:
        check_folder(args.report)  # before the scoring
    if args.compare:
        return run_compare(args)
    if not (args.gt and args.pred):
        raise EvaluationError("give --gt and --pred, or --compare RUN_A RUN_B ...")
    report = evaluate(args.gt, args.pred, args.imageset, args.sequences, not args.all_frames,
                      convention=args.convention)
    print(report.table())
    if args.csv:
        write_result(args.csv, lambda f: csv.writer(f).writerows(report.csv_rows()))
    if args.json:
        write_result(args.json, lambda f: json.dump(report.to_json(), f, indent=2))
    if args.report:
        write_html(args, [EvalRun(args.pred, report)], args.gt, not args.all_frames)
    return Exit.DONE


def write_result(path: str, write) -> None:
    try:
        with open(path, "w", newline="") as f:
            write(f)
    except OSError as exc:
        raise EvaluationError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def write_html(args, runs, gt, skip_first_and_last: bool) -> None:
    path = write_report(args.report, runs, gt, skip_first_and_last)
    log(f"report written: {path} (open it in a browser)")


def run_compare(args) -> int:
    if args.max_drop is not None and not args.gt:
        raise EvaluationError("--max-drop needs --gt (J&F is measured against the ground truth)")
    results = compare(args.compare, args.gt, args.sequences, args.convention)
    print(comparison_table(results))
    if args.json:
        write_result(args.json, lambda f: json.dump(comparison_json(results), f, indent=2))
    if args.report:
        write_html(args, [EvalRun(r.run, r.report, r) for r in results], args.gt, True)
    failed = []
    base = results[0]
    for r in results[1:]:
        if args.max_drop is not None and base.report.jf - r.report.jf > args.max_drop:
            failed.append(f"{r.run}: J&F {r.report.jf:.2f} is {base.report.jf - r.report.jf:.2f} below the "
                          f"baseline's {base.report.jf:.2f} (allowed {args.max_drop})")
        if args.min_agreement is not None and 100 * r.overall_agreement < args.min_agreement:
            failed.append(f"{r.run}: agrees with the baseline on {100 * r.overall_agreement:.4f}% of pixels "
                          f"(required {args.min_agreement}%)")
    for message in failed:
        log(f"GATE FAILED: {message}")
    return Exit.FAILED if failed else Exit.DONE


if __name__ == "__main__":
    sys.exit(main())
