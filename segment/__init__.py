"""hmmn_deploy.segment: the `hmmn-run` command, segmenting folders, video files and datasets.

    from hmmn_deploy.segment import discover, SequenceRun, open_session
"""

from ..models import ModelChoice, ModelError, open_session
from .sequence import SequenceError, SequenceOptions, SequenceRun
from .sources import Dataset, InputError, Sequence, discover

__all__ = [
    "Dataset", "InputError", "ModelChoice", "ModelError", "Sequence", "SequenceError", "SequenceOptions",
    "SequenceRun", "discover", "open_session",
]
