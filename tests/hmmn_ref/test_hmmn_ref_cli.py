"""`hmmn-ref` as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hmmn_ref import cli, media
from hmmn_ref.sample_video import make_sample_video


def test_generated_clip_writes_masks_and_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["--config", "small", "--frames", "4", "--size", "96x128", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 4 and summary["objects"] == [1, 2]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["00000.png", "00001.png", "00002.png", "00003.png"]
    image = Image.open(out / "00002.png")
    assert image.mode == "P" and image.size == (128, 96)


def test_frame_folder_keeps_object_ids_and_palette(tmp_path, capsys):
    frames, labels = make_sample_video(num_frames=3, height=96, width=128, seed=5)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame{t}.png")
    gappy = np.where(labels[0] == 2, 7, labels[0]).astype(np.uint8)  # objects 1 and 7
    palette = media.davis_palette()
    media.write_mask(str(tmp_path / "first.png"), gappy, palette)
    out = tmp_path / "out"
    assert cli.main([str(folder), "--mask", str(tmp_path / "first.png"), "--config", "small", "-o", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["objects"] == [1, 7]
    written = Image.open(out / "00002.png")
    assert set(np.unique(np.asarray(written))) <= {0, 1, 7}
    assert written.getpalette()[:24] == palette[:24]


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert cli.main([str(tmp_path), "--config", "small"]) == 2
    assert "--mask" in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 10)
    assert cli.main(["--config", "small", "--weights", str(bad), "--frames", "2"]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert cli.main([str(tmp_path), "--mask", str(tmp_path / "broken.png"), "--config", "small"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_size_argument_is_checked():
    with pytest.raises(SystemExit):
        cli.main(["--size", "480by854"])
