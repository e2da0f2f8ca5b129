"""hmmn-run's bad output folders, Ctrl-C at start-up, a truncated video and a too small --size
(issue 19): one line and the documented exit status, never a traceback, nothing left behind."""

from __future__ import annotations

import errno
import os

import cv2
import pytest

from hmmn_deploy.segment import cli
from hmmn_ref.media import davis_palette, write_mask
from hmmn_ref.sample_video import make_sample_video

MODEL = ["--backend", "torch", "--random-weights", "--config", "small", "--no-progress"]
FRAMES, H, W = 12, 64, 96


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(a 12-frame MJPG video cut to half its bytes, its first mask); OpenCV decodes 4 or 5 frames."""
    root = tmp_path_factory.mktemp("clip")
    video, labels = make_sample_video(FRAMES, H, W, num_objects=2, seed=3)
    whole = root / "whole.avi"
    out = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for frame in video:
        out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out.release()
    data = whole.read_bytes()
    (root / "cut.avi").write_bytes(data[: len(data) // 2])
    write_mask(str(root / "first.png"), labels[0], davis_palette())
    return root / "cut.avi", root / "first.png"


def run(*argv) -> int:
    return cli.main([str(a) for a in argv] + MODEL)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_output_folders_that_cannot_be_written(clip, tmp_path, capsys, monkeypatch):
    video, mask = clip
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile/out", "/proc/hmmn-run-test/out"):
        assert run(video, "--mask", mask, "-o", out) == 2, out
        assert "cannot write to" in one_line(capsys)
    assert not os.path.exists("/proc/hmmn-run-test")

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(os, "makedirs", read_only)
    assert run(video, "--mask", mask, "-o", tmp_path / "ro") == 2
    assert "Read-only file system" in one_line(capsys)


def test_ctrl_c_during_start_up_leaves_nothing(clip, tmp_path, capsys, monkeypatch):
    video, mask = clip

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "open_session", interrupted)
    assert run(video, "--mask", mask, "-o", tmp_path / "out") == 130
    assert "interrupted" in one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_an_export_on_the_fly_exits_130(clip, tmp_path, capsys, monkeypatch):
    from hmmn_deploy.models import choice

    def interrupted(*args, **kwargs):  # Ctrl-C inside the exporter (which cleans up after itself)
        raise KeyboardInterrupt

    video, mask = clip
    monkeypatch.setattr(choice, "export_model", interrupted)
    code = cli.main([str(video), "--mask", str(mask), "-o", str(tmp_path / "out"), "--random-weights", "--config",
                     "small", "--cache", str(tmp_path / "cache"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_truncated_video_warns_and_strict_fails_it(clip, tmp_path, capsys):
    video, mask = clip
    out = tmp_path / "out"
    assert run(video, "--mask", mask, "-o", out, "--strict") == 1
    err = capsys.readouterr().err
    assert f"of the {FRAMES} frames" in err and "--strict" in err and "FAILED" in err
    assert not (out / "cut").exists()
    assert run(video, "--mask", mask, "-o", out) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and f"of the {FRAMES} frames" in err
    written = len(list((out / "cut").glob("*.png")))
    assert 2 <= written < FRAMES


def test_a_too_small_size_states_the_model_minimum(clip, tmp_path, capsys):
    video, mask = clip
    assert run(video, "--mask", mask, "-o", tmp_path / "out", "--size", "16x32") == 2
    err = capsys.readouterr().err
    assert "at least 8 cells of 16x16 pixels" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
