"""hmmn_deploy.runtime: per-video state and memory bank, backends that run the stage graphs.

    from hmmn_deploy.runtime import Session
    session = Session.open("hmmn_480p", backend="onnxruntime")
    state = session.start(first_frame, first_mask)
    result = session.step(state, frame)       # result.labels [H, W], the mask's object ids
"""

from .backends import Backend, OnnxRuntimeBackend, TorchBackend
from .bank import GroupBank
from .errors import ArtifactMismatch, BackendUnavailable, RuntimeInputError
from .tensorrt_backend import TensorRTBackend
from hmmn_ref.protocol import DEFAULT_CAPACITY

from .session import BACKENDS, Session, StepResult, VideoState

__all__ = [
    "ArtifactMismatch", "BACKENDS", "Backend", "BackendUnavailable", "DEFAULT_CAPACITY", "GroupBank",
    "OnnxRuntimeBackend", "RuntimeInputError", "Session", "StepResult", "TensorRTBackend", "TorchBackend",
    "VideoState",
]
