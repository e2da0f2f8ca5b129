"""tools/propagation_baseline.py: the memory schedule, the top-k softmax aggregation by hand, and a
run on a tiny clip of real photos (scikit-image's samples) written in DAVIS layout."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from conftest import load_tool
from hmmn_ref import imagenet_weights
from hmmn_ref.media import davis_palette, read_mask, write_mask


def test_memory_schedule():
    tool = load_tool("propagation_baseline")
    assert tool.memory_frames(1) == [0]
    assert tool.memory_frames(6) == [0, 5]  # frame 5 is both kept and the previous one
    assert tool.memory_frames(8) == [0, 5, 7]
    # past 8 kept frames, the most recent 8: 10 .. 45, then the previous frame 49
    assert tool.memory_frames(50) == [0, 10, 15, 20, 25, 30, 35, 40, 45, 49]


def test_top_k_softmax_aggregation_by_hand():
    tool = load_tool("propagation_baseline")
    # 2-channel features; memory cells m0..m3 with labels (background, object) each.
    keys = torch.tensor([[1.0, 0.0, 0.6, -1.0],
                         [0.0, 1.0, 0.8, 0.0]])  # [C=2, Nm=4]
    labels = torch.tensor([[1.0, 0.0, 0.5, 1.0],
                           [0.0, 1.0, 0.5, 0.0]])  # [K+1=2, Nm=4]
    query = torch.tensor([[1.0], [0.0]])  # [C=2, Nq=1]: affinities 1.0, 0.0, 0.6, -1.0
    out = tool.top_k_aggregate(query, keys, labels, top_k=2, temperature=0.1)
    # top 2: m0 (1.0) and m2 (0.6); softmax of (10, 6)
    w0 = 1 / (1 + math.exp(-4))
    w2 = 1 - w0
    expected = torch.tensor([[w0 * 1.0 + w2 * 0.5], [w0 * 0.0 + w2 * 0.5]])
    assert torch.allclose(out, expected, atol=1e-6)
    # top_k past the memory's size takes every cell
    every = tool.top_k_aggregate(query, keys, labels, top_k=50, temperature=1.0)
    weights = torch.softmax(torch.tensor([1.0, 0.0, 0.6, -1.0]), 0)
    assert torch.allclose(every[:, 0], labels @ weights, atol=1e-6)


def photo_clip(frames_count: int = 10, height: int = 96, width: int = 128, size: int = 40, step: int = 6):
    """The cat's face (skimage's chelsea, halved) sliding right over the coffee photo, 6 px a frame:
    frames uint8 [T, H, W, 3], labels uint8 [T, H, W] (object 1)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image's sample photos")
    background = data.coffee()[100:100 + height, 150:150 + width]
    face = data.chelsea()[60:60 + 2 * size:2, 140:140 + 2 * size:2]
    frames = np.repeat(background[None], frames_count, axis=0)
    labels = np.zeros((frames_count, height, width), np.uint8)
    for t in range(frames_count):
        x = 8 + step * t
        frames[t, 28:28 + size, x:x + size] = face
        labels[t, 28:28 + size, x:x + size] = 1
    return frames, labels


def write_davis(root, name: str, frames: np.ndarray, first: np.ndarray) -> None:
    from PIL import Image

    images = root / "JPEGImages" / "480p" / name
    marks = root / "Annotations" / "480p" / name
    images.mkdir(parents=True)
    marks.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(images / f"{t:05d}.png")
    write_mask(str(marks / "00000.png"), first, davis_palette())


def mean_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames 1.. of object 1's IoU."""
    scores = [((p == 1) & (g == 1)).sum() / ((p == 1) | (g == 1)).sum() for p, g in zip(pred[1:], truth[1:])]
    return float(np.mean(scores))


def read_run(folder) -> np.ndarray:
    names = sorted(os.listdir(folder))
    return np.stack([read_mask(os.path.join(folder, n))[0] for n in names])


def test_copy_first_mask_writes_davis_layout(tmp_path):
    tool = load_tool("propagation_baseline")
    frames, labels = photo_clip()
    write_davis(tmp_path / "clip_root", "clip", frames, labels[0])
    assert tool.main([str(tmp_path / "clip_root"), "-o", str(tmp_path / "out"), "--copy-first-mask"]) == 0
    assert sorted(os.listdir(tmp_path / "out" / "clip")) == [f"{t:05d}.png" for t in range(len(frames))]
    copied = read_run(tmp_path / "out" / "clip")
    assert (copied == labels[0]).all()


def test_propagation_follows_a_moving_photo(tmp_path):
    try:
        imagenet_weights.weights_path()
    except imagenet_weights.ImageNetWeightsError:
        pytest.skip(f"no ImageNet weights: {imagenet_weights.INSTALL}")
    torch.set_num_threads(1)
    tool = load_tool("propagation_baseline")
    frames, labels = photo_clip()
    write_davis(tmp_path / "clip_root", "clip", frames, labels[0])
    out = tmp_path / "out"
    assert tool.main([str(tmp_path / "clip_root"), "-o", str(out), "--overlay-frames", "9"]) == 0
    assert sorted(os.listdir(out / "clip")) == [f"{t:05d}.png" for t in range(len(frames))]
    assert (out / "overlays" / "clip" / "00009.jpg").is_file()
    predicted = read_run(out / "clip")
    assert set(np.unique(predicted)) <= {0, 1}
    propagated, copied = mean_iou(predicted, labels), mean_iou(np.repeat(labels[:1], len(labels), 0), labels)
    # measured: 0.84 against 0.23 (--affinity sum: 0.78); the face has left its first place by frame 7
    assert propagated > 0.65 and propagated > copied + 0.4, (propagated, copied)
