"""The runtime: both CPU backends against hmmn_ref, the bank's policy, objects, bad inputs."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_deploy.export import manifest
from hmmn_deploy.runtime import (
    ArtifactMismatch,
    BackendUnavailable,
    RuntimeInputError,
    Session,
)
from hmmn_deploy.runtime.backends import exact_fp32
from hmmn_ref.sample_video import make_sample_video

from conftest import compare, load_golden, run_session


@pytest.fixture(scope="module")
def small_clip():
    return make_sample_video(num_frames=14, height=96, width=128, seed=1)


def as_video(frames):
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_small_model_matches_run_video(small_model, small_export, small_clip, backend):
    frames, labels = small_clip
    reference = hmmn_ref.run_video(small_model, as_video(frames), torch.from_numpy(labels[0]).long(), mem_every=3)
    session = Session.open(str(small_export), backend, model=small_model, mem_every=3)
    agreement, max_dp = compare(run_session(session, frames, labels[0]), reference.numpy())
    print(f"{backend}: agreement {agreement:.6f}, max |dP| {max_dp:.2e}")
    assert agreement >= 0.999 and max_dp < 1e-3


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("name", ["single", "three", "multi"])
def test_paper_model_reproduces_golden_videos(paper_model, paper_export, backend, name):
    """The golden videos, teacher-forced with the public code's own probabilities (spec section 7:
    with random weights one flipped flow argmax would otherwise compound), against its logits."""
    data = load_golden(name)
    labels0 = torch.from_numpy(data["labels0"]).long()
    first = hmmn_ref.one_hot(labels0, hmmn_ref.object_labels(labels0))[None]
    teacher = torch.cat([first, torch.softmax(torch.from_numpy(data["logits"]), 1)]).numpy()
    session = Session.open(str(paper_export), backend, model=paper_model, mem_every=int(data["mem_every"]))
    logits = run_session(session, data["frames"], data["labels0"], teacher=teacher)
    agreement, max_dp = compare(logits, data["logits"])
    per_frame_dp = [compare(logits[i : i + 1], data["logits"][i : i + 1])[1] for i in range(len(logits))]
    rel_dl = (np.abs(logits - data["logits"]) / (1 + np.abs(data["logits"]))).max(axis=(1, 2, 3))
    print(f"golden_{name} {backend}: agreement {agreement:.6f}, max |dP| {max_dp:.2e}, "
          f"rel |dL| {rel_dl.max():.2e}, per-frame |dP| {' '.join(f'{v:.0e}' for v in per_frame_dp)}")
    assert agreement >= 0.999
    # Known near-tie: on golden_multi the eager graphs (whose convFM is split in a query half and
    # a memory half: other rounding) pick a different 8th-best cell for the 1/4 read on one frame,
    # where the 8th and 9th guide weights differ by 2e-9. One frame may exceed the bar there.
    allowed = 1 if (backend, name) == ("torch", "multi") else 0
    assert sum(dp > 1e-3 for dp in per_frame_dp) <= allowed
    assert sum(dl > 1e-2 for dl in rel_dl) <= allowed


def test_teacher_probabilities_like_run_video(small_model, small_export, small_clip):
    frames, labels = small_clip
    truth = torch.stack([hmmn_ref.one_hot(torch.from_numpy(l).long(), [1, 2]) for l in labels])
    reference = hmmn_ref.run_video(small_model, as_video(frames), torch.from_numpy(labels[0]).long(), teacher=truth)
    session = Session.open(str(small_export), "onnxruntime")
    agreement, max_dp = compare(run_session(session, frames, labels[0], teacher=truth.numpy()), reference.numpy())
    assert agreement >= 0.999 and max_dp < 1e-3


def test_device_tensors_and_numpy_frames_agree(small_model, small_clip):
    frames, labels = small_clip
    session = Session.from_model(small_model)
    a, b = session.start(frames[0], labels[0]), session.start(torch.from_numpy(frames[0]), labels[0])
    for t in range(1, 4):
        ra = session.step(a, frames[t], outputs=("probs",))
        rb = session.step(b, torch.from_numpy(frames[t]).permute(2, 0, 1).float() / 255.0, outputs=("probs",))
        assert np.abs(ra.probs - rb.probs).max() < 1e-5


def test_capped_bank_stays_flat_over_300_frames(small_model, small_export):
    frames, labels = make_sample_video(num_frames=301, height=64, width=64, seed=7)
    session = Session.open(str(small_export), "onnxruntime", capacity=4, mem_every=2)
    state = session.start(frames[0], labels[0])
    bank = state.bank_bytes()
    pointers = None
    for t in range(1, 301):
        session.step(state, frames[t], outputs=())
        group = state.groups[0]
        assert group.slots_read <= 4 and state.bank_bytes() == bank
        if t == 20:
            pointers = [b.data_ptr() for b in state.buffers()]
    assert sorted(p for p in pointers) == sorted(b.data_ptr() for b in state.buffers())  # no re-allocation
    # Frame 0 is pinned; the other permanent slots are the latest kept frames (every 2nd).
    assert group.slot_frames[0] == 0
    assert sorted(group.slot_frames[1:]) == [296, 298]  # frame 299 (read by frame 300) is not kept


def test_capped_bank_equals_uncapped_until_it_fills(small_model, small_export, small_clip):
    frames, labels = small_clip
    capped = Session.open(str(small_export), "onnxruntime", capacity=3, mem_every=2)
    full = Session.open(str(small_export), "onnxruntime", capacity=8, mem_every=2)
    a, b = run_session(capped, frames, labels[0]), run_session(full, frames, labels[0])
    # Frames 1..4 read at most 3 slots (0, 2, previous): identical. Later the cap evicts frame 2.
    assert np.array_equal(a[:4], b[:4])
    assert not np.allclose(a[6:], b[6:])


def test_objects_added_at_frame_7_and_removed_later(small_model, small_clip):
    frames, labels = make_sample_video(num_frames=14, height=96, width=128, num_objects=3, seed=5)
    session = Session.from_model(small_model)
    first = np.where(labels[0] == 3, 0, labels[0])  # object 3 is not annotated at the start
    state = session.start(frames[0], first)
    for t in range(1, 8):
        result = session.step(state, frames[t])
    assert result.object_ids == [1, 2]
    late = np.where(labels[7] == 3, 7, 0).astype(np.uint8)  # it appears on frame 7, as label 7
    assert session.add_objects(state, late) == [7]
    assert state.objects.groups == [[1, 2], [7]] and state.groups[1].start == 7
    result = session.step(state, frames[8], outputs=("labels", "probs"))
    assert result.object_ids == [1, 2, 7] and result.probs.shape == (4, 96, 128)
    assert np.allclose(result.probs.sum(0), 1.0, atol=1e-5)  # one aggregation over all objects
    for t in range(9, 11):
        session.step(state, frames[t])
    session.remove_objects(state, [1])
    result = session.step(state, frames[11], outputs=("labels", "probs"))
    assert result.object_ids == [2, 7] and result.probs.shape == (3, 96, 128)
    assert set(np.unique(result.labels)) <= {0, 2, 7}
    with pytest.raises(RuntimeInputError, match="already objects"):
        session.add_objects(state, np.where(labels[11] == 2, 2, 0))
    with pytest.raises(RuntimeInputError, match="not in this video"):
        session.remove_objects(state, [1])
    with pytest.raises(RuntimeInputError, match="every object"):
        session.remove_objects(state, [2, 7])
    assert state.object_ids == [2, 7]  # a refused call changes nothing
    t_before = state.t
    with pytest.raises(RuntimeInputError, match="probabilities must be"):
        session.step(state, frames[12], teacher=np.zeros((2, 96, 128), np.float32))
    assert state.t == t_before


def test_bad_inputs_get_clear_errors(small_model, small_export, small_clip, tmp_path):
    frames, labels = small_clip
    session = Session.open(str(small_export), "onnxruntime")
    state = session.start(frames[0], labels[0])
    with pytest.raises(RuntimeInputError, match="this video is 96x128"):
        session.step(state, frames[1][:64])
    with pytest.raises(RuntimeInputError, match="uint8"):
        session.step(state, frames[1].astype(np.float64))
    with pytest.raises(RuntimeInputError, match="start"):
        session.step(None, frames[1])
    with pytest.raises(RuntimeInputError, match="start"):
        Session.from_model(small_model).step(state, frames[1])
    with pytest.raises(RuntimeInputError, match="mask is 96x100"):
        session.start(frames[0], labels[0][:, :100])
    with pytest.raises(RuntimeInputError, match="no object"):
        session.start(frames[0], np.zeros_like(labels[0]))
    with pytest.raises(RuntimeInputError, match="label map"):
        session.start(frames[0], labels[0].astype(np.float32))
    with pytest.raises(RuntimeInputError, match="too small"):
        session.start(frames[0][:32, :32], labels[0][:32, :32])
    # A manifest from another version, the wrong weights for the torch backend, no TensorRT.
    other = tmp_path / "export"
    shutil.copytree(small_export, other)
    record = json.loads((other / "manifest.json").read_text())
    record["schema_version"] = manifest.SCHEMA_VERSION + 1
    (other / "manifest.json").write_text(json.dumps(record))
    with pytest.raises(manifest.ManifestError, match=f"schema version {manifest.SCHEMA_VERSION + 1}"):
        Session.open(str(other))
    with pytest.raises(ArtifactMismatch, match="weights differ"):
        Session.open(str(small_export), "torch", model=hmmn_ref.HMMN(hmmn_ref.SMALL))
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable):
            Session.open(str(small_export), "tensorrt")


def test_backend_checks_buffers_against_the_contract(small_model):
    session = Session.from_model(small_model)
    spec = session.specs["encode_query"]
    frame = torch.zeros(1, 3, 64, 64)
    outputs = {s.name: torch.zeros(s.shape({"h": 4, "w": 4, "h8": 8, "w8": 8, "h4": 16, "w4": 16}))
               for s in spec.outputs}
    session.backend.run("encode_query", {"frame": frame}, outputs)
    with pytest.raises(RuntimeInputError, match="dtype"):
        session.backend.run("encode_query", {"frame": frame.double()}, outputs)
    bad = dict(outputs, query_key8=torch.zeros(1, 32, 9, 8))
    with pytest.raises(RuntimeInputError, match="h8"):
        session.backend.run("encode_query", {"frame": frame}, bad)
    # Outputs sized for another frame than the input: refused before anything is written.
    big = {s.name: torch.zeros(s.shape({"h": 5, "w": 5, "h8": 10, "w8": 10, "h4": 20, "w4": 20}))
           for s in spec.outputs}
    with pytest.raises(RuntimeInputError, match="disagree"):
        session.backend.run("encode_query", {"frame": frame}, big)


@pytest.mark.gpu
def test_onnxruntime_cuda_backend_matches_cpu(small_export, small_clip):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    frames, labels = small_clip
    cpu = run_session(Session.open(str(small_export), "onnxruntime"), frames, labels[0])
    gpu = run_session(Session.open(str(small_export), "onnxruntime", providers=["CUDAExecutionProvider"]),
                      frames, labels[0])
    assert compare(gpu, cpu)[0] >= 0.999


@pytest.mark.gpu
@pytest.mark.parametrize("precision,agreement", [("fp32", 0.999), ("fp16", 0.99)])
def test_torch_backend_on_cuda_matches_hmmn_ref_on_the_cpu(precision, agreement):
    """The state stays on the GPU between steps (bank, tracks, probabilities); FP32 there runs
    without TF32, so it is as close to the CPU reference as the CPU backends are. The small built-in
    model (trained, decisive): random weights leave too many pixels near a tie to judge FP16 by."""
    from hmmn_deploy.demo import load_demo_model
    from hmmn_deploy.demo.synthetic import make_video

    model = load_demo_model("small")
    frames, labels = make_video(700_200, 12, 96, 128)
    reference = hmmn_ref.run_video(model, as_video(frames), torch.from_numpy(labels[0]).long())
    session = Session.from_model(model, precision, device="cuda")
    assert next(model.parameters()).device.type == "cpu"  # the caller's model is not moved
    state = session.start(frames[0], labels[0])
    assert all(b.device.type == "cuda" for b in state.buffers())
    agree, max_dp = compare(run_session(session, frames, labels[0]), reference.numpy())
    print(f"torch cuda {precision}: argmax agreement {agree:.5f}, max |dP| {max_dp:.2e}")
    assert agree >= agreement
    if precision == "fp32":
        assert max_dp < 1e-3


@pytest.mark.gpu
def test_reference_loop_runs_on_cuda(small_model, small_clip):
    """hmmn_ref.run_video (the benchmark's baseline) on the GPU agrees with itself on the CPU."""
    frames, labels = small_clip
    first = torch.from_numpy(labels[0]).long()
    cpu = hmmn_ref.run_video(small_model, as_video(frames), first, mem_every=3)
    model = copy.deepcopy(small_model).cuda()
    with exact_fp32(torch.device("cuda")):
        gpu = hmmn_ref.run_video(model, as_video(frames).cuda(), first.cuda(), mem_every=3)
    agree, max_dp = compare(gpu.cpu().numpy(), cpu.numpy())
    assert agree >= 0.999 and max_dp < 1e-3, (agree, max_dp)


def test_a_cuda_device_without_a_gpu_is_refused_clearly():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(BackendUnavailable, match="sees none"):
        Session.from_model(hmmn_ref.HMMN(hmmn_ref.SMALL), device="cuda")
