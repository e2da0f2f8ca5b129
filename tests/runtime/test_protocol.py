"""The memory protocol (hmmn_ref.protocol): its rules on the cases libhmmn runs too
(tests/data/protocol_cases.json), and the runtime's capped bank against
hmmn_ref.run_video(capacity=...), the reference that follows the same rules."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_deploy.runtime import Session
from hmmn_ref import protocol
from hmmn_ref.sample_video import make_sample_video
from hmmn_ref.video import padded_size, padding_for


CASES = json.loads((pathlib.Path(__file__).resolve().parents[1] / "data" / "protocol_cases.json").read_text())


@pytest.mark.parametrize("case", CASES["schedules"], ids=lambda c: c["name"])
def test_schedule_cases(case):
    start, slots, placed = case["start"], [], []
    for previous in range(start, start + case["steps"]):
        kept = protocol.is_kept(previous, start, case["mem_every"])
        placed.append(protocol.place_kept(slots, previous, case["capacity"]) if kept else None)
    assert placed == case.get("placed", placed)
    assert slots == case["slot_frames"]
    assert protocol.slot_ages(slots + [start + case["steps"]]) == case["ages_next"]


@pytest.mark.parametrize("case", CASES["settings"], ids=str)
def test_settings_cases(case):
    problem = protocol.settings_problem(capacity=case["capacity"], mem_every=case["mem_every"])
    assert (problem == "") is case["accepted"], problem
    if not case["accepted"]:
        with pytest.raises(protocol.SettingsError, match="must be a whole number >="):
            protocol.check_settings(capacity=case["capacity"], mem_every=case["mem_every"])


@pytest.mark.parametrize("case", CASES["padding"], ids=str)
def test_padding_cases(case):
    assert list(padding_for(case["height"], case["width"], case["multiple"])) == case["pad"]
    assert padded_size(case["height"], case["width"]) == (case["height"] + sum(case["pad"][:2]),
                                                          case["width"] + sum(case["pad"][2:]))


def test_unbounded_bank_and_option_wording():
    unbounded = []  # Python only: libhmmn always has a capacity
    assert [protocol.place_kept(unbounded, f, None) for f in (0, 5, 10)] == [0, 1, 2]
    assert protocol.settings_problem(True, mem_every=0) == "--mem-every 0: give a whole number >= 1"
    assert protocol.settings_problem(True, max_objects=0, capacity=3) == "--max-objects 0: give a whole number >= 1"
    assert protocol.settings_problem(capacity=None, mem_every=None) == ""


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
