"""hmmn_deploy.export: stage graphs around hmmn_ref, ONNX export, validation, engines, manifest."""

__version__ = "0.2.0"
