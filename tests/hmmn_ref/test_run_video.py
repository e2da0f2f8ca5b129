"""The public video loop: its contract, teacher forcing, label mapping and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_ref.sample_video import make_sample_video


@pytest.fixture(scope="module")
def clip():
    """A 7-frame, 2-object generated clip at 96x128 (48 cells on the 1/16 grid)."""
    frames, labels = make_sample_video(num_frames=7, height=96, width=128, num_objects=2, seed=3)
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(labels).long()


def test_small_config_runs_the_same_loop(small_model, clip):
    frames, labels = clip
    logits = hmmn_ref.run_video(small_model, frames, labels[0])
    assert logits.shape == (6, 3, 96, 128) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    # Soft aggregation: softmax over K of L sums to one; bg = prod(1 - p_o) before the clamp.
    probs = torch.softmax(logits, 1)
    assert torch.allclose(probs.sum(1), torch.ones(6, 96, 128), atol=1e-5)


def test_teacher_with_own_predictions_reproduces_the_free_run(small_model, clip):
    frames, labels = clip
    free = hmmn_ref.run_video(small_model, frames, labels[0])
    teacher = torch.cat([hmmn_ref.one_hot(labels[0], [1, 2])[None], torch.softmax(free, 1)])
    forced = hmmn_ref.run_video(small_model, frames, labels[0], teacher=teacher)
    assert torch.allclose(forced, free, atol=1e-5)


def test_teacher_changes_what_is_memorised(small_model, clip):
    frames, labels = clip
    free = hmmn_ref.run_video(small_model, frames, labels[0])
    truth = torch.stack([hmmn_ref.one_hot(l, [1, 2]) for l in labels])
    forced = hmmn_ref.run_video(small_model, frames, labels[0], teacher=truth)
    assert torch.equal(forced[0], free[0])  # frame 1 reads frame 0 only: the annotation either way
    assert not torch.allclose(forced[1:], free[1:])


def test_labels_with_gaps_map_to_consecutive_objects(small_model, clip):
    frames, labels = clip
    gappy = torch.zeros_like(labels[0])
    gappy[labels[0] == 1] = 2
    gappy[labels[0] == 2] = 5
    assert hmmn_ref.object_labels(gappy) == [2, 5]
    assert torch.equal(hmmn_ref.run_video(small_model, frames, gappy), hmmn_ref.run_video(small_model, frames, labels[0]))


def test_mem_every_sets_the_permanent_frames(small_model, clip):
    frames, labels = clip
    every5 = hmmn_ref.run_video(small_model, frames, labels[0], mem_every=5)
    every1 = hmmn_ref.run_video(small_model, frames, labels[0], mem_every=1)
    # Frames 1 and 2 read the same memory (frame 0; frames 0 and 1); frame 3 differs (frame 1 kept).
    assert torch.equal(every5[:2], every1[:2])
    assert not torch.allclose(every5[2], every1[2])


def test_single_frame_video_gives_no_logits(small_model, clip):
    frames, labels = clip
    assert hmmn_ref.run_video(small_model, frames[:1], labels[0]).shape == (0, 3, 96, 128)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, m: (f, torch.zeros_like(m)), "no object"),
        (lambda f, m: (f, m[:, :100]), "first_mask is"),
        (lambda f, m: (f, m.float()), "integer labels"),
        (lambda f, m: (f[:, :2], m), r"\[T, 3, H, W\]"),
        (lambda f, m: ((f * 255).to(torch.uint8), m), "float32"),
        (lambda f, m: (f[:, :, :32, :32], m[:32, :32]), "1/16 grid"),
    ],
)
def test_bad_inputs_get_clear_errors(small_model, clip, change, message):
    frames, labels = change(clip[0], clip[1][0])
    with pytest.raises(ValueError, match=message):
        hmmn_ref.run_video(small_model, frames, labels)


def test_bad_teacher_and_mem_every(small_model, clip):
    frames, labels = clip
    with pytest.raises(ValueError, match="teacher must be"):
        hmmn_ref.run_video(small_model, frames, labels[0], teacher=torch.zeros(7, 2, 96, 128))
    with pytest.raises(ValueError, match="mem_every"):
        hmmn_ref.run_video(small_model, frames, labels[0], mem_every=0)


def test_padding_split_follows_public_code():
    assert hmmn_ref.padding_for(100, 150) == (6, 6, 5, 5)
    assert hmmn_ref.padding_for(480, 854) == (0, 0, 5, 5)
    assert hmmn_ref.padding_for(99, 161) == (6, 7, 7, 8)


def test_sample_video_is_deterministic():
    a = make_sample_video(num_frames=3, height=48, width=64, seed=1)
    b = make_sample_video(num_frames=3, height=48, width=64, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert set(np.unique(a[1][0])) == {0, 1, 2}
