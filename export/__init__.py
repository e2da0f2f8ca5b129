"""hmmn_deploy.export: stage graphs around hmmn_ref, ONNX export, validation, engines, manifest."""

__version__ = "0.2.1"  # 0.2.1: the cheaper match graph (cached exports are redone)
