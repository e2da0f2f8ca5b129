"""tools/train_mobile.py: a short run trains only what it should, resumes, and records its inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

import hmmn_ref
from conftest import TOOLS, load_tool

from tests.hmmn_ref.test_mobilenet_v2 import needs_weights


@needs_weights
def test_a_short_run_trains_the_heads_keeps_the_trunk_and_records_its_inputs(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, str(TOOLS / "train_mobile.py"), "--out", str(run), "--iterations", "2",
               "--size", "96x128:3", "--val-every", "2", "--val-videos", "1", "--save-every", "1",
               "--threads", "1", "--export", str(tmp_path / "w.pth")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = hmmn_ref.load_weights(hmmn_ref.HMMN(hmmn_ref.MOBILE), tmp_path / "w.pth")
    start = hmmn_ref.imagenet_weights.init_mobile_trunks(hmmn_ref.HMMN(hmmn_ref.MOBILE))
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # noqa: E731
    assert same(trained.Encoder_Q, start.Encoder_Q) and same(trained.Encoder_M, start.Encoder_M)  # frozen: ImageNet's
    assert not same(trained.Decoder, start.Decoder) and not same(trained.KV_M_r4, start.KV_M_r4)
    record = json.loads((tmp_path / "w.json").read_text())
    assert record["config"] == "mobile" and record["iterations_done"] == 2
    assert record["imagenet_weights"]["sha256"].startswith("b0353104")
    assert record["photos"]["chelsea"]["licence"].startswith("CC0") and record["trained_sizes"] == [[96, 128]]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in log] == [2] and 0 <= log[0]["val_jf_photo"] <= 100
    # a finished run resumes as finished: nothing more is trained
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resuming at iteration 2" in again.stderr


@needs_weights
def test_no_iterations_export_label_propagation_at_the_given_size(tmp_path):
    """A fresh run starts with the decoder's correction at zero: exported untrained, the model is the
    mask prior alone (label propagation over the ImageNet trunk), recorded to run at --size."""
    command = [sys.executable, str(TOOLS / "train_mobile.py"), "--out", str(tmp_path / "run"), "--iterations", "0",
               "--size", "240x320", "--threads", "1", "--export", str(tmp_path / "w.pth")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    model = hmmn_ref.load_weights(hmmn_ref.HMMN(hmmn_ref.MOBILE), tmp_path / "w.pth")
    assert not model.Decoder.pred2.weight.any() and not model.Decoder.pred2.bias.any()
    record = json.loads((tmp_path / "w.json").read_text())
    assert record["iterations_done"] == 0 and record["trained_sizes"] == [[240, 320]]


@needs_weights
def test_the_area_term_is_zero_for_no_correction_and_grows_with_a_correction_that_grows_masks():
    """--area-weight's term: the correction's relative change of each object's area, on the frame and
    memory the model itself reads (0 when the correction is 0), with a gradient into the decoder."""
    train_mobile = load_tool("train_mobile")
    model = train_mobile.start_as_propagation(hmmn_ref.imagenet_weights.init_mobile_trunks(hmmn_ref.HMMN(hmmn_ref.MOBILE)))
    model.eval()
    train_mobile.trainable_parameters(model)
    area = train_mobile.CorrectionArea(model)
    video, labels = train_mobile.make_photo_video(3, train_mobile.photo_library(), 3, 96, 128)
    frames, targets = train_mobile.as_tensors(video, labels)
    with torch.no_grad():
        train_mobile.clip_loss(model, frames, targets)
    assert area.take().item() == 0.0  # nothing kept without autograd (validation)
    train_mobile.clip_loss(model, frames, targets)
    assert area.take().item() == 0.0  # the untrained model is its prior
    with torch.no_grad():
        model.Decoder.pred2.bias.copy_(torch.tensor([0.0, 2.0]))  # every object's logit up by 2: masks grow
    train_mobile.clip_loss(model, frames, targets)
    term = area.take()
    assert term.item() > 0.05
    term.backward()
    assert model.Decoder.pred2.bias.grad[1] > 0  # lowering the push lowers the term


def test_negative_loss_options_are_refused_before_anything_is_written(tmp_path):
    for option in ("--area-weight", "--ignore-band", "--jaccard"):
        command = [sys.executable, str(TOOLS / "train_mobile.py"), "--out", str(tmp_path / "run"), option, "-1"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2 and f"{option} -1" in done.stderr and "give a value >= 0" in done.stderr
    assert not (tmp_path / "run").exists()
