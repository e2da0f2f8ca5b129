"""Videos made of real photos (demo/photo_clips.py), the mobile model's training data."""

from __future__ import annotations

import numpy as np
import pytest

from hmmn_deploy.demo import photo_clips
from hmmn_deploy.demo.photo_clips import PHOTO_SOURCES, PhotoLibraryError, make_photo_video, photo_library


@pytest.fixture(scope="module")
def photos():
    return photo_library(longest=256)


def test_every_photo_is_found_with_its_licence(photos):
    assert sorted(photos) == sorted(PHOTO_SOURCES)
    for name, image in photos.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and max(image.shape[:2]) <= 256
        assert PHOTO_SOURCES[name][2], name  # each source states its licence


def test_a_seed_gives_the_same_video_and_tracked_objects_start_visible(photos):
    frames, labels = make_photo_video(11, photos, 5, 64, 96)
    again = make_photo_video(11, photos, 5, 64, 96)
    assert np.array_equal(frames, again[0]) and np.array_equal(labels, again[1])
    assert frames.shape == (5, 64, 96, 3) and labels.shape == (5, 64, 96)
    other = make_photo_video(12, photos, 5, 64, 96)[0]
    assert not np.array_equal(frames, other)
    for seed in range(20):
        _, labels = make_photo_video(seed, photos, 3, 64, 96)
        ids = np.unique(labels[0])
        assert ids[0] == 0 and list(ids[1:]) == list(range(1, len(ids)))  # 1..K, no gap
        assert len(ids) >= 2  # at least one object to follow


def test_a_missing_photo_package_is_named(monkeypatch):
    monkeypatch.setitem(PHOTO_SOURCES, "missing", ("no_such_package_here", "x.png", "none"))
    with pytest.raises(PhotoLibraryError, match="comes with the package no_such_package_here"):
        photo_clips.photo_path("missing")
