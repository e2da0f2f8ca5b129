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


def test_one_trunk_pass_a_frame(mobile_export):
    """memory_from_query: encode_memory reads encode_query's outputs for the frame it memorises
    (its keys and its share of the values) and runs no trunk; the session runs one query a frame."""
    import onnx

    manifest = json.loads((mobile_export / "manifest.json").read_text())
    graphs = manifest["graphs"]
    memory_inputs = [t["name"] for t in graphs["encode_memory"]["inputs"]]
    query_outputs = [t["name"] for t in graphs["encode_query"]["outputs"]]
    assert "frame" not in memory_inputs and set(memory_inputs) - {"masks", "objects_sum"} <= set(query_outputs)
    convs = [n for n in onnx.load(str(mobile_export / "encode_memory.onnx")).graph.node if n.op_type == "Conv"]
    assert len(convs) == 3  # the masks' share of the three value projections, nothing of the trunk

    frames, labels = make_sample_video(num_frames=5, height=96, width=128, seed=4)
    calls = []
    session = Session.open(str(mobile_export), "onnxruntime", on_graph_inputs=lambda graph, _: calls.append(graph))
    state = session.start(frames[0], labels[0])
    for frame in frames[1:]:
        session.step(state, frame)
    assert calls.count("encode_query") == len(frames) and calls.count("encode_memory") == len(frames) - 1


def test_memory_from_the_query_equals_memory_from_the_frame():
    """The split of the value projections (frame's share in encode_query, the masks' in
    encode_memory) gives what the frame-reading memory graph gives, for several objects."""
    from hmmn_deploy.core.graphs import EncodeMemoryGraph, build_graph

    torch.manual_seed(0)
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.MOBILE))
    frame, masks = torch.rand(1, 3, 96, 128), torch.rand(3, 96, 128)
    total = masks.sum(0, keepdim=True)
    with torch.no_grad():
        query = build_graph("encode_query", model, "fp32")(frame)
        from_query = build_graph("encode_memory", model, "fp32")(*query[:3], *query[6:], masks, total)
        from_frame = EncodeMemoryGraph(model, "fp32").eval()(frame, masks, total)
    for got, want in zip(from_query, from_frame):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5, rtol=1e-5)


def test_an_export_with_other_contracts_is_refused(mobile_export, tmp_path):
    """A folder whose graphs were cut otherwise (an earlier version's encode_memory read the
    frame) gets a message that says to export again, not a failure inside a runtime."""
    import shutil

    from hmmn_deploy.runtime.errors import ArtifactMismatch

    folder = tmp_path / "older"
    shutil.copytree(mobile_export, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    inputs = manifest["graphs"]["encode_memory"]["inputs"]
    manifest["graphs"]["encode_memory"]["inputs"] = [{"name": "frame", "dtype": "float32", "dims": [1, 3, "H", "W"],
                                                      "doc": "RGB"}] + inputs[-2:]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactMismatch, match="export the folder again"):
        Session.open(str(folder), "onnxruntime")
