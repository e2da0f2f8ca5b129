"""hmmn_deploy.export: stage graphs around hmmn_ref, ONNX export, validation, engines, manifest."""

__version__ = "0.3.0"  # 0.3.0: one trunk pass a frame (memory_from_query) and the query-major match (cached exports are redone)
