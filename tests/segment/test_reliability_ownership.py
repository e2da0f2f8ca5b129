"""Issue 33, cases 1 and 2: hmmn-run touches only what it wrote. A published sequence carries
hmmn-run's record (OUT/<seq>/.hmmn-run.json, with its files' hashes); only such folders are
skipped as done or replaced by --force; anything else at OUT/<seq> is refused with one line
(exit 2) and left as it was; -o equal to, inside or containing an input folder is refused.

The small configuration with random weights on the torch backend keeps each run to seconds.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.segment import cli
from hmmn_ref.media import davis_palette, write_mask
from hmmn_ref.sample_video import make_sample_video

FRAMES, H, W = 4, 64, 96
MODEL = ["--backend", "torch", "--random-weights", "--config", "small", "--no-progress"]


def run(*argv) -> int:
    return cli.main([str(a) for a in argv] + MODEL)


def snapshot(root: pathlib.Path) -> dict:
    """Every file under root -> its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("ownership") / "ds"
    write_davis(str(root), [("one", 21), ("two", 22)], FRAMES, H, W, "val")
    return root


@pytest.fixture
def clip(tmp_path) -> pathlib.Path:
    """tmp_path/clipA/: JPEG frames; tmp_path/m.png: the first mask."""
    video, labels = make_sample_video(FRAMES, H, W, num_objects=2, seed=5)
    folder = tmp_path / "clipA"
    folder.mkdir()
    for t in range(FRAMES):
        Image.fromarray(video[t]).save(folder / f"{t:05d}.jpg", quality=95)
    write_mask(str(tmp_path / "m.png"), labels[0], davis_palette())
    return folder


def test_force_into_the_ground_truth_folder_is_refused_and_touches_nothing(davis, tmp_path, capsys):
    """Case 1: `cp -r ds dsgt && hmmn-run dsgt -o dsgt/Annotations/480p --force` replaced the ground truth."""
    gt = tmp_path / "dsgt"
    shutil.copytree(davis, gt)
    before = snapshot(gt)
    assert run(gt, "-o", gt / "Annotations/480p", "--force") == 2
    assert "contains the input folder" in one_error_line(capsys)
    assert snapshot(gt) == before
    # Another dataset's ground truth as OUT (not an input): its folders are not hmmn-run's.
    assert run(davis, "-o", gt / "Annotations/480p", "--force") == 2
    assert "hmmn-run did not write it" in one_error_line(capsys)
    assert snapshot(gt) == before


def test_force_from_the_clips_parent_is_refused_and_keeps_its_frames(clip, tmp_path, capsys, monkeypatch):
    """Case 1: `hmmn-run clipA --mask m.png -o . --force` from clipA's parent deleted its JPEGs."""
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run("clipA", "--mask", "m.png", "-o", ".", "--force") == 2
    assert "contains the input folder" in one_error_line(capsys)
    assert run("clipA", "--mask", "m.png", "-o", "clipA/out") == 2
    assert "is inside the input folder" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def test_a_copy_of_the_frames_at_out_seq_is_not_replaced_by_force(clip, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(clip, out / "clipA")  # someone's folder that happens to have the sequence's name
    before = snapshot(out)
    assert run(clip, "--mask", tmp_path / "m.png", "-o", out, "--force") == 2
    line = one_error_line(capsys)
    assert "hmmn-run did not write it" in line and "nothing was touched" in line
    assert snapshot(out) == before


def test_a_folder_named_like_the_sequence_is_not_done(clip, tmp_path, capsys):
    """Case 2: `mkdir -p o/seq1 && hmmn-run seq1 --mask m.png -o o` said "already done", exit 0, no masks."""
    out = tmp_path / "o"
    (out / "clipA").mkdir(parents=True)  # empty: nothing to lose, segmented into it
    assert run(clip, "--mask", tmp_path / "m.png", "-o", out) == 0
    assert "already done" not in capsys.readouterr().err
    assert len(list((out / "clipA").glob("*.png"))) == FRAMES
    record = json.loads((out / "summary.json").read_text())["sequences"]["clipA"]
    assert record["status"] == "done" and record["frames"] == FRAMES

    assert run(clip, "--mask", tmp_path / "m.png", "-o", out) == 0  # now it is hmmn-run's: skipped
    assert "already done" in capsys.readouterr().err

    other = tmp_path / "o2"
    (other / "clipA").mkdir(parents=True)
    (other / "clipA/notes.txt").write_text("mine")  # foreign: refused, not "done"
    assert run(clip, "--mask", tmp_path / "m.png", "-o", other) == 2
    assert "hmmn-run did not write it" in one_error_line(capsys)
    assert os.listdir(other / "clipA") == ["notes.txt"]


def test_an_edited_or_extended_output_is_no_longer_hmmn_runs(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(clip, "--mask", tmp_path / "m.png", "-o", out) == 0
    mask = out / "clipA/00002.png"
    labels = np.asarray(Image.open(mask)).copy()
    labels[:8, :8] = 1  # a hand correction
    write_mask(str(mask), labels, davis_palette())
    before = snapshot(out / "clipA")
    assert run(clip, "--mask", tmp_path / "m.png", "-o", out, "--force") == 2
    assert "was changed since hmmn-run wrote it" in one_error_line(capsys)
    assert snapshot(out / "clipA") == before

    out2 = tmp_path / "out2"
    assert run(clip, "--mask", tmp_path / "m.png", "-o", out2) == 0
    (out2 / "clipA/extra.png").write_bytes(mask.read_bytes())  # a file hmmn-run did not write
    assert run(clip, "--mask", tmp_path / "m.png", "-o", out2, "--force") == 2
    assert "not in hmmn-run's record" in one_error_line(capsys)
    assert (out2 / "clipA/extra.png").is_file()


def test_summary_records_only_hmmn_runs_sequences(davis, tmp_path):
    out = tmp_path / "out"
    (out / "theirs").mkdir(parents=True)  # another tool's results beside ours
    write_mask(str(out / "theirs/00000.png"), np.zeros((H, W), np.uint8), davis_palette())
    assert run(davis, "-o", out, "--sequences", "one") == 0
    records = json.loads((out / "summary.json").read_text())["sequences"]
    assert set(records) == {"one"}
    assert (out / "theirs/00000.png").is_file()
