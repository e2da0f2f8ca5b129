"""tools/mask_errors.py: the pixels a model adds and misses, on a run's output and on photo videos."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import load_tool

mask_errors = load_tool("mask_errors")


def square(size: int, start: int, stop: int, label: int = 1) -> np.ndarray:
    labels = np.zeros((size, size), np.uint8)
    labels[start:stop, start:stop] = label
    return labels


def test_added_and_missed_count_each_way_and_a_wrong_object_both():
    gt = square(12, 3, 9)  # 36 object pixels
    assert mask_errors.added_and_missed(gt, gt) == (36, 0, 0)
    assert mask_errors.added_and_missed(square(12, 2, 10), gt) == (36, 64 - 36, 0)  # grown by a pixel
    assert mask_errors.added_and_missed(square(12, 4, 8), gt) == (36, 0, 36 - 16)  # shrunk by a pixel
    assert mask_errors.added_and_missed(square(12, 3, 9, label=2), gt) == (36, 36, 36)  # the other object


def write_sequence(root, name, masks):
    folder = root / name
    folder.mkdir(parents=True)
    for t, labels in enumerate(masks):
        Image.fromarray(labels).save(folder / f"{t:05d}.png")


def test_a_run_is_counted_per_block_and_a_missing_sequence_is_refused(tmp_path, capsys):
    gt, pred = tmp_path / "gt" / "Annotations" / "480p", tmp_path / "pred"
    write_sequence(gt, "seq", [square(12, 3, 9)] * 4)
    write_sequence(pred, "seq", [square(12, 3, 9)] * 2 + [square(12, 2, 10)] * 2)
    assert mask_errors.main(["run", "--gt", str(tmp_path / "gt"), "--pred", str(pred), "--block", "2"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "seq: 4 frames, mean per frame"
    assert said[2].split() == ["0-1", "36", "0", "0", "-"] and said[3].split() == ["2-3", "36", "28", "0", "-"]
    assert mask_errors.main(["run", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "none")]) == 2
    assert "has no predictions" in capsys.readouterr().err


def test_photo_videos_are_counted_with_the_built_in_model(capsys):
    assert mask_errors.main(["photo", "--seeds", "3", "4", "--frames", "3", "--size", "96x128"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 photo videos, 3 frames at 96x128, mean per video"
    rows = [line.split() for line in lines[2:]]
    assert [r[:2] for r in rows] == [["frame", "1"], ["frame", "2"]]
    assert all(float(r[2]) > 0 for r in rows)  # the clips' objects are visible in every frame counted
