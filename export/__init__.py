"""hmmn_deploy.export: stage graphs around hmmn_ref, ONNX export, validation, engines, manifest."""

# Cached exports are redone when this changes. 0.3.2: the mobile configuration's 1/16 read over the
# guide slots (read_16_slots); 0.3.1: the decode graph's full-size work by products; 0.3.0: one
# trunk pass a frame and the query-major match.
__version__ = "0.3.2"
