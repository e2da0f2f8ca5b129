"""hmmn_deploy.export: stage graphs around hmmn_ref, ONNX export, validation, engines, manifest."""

__version__ = "0.3.1"  # 0.3.1: the decode graph's full-size work by products (0.3.0: one trunk pass a frame and the query-major match); cached exports are redone
