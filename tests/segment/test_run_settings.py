"""hmmn-run's settings are what the user asked for: the export cache never changes a later run's
mem_every, and frames per second counts only the frames the model processed."""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from PIL import Image

import hmmn_ref
from hmmn_deploy.segment import cli
from hmmn_ref.media import davis_palette
from hmmn_ref.sample_video import make_sample_video


def run(*argv) -> int:
    return cli.main([str(a) for a in argv] + ["--no-progress"])


def save_mask(path, labels):
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(davis_palette())
    image.save(path)


def test_a_cached_export_does_not_carry_mem_every_to_later_runs(tmp_path):
    """A first run with --mem-every 3 made the cache's manifest say 3, and every later default
    graph-backend run read it back (the torch backend used 5)."""
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
    weights = tmp_path / "small.pth"
    torch.save(model.state_dict(), weights)
    video, labels = make_sample_video(4, 96, 128, num_objects=2, seed=3)
    (tmp_path / "clip").mkdir()
    for t in range(4):
        Image.fromarray(video[t]).save(tmp_path / "clip" / f"{t:05d}.jpg", quality=95)
    save_mask(tmp_path / "first.png", labels[0])
    args = [tmp_path / "clip", "--mask", tmp_path / "first.png", "--weights", weights, "--config", "small",
            "--cache", tmp_path / "cache"]
    assert run(*args, "--mem-every", "3", "-o", tmp_path / "three") == 0
    assert run(*args, "-o", tmp_path / "default") == 0
    assert run(*args, "--backend", "torch", "-o", tmp_path / "torch") == 0
    settings = {name: json.loads((tmp_path / name / "summary.json").read_text())["mem_every"]
                for name in ("three", "default", "torch")}
    assert settings == {"three": 3, "default": 5, "torch": 5}
    assert len(os.listdir(tmp_path / "cache")) == 1  # one export served both mem_every values


def test_frames_per_second_counts_only_the_frames_the_model_processed(small_export, tmp_path):
    """An object that enters on the 4th of 8 frames: the 3 frames before it are written without
    the model and must not count."""
    root = tmp_path / "ytvos"
    video, labels = make_sample_video(8, 96, 128, num_objects=1, seed=5)
    (root / "JPEGImages/late").mkdir(parents=True)
    (root / "Annotations/late").mkdir(parents=True)
    for t in range(8):
        Image.fromarray(video[t]).save(root / "JPEGImages/late" / f"{t:05d}.jpg", quality=95)
    save_mask(root / "Annotations/late/00003.png", labels[3])
    (root / "meta.json").write_text(json.dumps({"videos": {"late": {"objects": {}}}}))
    out = tmp_path / "out"
    assert run(root, "-o", out, "--artifacts", small_export) == 0
    summary = json.loads((out / "summary.json").read_text())
    record = summary["sequences"]["late"]
    assert record["frames"] == 8 and record["model_frames"] == 5
    assert abs(record["fps"] - 5 / record["model_seconds"]) <= 0.01 * record["fps"]
    assert abs(summary["fps"] - 5 / record["model_seconds"]) <= 0.01 * summary["fps"]
