"""The mobile configuration downstream (issue 38): the four graphs export and validate, the manifest
records the trunk, onnxruntime and OpenVINO run them as hmmn_ref does, TensorRT-RTX builds engines.
(libhmmn on the same folder: tests/cpp/test_cpp.py.)"""

from __future__ import annotations

import json

import pytest
import torch

import hmmn_ref
from hmmn_ref.sample_video import make_sample_video

from conftest import compare, engines_buildable, run_session
from hmmn_deploy.runtime import Session  # noqa: E402


def test_manifest_records_the_mobile_trunk(mobile_export):
    manifest = json.loads((mobile_export / "manifest.json").read_text())
    config = hmmn_ref.HMMNConfig.from_dict(manifest["model"]["config"])
    assert config == hmmn_ref.MOBILE and config.trunk == "mobilenet_v2"
    if engines_buildable():
        assert sorted(p.name for p in mobile_export.rglob("*.engine")) or sorted(mobile_export.rglob("*.plan"))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_backends_follow_run_video(mobile_export, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    frames, labels = make_sample_video(num_frames=8, height=96, width=128, seed=4)
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.MOBILE))
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    reference = hmmn_ref.run_video(model, video, torch.from_numpy(labels[0]).long())
    session = Session.open(str(mobile_export), backend, **({"compute": "fp32"} if backend == "openvino" else {}))
    agreement, max_dp = compare(run_session(session, frames, labels[0]), reference.numpy())
    print(f"{backend}: agreement {agreement:.6f}, max |dP| {max_dp:.2e}")
    assert agreement >= 0.999 and max_dp < 1e-3
