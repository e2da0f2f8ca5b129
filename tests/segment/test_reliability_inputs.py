"""Issue 33, cases 5-8, 10 and 11: 16-bit frames and masks, a FIFO named like a frame, a JPEG
mask, a JPEG renamed .mp4, Session.start(frame, None), and the smaller ones (a resumed run's
closing line, "(see summary.json)" only when it was written, no empty lock on a full disk, a
1-bit mask)."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.runtime import Session
from hmmn_deploy.runtime.errors import RuntimeInputError
from hmmn_deploy.segment import cli, outdir, writer
from hmmn_ref.media import davis_palette, read_image, read_mask, write_mask
from hmmn_ref.sample_video import make_sample_video

FRAMES, H, W = 4, 64, 96
MODEL = ["--backend", "torch", "--random-weights", "--config", "small", "--no-progress"]


def run(*argv) -> int:
    return cli.main([str(a) for a in argv] + MODEL)


@pytest.fixture
def clip(tmp_path) -> pathlib.Path:
    """tmp_path/clip/: PNG frames; tmp_path/first.png: the first mask (objects 1 and 2)."""
    video, labels = make_sample_video(FRAMES, H, W, num_objects=2, seed=9)
    (tmp_path / "clip").mkdir()
    for t in range(FRAMES):
        Image.fromarray(video[t]).save(tmp_path / "clip" / f"{t:05d}.png")
    write_mask(str(tmp_path / "first.png"), labels[0], davis_palette())
    return tmp_path / "clip"


def test_16_bit_grey_frames_are_scaled_to_8_bits(tmp_path, clip):
    """Case 5: 16-bit grey frames (PIL mode I;16) became pure white."""
    ramp = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 65535 // (H * W - 1)).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    frame = read_image(str(path))
    expected = np.round(ramp.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert frame.dtype == np.uint8 and frame.shape == (H, W, 3)
    assert np.array_equal(frame[..., 0], expected) and np.array_equal(frame[..., 2], expected)
    for t in range(FRAMES):  # a whole clip of 16-bit frames runs, with the frames' content
        grey = np.asarray(Image.open(clip / f"{t:05d}.png").convert("L")).astype(np.uint16) * 257
        Image.fromarray(grey).save(clip / f"{t:05d}.png")
    assert run(clip, "--mask", tmp_path / "first.png", "-o", tmp_path / "out") == 0


def test_16_bit_masks_hold_labels_0_to_255(tmp_path, clip, capsys):
    """Case 5: labels 256 and 257 wrapped to 0 and 1 (an object lost)."""
    labels = np.asarray(Image.open(tmp_path / "first.png")).astype(np.uint16)
    Image.fromarray(labels * 7).save(tmp_path / "ok16.png")  # 16-bit, labels 0, 7, 14: kept
    assert np.array_equal(read_mask(str(tmp_path / "ok16.png"))[0], labels * 7)
    wide = np.where(labels > 0, labels + 255, 0).astype(np.uint16)  # 256 and 257
    Image.fromarray(wide).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match=r"labels 256, 257, outside 0\.\.255"):
        read_mask(str(tmp_path / "wide.png"))
    assert run(clip, "--mask", tmp_path / "wide.png", "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "256, 257" in err and "Traceback" not in err
    assert not (tmp_path / "out/clip").exists()


def test_a_fifo_named_like_a_frame_is_refused_not_waited_on(tmp_path, clip):
    """Case 6: a FIFO named like a frame hung the run with no output."""
    os.unlink(clip / "00002.png")
    os.mkfifo(clip / "00002.png")
    command = [sys.executable, "-m", "hmmn_deploy.segment.cli", str(clip), "--mask", str(tmp_path / "first.png"),
               "-o", str(tmp_path / "out"), *MODEL]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "is a FIFO, not an image file" in done.stderr, done.stderr
    assert "--skip-bad-frames" in done.stderr and "Traceback" not in done.stderr


def test_a_jpeg_mask_is_refused_with_a_line_that_says_to_save_a_png(tmp_path, clip, capsys):
    """Case 7: a JPEG mask's compression noise became phantom objects 1..5."""
    labels = np.asarray(Image.open(tmp_path / "first.png"))
    Image.fromarray((labels * 100).astype(np.uint8)).save(tmp_path / "mask.jpg", quality=75)
    with pytest.raises(ValueError, match="save the mask as a PNG"):
        read_mask(str(tmp_path / "mask.jpg"))
    assert run(clip, "--mask", tmp_path / "mask.jpg", "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "JPEG" in err and "save the mask as a PNG" in err and "Traceback" not in err


def test_a_jpeg_renamed_mp4_is_named_an_image(tmp_path, clip, capsys):
    """Case 8: "the video declares -9223372036854775808 frames"."""
    Image.open(clip / "00000.png").convert("RGB").save(tmp_path / "clip.mp4", format="JPEG")
    assert run(tmp_path / "clip.mp4", "--mask", tmp_path / "first.png", "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "is a JPEG image, not a video" in err and "-9223372036854775808" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_start_without_a_mask_raises_the_runtime_error(small_model):
    """Case 10: start(frame, None) raised torch's TypeError."""
    session = Session.from_model(small_model, capacity=8)
    frame = np.zeros((96, 128, 3), np.uint8)
    with pytest.raises(RuntimeInputError, match="got None"):
        session.start(frame, None)
    with pytest.raises(RuntimeInputError, match="integer label map"):
        session.start(frame, [["a"] * 128] * 96)


def test_a_1_bit_png_mask_is_accepted(tmp_path, clip):
    """Case 11: a 1-bit PNG mask was refused as "is a 1 image"."""
    labels = np.asarray(Image.open(tmp_path / "first.png"))
    Image.fromarray(labels == 1).save(tmp_path / "one_bit.png")
    assert Image.open(tmp_path / "one_bit.png").mode == "1"
    assert np.array_equal(read_mask(str(tmp_path / "one_bit.png"))[0], (labels == 1).astype(np.uint8))
    assert run(clip, "--mask", tmp_path / "one_bit.png", "-o", tmp_path / "out") == 0
    record = json.loads((tmp_path / "out/summary.json").read_text())["sequences"]["clip"]
    assert record["objects"] == [1]


def test_a_resumed_runs_closing_line_counts_its_own_frames(tmp_path, capsys):
    """Case 11: a resumed run's closing line counted the frames of sequences it skipped."""
    root = tmp_path / "davis"
    write_davis(str(root), [("one", 41), ("two", 42)], FRAMES, H, W, "val")
    out = tmp_path / "out"
    assert run(root, "-o", out, "--sequences", "one") == 0
    capsys.readouterr()
    assert run(root, "-o", out) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("hmmn-run: 1 of 1 sequences done;") and f"; {FRAMES} frames at" in last, last
    assert json.loads((out / "summary.json").read_text())["frames"] == 2 * FRAMES  # the summary counts all


def test_see_summary_json_only_when_it_was_written(tmp_path, clip, capsys, monkeypatch):
    """Case 11: "(see summary.json)" was printed when summary.json could not be written."""
    from hmmn_deploy.segment import summary

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def failing_mask(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer, "write_mask", failing_mask)
    monkeypatch.setattr(summary.json, "dump", full)
    assert run(clip, "--mask", tmp_path / "first.png", "-o", tmp_path / "out") == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "1 FAILED" in last and "see summary.json" not in last, last
    monkeypatch.undo()
    monkeypatch.setattr(writer, "write_mask", failing_mask)
    assert run(clip, "--mask", tmp_path / "first.png", "-o", tmp_path / "out2") == 1
    assert "1 FAILED (see summary.json)" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_full_disk_leaves_no_empty_lock(tmp_path, clip, capsys, monkeypatch):
    """Case 11: a full disk left an empty OUT/.hmmn-run.lock."""
    out = tmp_path / "out"
    out.mkdir()

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outdir.os, "write", full)
    assert run(clip, "--mask", tmp_path / "first.png", "-o", out) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert os.listdir(out) == []
