"""hmmn-eval (issue 19): the J&F convention for objects that enter late, agreed with
vos-benchmark, and one clear line with exit status 2 for ground truth that is not ground truth."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy.evaluate import cli, evaluate
from hmmn_ref.media import davis_palette

FRAMES, SHAPE = 8, (60, 80)


def save(path: pathlib.Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(davis_palette())
    image.save(path)


def box(labels: np.ndarray, top: int, left: int, size: int, label: int) -> np.ndarray:
    labels[top : top + size, left : left + size] = label
    return labels


def late_object_dataset(root: pathlib.Path) -> tuple:
    """Ground truth: object 1 throughout, object 2 from frame 3 on. Predictions: object 1 one
    pixel off, object 2 half overlapping from frame 3 and, in 'early', a false object 2 on frame 2."""
    gt, pred = root / "gt", root / "pred"
    for t in range(FRAMES):
        g = box(np.zeros(SHAPE, np.uint8), 5, 5 + t, 20, 1)
        p = box(np.zeros(SHAPE, np.uint8), 6, 5 + t, 20, 1)
        if t >= 3:
            box(g, 30, 40, 16, 2)
            box(p, 30, 48, 16, 2)
        save(gt / "late" / f"{t:05d}.png", g)
        save(pred / "late" / f"{t:05d}.png", p)
        early = p.copy()
        if t == 2:
            box(early, 30, 40, 16, 2)  # predicted a frame before it enters
        save(gt / "early" / f"{t:05d}.png", g)
        save(pred / "early" / f"{t:05d}.png", early)
    return gt, pred


def vos_benchmark_scores(gt: pathlib.Path, pred: pathlib.Path) -> tuple:
    from vos_benchmark.benchmark import benchmark

    (jf,), (j,), (f,), (objects,) = benchmark([str(gt)], [str(pred)], num_processes=1, verbose=False)
    return jf, j, f, objects


def test_late_objects_agree_with_vos_benchmark_by_default(tmp_path):
    gt, pred = late_object_dataset(tmp_path)
    jf, j, f, objects = vos_benchmark_scores(gt, pred)
    ours = evaluate(str(gt), str(pred))
    assert ours.convention == "vos-benchmark"
    assert ours.jf == pytest.approx(jf, abs=1e-6) and ours.j == pytest.approx(j, abs=1e-6)
    assert ours.f == pytest.approx(f, abs=1e-6)
    for name in ("late", "early"):
        theirs_j, _ = objects[name]
        for o, result in ours.sequences[name].items():
            assert result.j_mean == pytest.approx(theirs_j[o], abs=1e-6), (name, o)
    # Object 2 counts on frames 3..6 ('late') and 2..6 ('early', predicted on 2): 4 and 5 frames.
    assert len(ours.sequences["late"][2].j) == 4 and len(ours.sequences["early"][2].j) == 5


def test_davis2017_convention_counts_the_frames_before_an_object_enters(tmp_path, capsys):
    gt, pred = late_object_dataset(tmp_path)
    davis = evaluate(str(gt), str(pred), convention="davis2017")
    late = davis.sequences["late"][2]
    assert len(late.j) == FRAMES - 2 and list(late.j[:2]) == [1.0, 1.0]  # frames 1 and 2: both empty
    assert late.j_mean == pytest.approx(100 * (2 + 4 * 128 / 384) / 6)  # 8 of 16 columns shared
    default = evaluate(str(gt), str(pred))
    assert davis.jf - default.jf > 5  # the two conventions differ on this dataset
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--convention", "davis2017",
                     "--json", str(tmp_path / "r.json")]) == 0
    assert "J&F convention: davis2017" in capsys.readouterr().out
    assert '"convention": "davis2017"' in (tmp_path / "r.json").read_text()
    assert cli.main(["--gt", str(gt), "--pred", str(pred)]) == 0
    assert "J&F convention: vos-benchmark" in capsys.readouterr().out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_ground_truth_that_is_not_ground_truth_gets_one_line(tmp_path, capsys):
    gt, pred = late_object_dataset(tmp_path)
    (tmp_path / "afile").write_text("x")
    frames = tmp_path / "JPEGImages/480p/late"
    frames.mkdir(parents=True)
    Image.fromarray(np.zeros(SHAPE + (3,), np.uint8)).save(frames / "00000.jpg")
    cases = {tmp_path / "missing": "does not exist", tmp_path / "afile": "is a file",
             tmp_path / "JPEGImages/480p": "holds JPEG frames"}
    for bad, says in cases.items():
        assert cli.main(["--gt", str(bad), "--pred", str(pred)]) == 2, bad
        assert says in one_line_error(capsys)
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--sequences", "nope"]) == 2
    assert "no ground truth for ['nope']" in one_line_error(capsys)
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--json", str(tmp_path / "afile/r.json")]) == 2
    assert "cannot write" in one_line_error(capsys)


def test_an_hmmn_run_output_scores_as_ground_truth_and_hidden_folders_are_skipped(tmp_path, capsys):
    """hmmn-run's output folder: sequence folders plus probs/, overlays/, summary.json and
    perhaps a work folder left by a killed run; used as --gt or --pred, only the sequences count."""
    gt, pred = late_object_dataset(tmp_path)
    for folder in (gt, pred):
        (folder / ".partial/late").mkdir(parents=True)
        (folder / "probs/late").mkdir(parents=True)
        (folder / "probs/late/00000.npz").write_bytes(b"")
        (folder / "overlays").mkdir()
        (folder / "overlays/late.mp4").write_bytes(b"")
        Image.new("RGB", (4, 4)).save(folder / "overlays/late.png")  # the video's poster: not a sequence
        (folder / "summary.json").write_text("{}")
    assert cli.main(["--gt", str(pred), "--pred", str(gt)]) == 0
    assert "late_2" in capsys.readouterr().out
    assert cli.main(["--compare", str(pred), str(gt), "--gt", str(gt)]) == 0
    assert ".partial" not in capsys.readouterr().out
