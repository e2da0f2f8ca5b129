"""hmmn_ref: the PyTorch reference of HMMN (ICCV 2021), the oracle of the deployment toolkit.

    import hmmn_ref
    model = hmmn_ref.HMMN()                         # paper configuration
    hmmn_ref.load_weights(model, "HMMN_weights.pth")
    logits = hmmn_ref.run_video(model, frames, first_mask, mem_every=5)
"""

from .checkpoint import CheckpointError, load_model, load_weights, read_state_dict
from .config import CONFIGS, MOBILE, MOBILE_WIDE, PAPER, SMALL, HMMNConfig, get_config
from .errors import HMMNError
from .golden_init import fill_golden_weights
from .model import HMMN, MemoryEntry, QueryFeatures, soft_aggregate
from .video import object_labels, one_hot, padding_for, run_video, video_steps

__all__ = [
    "HMMNError",
    "CONFIGS",
    "CheckpointError",
    "HMMN",
    "HMMNConfig",
    "MemoryEntry",
    "PAPER",
    "QueryFeatures",
    "SMALL",
    "MOBILE",
    "fill_golden_weights",
    "get_config",
    "load_model",
    "load_weights",
    "object_labels",
    "one_hot",
    "padding_for",
    "read_state_dict",
    "run_video",
    "video_steps",
    "soft_aggregate",
]
