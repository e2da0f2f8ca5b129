"""hmmn_deploy.evaluate: the DAVIS J and F metrics, folder evaluation, run comparison (`hmmn-eval`)."""

from .compare import RunComparison, compare, mask_iou
from .davis import EvaluationError, Report, evaluate
from .metrics import boundary_f, frame_scores, mean_jf, region_similarity, sequence_frames, sequence_scores

__all__ = [
    "EvaluationError", "Report", "RunComparison", "boundary_f", "compare", "evaluate", "frame_scores",
    "mask_iou", "mean_jf", "region_similarity", "sequence_frames", "sequence_scores",
]
