"""hmmn_deploy.models: which model a command runs (weights, configuration, export folder) and
the runtime Session opened on it. `hmmn-run`, `hmmn-bench` and the Ray workers share it.

    from hmmn_deploy.models import ModelChoice, open_session
    session, described = open_session(ModelChoice(backend="onnxruntime"), size=None, log=print)
"""

from .choice import (
    ModelChoice, ModelError, backend_device, load_model, open_session, resolve_weights, torch_model_for,
)

__all__ = ["ModelChoice", "ModelError", "backend_device", "load_model", "open_session", "resolve_weights",
           "torch_model_for"]
