"""hmmn-eval: J and F on hand-made masks with known scores, agreement with vos-benchmark (the
maintained DAVIS metric) on a generated dataset, the CLI, run comparison and its gates."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.evaluate import evaluate, frame_scores, mask_iou
from hmmn_deploy.evaluate import cli
from hmmn_deploy.evaluate.metrics import boundary_map, boundary_radius


def square(shape=(100, 100), top=40, left=40, size=20, label=1, into=None):
    m = np.zeros(shape, np.uint8) if into is None else into
    m[top : top + size, left : left + size] = label
    return m


def brute_force_f(pred: np.ndarray, gt: np.ndarray) -> float:
    """F from its definition: a boundary pixel matches when the other boundary is within the
    Euclidean radius; no dilation kernel involved."""
    r = boundary_radius(gt.shape)
    pe, ge = np.argwhere(boundary_map(pred)), np.argwhere(boundary_map(gt))
    if len(pe) == 0 or len(ge) == 0:
        return float(len(pe) == len(ge))
    d = np.sqrt(((pe[:, None, :] - ge[None, :, :]) ** 2).sum(-1))
    precision, recall = (d.min(1) <= r).mean(), (d.min(0) <= r).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_known_scores_of_hand_made_masks():
    gt = square()
    (j, f), = frame_scores(gt, gt, [1]).values()
    assert j == 1.0 and f == 1.0
    shifted = square(left=41)  # one pixel right: 19 of 21 columns shared, every edge within 2 px
    (j, f), = frame_scores(shifted, gt, [1]).values()
    assert j == pytest.approx(380 / 420) and f == 1.0
    far = square(left=50)  # half overlapping: the side edges are 10 px off, beyond the 2 px radius
    (j, f), = frame_scores(far, gt, [1]).values()
    assert j == pytest.approx(200 / 600)
    assert f == pytest.approx(brute_force_f(far == 1, gt == 1)) and 0.3 < f < 0.8
    empty = np.zeros_like(gt)
    assert frame_scores(empty, gt, [1])[1] == (0.0, 0.0)  # an empty prediction
    assert frame_scores(empty, empty, [1])[1] == (1.0, 1.0)  # rightly absent


def test_missing_and_extra_objects(tmp_path):
    gt_frame = square(label=1, into=square(top=5, left=5, label=2))
    missing = square()  # object 2 not predicted
    extra = square(top=70, left=70, label=3, into=gt_frame.copy())  # an object the ground truth lacks
    for name, pred in (("missing", missing), ("extra", extra)):
        for root, frame in ((tmp_path / "gt", gt_frame), (tmp_path / name, pred)):
            (root / "seq").mkdir(parents=True, exist_ok=True)
            for t in range(4):
                Image.fromarray(frame).save(root / "seq" / f"{t:05d}.png")
    report = evaluate(str(tmp_path / "gt"), str(tmp_path / "missing"))
    assert report.sequences["seq"][1].j_mean == 100 and report.sequences["seq"][2].j_mean == 0
    assert report.j == 50 and report.f == 50 and report.jf == 50
    report = evaluate(str(tmp_path / "gt"), str(tmp_path / "extra"))
    assert set(report.sequences["seq"]) == {1, 2} and report.jf == 100  # only ground-truth objects are scored


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated DAVIS-style dataset and a degraded prediction of it (shifts, dropped objects)."""
    root = tmp_path_factory.mktemp("eval")
    data = root / "davis"
    write_davis(str(data), [(f"video{i}", 200 + i) for i in range(5)], 12, 96, 128, "val")
    pred = root / "pred"
    rng = np.random.default_rng(0)
    for seq in sorted(os.listdir(data / "Annotations/480p")):
        (pred / seq).mkdir(parents=True)
        for name in sorted(os.listdir(data / "Annotations/480p" / seq)):
            g = np.array(Image.open(data / "Annotations/480p" / seq / name))
            p = np.roll(g, tuple(rng.integers(-5, 6, 2)), (0, 1))
            if rng.random() < 0.2:
                p = np.where(p == 1, 0, p).astype(np.uint8)
            Image.fromarray(p).save(pred / seq / name)
    return data, pred


def test_matches_vos_benchmark_on_a_generated_dataset(generated):
    from vos_benchmark.benchmark import benchmark

    data, pred = generated
    ours = evaluate(str(data), str(pred))
    (jf,), (j,), (f,), _ = benchmark([str(data / "Annotations/480p")], [str(pred)], num_processes=1, verbose=False)
    assert 20 < ours.jf < 95  # the degradation is neither nothing nor everything
    assert abs(ours.jf - jf) <= 0.1 and abs(ours.j - j) <= 0.1 and abs(ours.f - f) <= 0.1


def test_cli_table_json_csv_and_errors(generated, tmp_path, capsys):
    data, pred = generated
    (tmp_path / "val.txt").write_text("video1\nvideo3\n")
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert cli.main(["--gt", str(data), "--pred", str(pred), "--imageset", str(tmp_path / "val.txt"),
                     "--json", str(out_json), "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "J&F-Mean" in printed and "video3_1" in printed
    result = json.loads(out_json.read_text())
    assert set(result["sequences"]) == {"video1", "video3"}
    assert set(result) >= {"J&F", "J", "F", "sequences"} and 0 <= result["J&F"] <= 100
    assert result["J&F"] == pytest.approx((result["J"] + result["F"]) / 2, abs=1e-3)
    assert out_csv.read_text().splitlines()[0] == "sequence,object,J,F,J&F"
    broken = tmp_path / "broken"
    shutil.copytree(pred, broken)
    os.remove(broken / "video2/00005.png")
    assert cli.main(["--gt", str(data), "--pred", str(broken)]) == 2
    assert "video2/00005.png" in capsys.readouterr().err
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(broken / "video2/00005.png")
    assert cli.main(["--gt", str(data), "--pred", str(broken)]) == 2
    assert "is 10x10 but its ground truth is 96x128" in capsys.readouterr().err
    shutil.rmtree(broken / "video4")
    assert cli.main(["--gt", str(data), "--pred", str(broken)]) == 2
    assert "no predictions for sequences ['video4']" in capsys.readouterr().err


def test_compare_runs_and_gates(generated, tmp_path, capsys):
    data, pred = generated
    exact = tmp_path / "exact"
    shutil.copytree(data / "Annotations/480p", exact)
    (exact / "probs").mkdir()  # hmmn-run's extra folders are not sequences
    out_json = tmp_path / "cmp.json"
    assert cli.main(["--compare", str(exact), str(pred), "--gt", str(data), "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "dJ&F" in table
    result = json.loads(out_json.read_text())
    base, other = result["runs"]
    assert base["J&F"] == 100 and base["agreement"] == 100 and other["dJ&F"] < -5
    assert set(other["sequences"]) == {f"video{i}" for i in range(5)}
    assert cli.main(["--compare", str(exact), str(pred), "--gt", str(data), "--max-drop", "0.5"]) == 1
    assert "GATE FAILED" in capsys.readouterr().err
    assert cli.main(["--compare", str(exact), str(pred), "--gt", str(data), "--max-drop", "100"]) == 0
    assert cli.main(["--compare", str(exact), str(exact), "--min-agreement", "100"]) == 0
    assert cli.main(["--compare", str(exact), str(pred), "--min-agreement", "99.9"]) == 1
    assert cli.main(["--compare", str(exact), str(pred), "--max-drop", "1"]) == 2  # needs --gt


def test_mask_iou_between_runs():
    a = square()
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, square(left=50)) == pytest.approx(1 / 3)
    assert mask_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
