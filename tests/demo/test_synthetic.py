"""The video generator: a seed's plain video never changes (training, validation and report
seeds rely on it); the varied videos add motion blur, a sweeping light, and objects that leave
the frame and come back."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hmmn_deploy.demo.synthetic import PLAIN, VARIED, Variety, make_video


def digest(frames: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(frames.tobytes() + labels.tobytes()).hexdigest()


def test_plain_videos_stay_what_they_were():
    # Recorded before the varieties were added: the plain draws must not move.
    assert digest(*make_video(5, 12, 48, 64)) == "2412f89b92d64d4148985d8631c8170113180e4b58a04813dea6fa28c7b543cc"
    assert digest(*make_video(24000, 24, 96, 128, variety=PLAIN)) == \
        "5e299ec15d8786bc09015aa04b93b29ac58ec674acbca38a3624ab63bf1e17d4"


def objects_that_come_back(labels: np.ndarray) -> list:
    """Labels of frame 0's objects that vanish from the frame and are seen again later."""
    back = []
    for label in np.unique(labels[0])[1:]:
        visible = (labels == label).reshape(len(labels), -1).any(1)
        gone = np.flatnonzero(~visible)
        if gone.size and visible[gone[0]:].any():
            back.append(int(label))
    return back


def test_objects_leave_and_come_back():
    # (A plain video's object may vanish behind another one and come back too, so plain videos
    # are not the contrast here: every varied one has its trip, out of the frame and back.)
    for seed in range(20, 26):
        labels = make_video(seed, 60, 96, 128, variety=Variety(leave_return=1.0))[1]
        assert objects_that_come_back(labels), seed


def sharpness(frames: np.ndarray) -> float:
    """Mean absolute step between neighbouring pixels, both ways (the sensor noise, added after the
    blur and the same in both videos of a seed, keeps it well above 0)."""
    frames = frames.astype(np.float64)
    return float(np.abs(np.diff(frames, axis=1)).mean() + np.abs(np.diff(frames, axis=2)).mean())


def test_blur_and_light_change_the_pixels_not_the_masks():
    plain_frames, plain_labels = make_video(31, 10, 192, 256)
    blurred, blurred_labels = make_video(31, 10, 192, 256, variety=Variety(motion_blur=1.0))
    lit, lit_labels = make_video(31, 10, 192, 256, variety=Variety(lighting=0.3))
    assert np.array_equal(plain_labels, blurred_labels) and np.array_equal(plain_labels, lit_labels)
    assert sharpness(blurred) < 0.97 * sharpness(plain_frames)  # every frame smeared (measured: 0.93)
    assert np.abs(lit.astype(int) - plain_frames).mean() > 5  # measured: 15.9 grey levels


def test_varied_preset_and_bad_values():
    frames, labels = make_video(4242, 24, 96, 128, variety=VARIED)
    assert frames.shape == (24, 96, 128, 3) and labels.shape == (24, 96, 128)
    assert not np.array_equal(frames, make_video(4242, 24, 96, 128)[0])
    with pytest.raises(ValueError, match="motion_blur"):
        Variety(motion_blur=1.5)
