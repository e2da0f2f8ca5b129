"""The memory protocol (hmmn_ref.protocol): its rules, and the runtime's capped bank against
hmmn_ref.run_video(capacity=...), the reference that follows the same rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_deploy.runtime import Session
from hmmn_ref import protocol
from hmmn_ref.sample_video import make_sample_video


def test_kept_frames_slots_and_ranks():
    assert [f for f in range(12) if protocol.is_kept(f, 0, 5)] == [0, 5, 10]
    assert [f for f in range(4, 12) if protocol.is_kept(f, 4, 3)] == [4, 7, 10]  # a group that joined at 4
    assert protocol.slot_ages([0, 2, 4, 5]) == [3, 2, 1, 0]
    assert protocol.slot_ages([0, 8, 6, 9]) == [3, 1, 2, 0]  # slot 1 was replaced in place
    slots, placed = [], []
    for frame in range(0, 12, 2):  # every 2nd frame kept, 4 slots read: 3 kept + the previous
        placed.append(protocol.place_kept(slots, frame, 4))
    assert placed == [0, 1, 2, 1, 2, 1] and slots == [0, 10, 8]
    assert protocol.place_kept([0], 3, 2) is None  # capacity 2: first and previous frame only
    unbounded = []
    assert [protocol.place_kept(unbounded, f, None) for f in (0, 5, 10)] == [0, 1, 2]


@pytest.fixture(scope="module")
def clip():
    return make_sample_video(num_frames=24, height=96, width=128, seed=11)


def video(frames):
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def session_logits(session, frames, first):
    state = session.start(frames[0], first)
    return np.stack([session.step(state, f, outputs=("logits",)).logits for f in frames[1:]])


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_capped_bank_equals_run_video_with_that_capacity(small_model, small_export, clip, backend):
    """Capacity 4, every 2nd frame kept, 24 frames: slots are replaced in place from frame 7 on."""
    frames, labels = clip
    first = torch.from_numpy(labels[0]).long()
    reference = hmmn_ref.run_video(small_model, video(frames), first, mem_every=2, capacity=4).numpy()
    uncapped = hmmn_ref.run_video(small_model, video(frames), first, mem_every=2).numpy()
    assert np.array_equal(reference[:5], uncapped[:5])  # the same until the bank fills
    assert np.abs(reference[8:] - uncapped[8:]).max() > 1e-2  # then the cap changes what is read
    session = Session.open(str(small_export), backend, model=small_model, mem_every=2, capacity=4)
    got = session_logits(session, frames, labels[0])
    p = torch.softmax(torch.from_numpy(got), 1).numpy()
    pr = torch.softmax(torch.from_numpy(reference), 1).numpy()
    agreement = float((got.argmax(1) == reference.argmax(1)).mean())
    assert agreement >= 0.999 and np.abs(p - pr).max() < 1e-3, (agreement, np.abs(p - pr).max())
