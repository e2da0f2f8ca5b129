"""Issue 19, cases 7 and 8: input checks the runtime lacked, and messages that misled."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_deploy import demo
from hmmn_deploy.runtime import Session
from hmmn_deploy.runtime.errors import RuntimeInputError
from hmmn_deploy.segment import cli
from hmmn_ref.checkpoint import CheckpointError
from hmmn_ref.shell import parse_size

SIZE = (96, 128)


def test_negative_labels_are_refused_by_start_and_add_objects(small_model):
    session = Session.from_model(small_model, capacity=8)
    frame = np.zeros(SIZE + (3,), np.uint8)
    mask = np.zeros(SIZE, np.int32)
    mask[10:30, 10:30] = 1
    mask[50:70, 50:70] = -1  # would become a second object, tracked as "the background"
    with pytest.raises(RuntimeInputError, match=r"negative labels \[-1\]"):
        session.start(frame, mask)
    state = session.start(frame, np.where(mask == 1, 1, 0))
    session.step(state, frame)
    with pytest.raises(RuntimeInputError, match="negative labels"):
        session.add_objects(state, np.where(mask < 0, -3, 0))
    assert state.object_ids == [1]


def test_unreadable_checkpoints_never_advise_unsafe_loading(tmp_path):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    pickled = tmp_path / "objects.pth"
    torch.save({"weight": torch.zeros(2), "args": argparse.Namespace(lr=1)}, pickled)
    for path, says in ((noise, "not a PyTorch checkpoint"), (pickled, "argparse.Namespace")):
        with pytest.raises(CheckpointError) as info:
            hmmn_ref.load_model(path)
        text = str(info.value)
        assert says in text and "weights_only" not in text and "will likely succeed" not in text


def test_demo_weights_without_config_small_name_the_configuration():
    with pytest.raises(CheckpointError) as info:
        hmmn_ref.load_model(demo.weights_path("small"))  # the paper configuration by default
    text = str(info.value)
    assert "pass --config small" in text and "missing" not in text and len(text.splitlines()) == 1


def test_tensorrt_without_a_gpu_does_not_advise_device_cpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    frames = tmp_path / "clip"
    frames.mkdir()
    for t in range(2):
        hmmn_ref.media.write_mask(str(frames / f"{t:05d}.png"), np.zeros(SIZE, np.uint8), hmmn_ref.media.davis_palette())
    code = cli.main([str(frames), "--mask", str(frames / "00000.png"), "-o", str(tmp_path / "out"),
                     "--backend", "tensorrt", "--random-weights", "--config", "small", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "needs a CUDA GPU" in err and "--backend onnxruntime" in err
    assert "--device cpu" not in err


def test_too_small_size_states_the_minimum():
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_size("10x10")
    assert "at least 16 pixels" in str(info.value) and "32 for paper" in str(info.value)
