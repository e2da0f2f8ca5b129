"""hmmn-eval's and hmmn-bench's reports without a browser: per-frame J lined up with the frames
(an object entering late), the worst frames, the folder refused or replaced whole, the % of peak
rule. The pages in Chromium: tests/report/test_reports_in_browser.py."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from PIL import Image

from hmmn_ref.media import davis_palette
from hmmn_deploy.bench.machine import stage_peak
from hmmn_deploy.bench.report import peak_shares
from hmmn_deploy.evaluate import cli, evaluate
from hmmn_deploy.evaluate.report_frames import mean_curve, per_frame_j, scored_frames, worst_frames

FRAMES, SHAPE = 8, (48, 64)


def save(path: pathlib.Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels)
    image.putpalette(davis_palette())
    image.save(path)


@pytest.fixture
def late(tmp_path) -> tuple:
    """Object 1 throughout, predicted well except on frame 5; object 2 from frame 4 on."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for t in range(FRAMES):
        g = np.zeros(SHAPE, np.uint8)
        g[5:25, 5:25] = 1
        p = g.copy()
        if t == 5:
            p[5:25, 5:25] = 0
            p[5:25, 15:35] = 1  # half off
        if t >= 4:
            g[30:40, 40:50] = 2
            p[30:40, 40:50] = 2
        save(gt / "late" / f"{t:05d}.png", g)
        save(pred / "late" / f"{t:05d}.png", p)
    return gt, pred


def test_per_frame_j_lines_up_with_the_scored_frames(late):
    gt, pred = late
    report = evaluate(str(gt), str(pred))
    frames = scored_frames(str(gt), "late", True)
    assert frames == [f"{t:05d}.png" for t in range(1, FRAMES - 1)]  # first and last left out
    curves = per_frame_j(report, frames, "late")
    assert np.isnan(curves[2][:3]).all() and np.allclose(curves[2][3:], 100)  # counted from frame 4
    assert curves[1][4] == pytest.approx(100 * 10 * 20 / (30 * 20))  # frame 5: IoU of the shifted box
    assert np.allclose(np.delete(curves[1], 4), 100)
    mean = mean_curve(curves)
    assert mean[0] == 100 and mean[4] == pytest.approx((curves[1][4] + 100) / 2)
    assert worst_frames(frames, mean, 2)[0] == ("00005.png", pytest.approx(mean[4]))


def test_the_report_folder_is_refused_before_scoring_or_replaced_whole(late, tmp_path, capsys):
    gt, pred = late
    (tmp_path / "a_file").write_text("x")
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--report", str(tmp_path / "a_file")]) == 2
    err = capsys.readouterr()
    assert "is a file" in err.err and err.out == ""  # refused before any scoring
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--report", str(tmp_path / "other")]) == 2
    assert "no index.html" in capsys.readouterr().err and (tmp_path / "other" / "notes.txt").read_text() == "mine"
    report = tmp_path / "report"
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--report", str(report)]) == 0
    (report / "media" / "stale.mp4").write_bytes(b"old")
    assert cli.main(["--gt", str(gt), "--pred", str(pred), "--report", str(report)]) == 0
    assert not (report / "media" / "stale.mp4").exists()  # an earlier report is replaced whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("report")) == ["report"]
    page = (report / "index.html").read_text()
    assert "00005" in page and 'alt="J per frame of late"' in page and "<video" not in page  # no overlays here


def test_a_stage_is_measured_against_its_precision_and_match_against_fp32():
    peaks = {"fp32": 100.0, "bf16": 1000.0}
    assert stage_peak(peaks, "bf16", "decode") == 1000.0 and stage_peak(peaks, "bf16", "match") == 100.0
    assert stage_peak(peaks, "fp16", "decode") == 100.0  # no fp16 peak: fp32's
    result = {"machine": {"cpu_peak_gflops": peaks},
              "runs": [{"name": "openvino bf16", "precision": "bf16",
                        "stages": {"decode": {"achieved_gflops": 50.0}, "match": {"achieved_gflops": 20.0},
                                   "upload": {"median_ms": 1.0}}}]}
    assert peak_shares(result) == {"openvino bf16": {"decode": 5.0, "match": 20.0}}
    assert peak_shares({"machine": {}, "runs": result["runs"]}) == {}  # a GPU run: no CPU peak


def test_a_stage_is_measured_against_the_precision_its_backend_runs_it_in():
    peaks = {"fp32": 100.0, "bf16": 1000.0}
    plan = {"encode_query": "fp32", "encode_memory": "bf16", "decode": "bf16", "match": "fp32"}
    assert stage_peak(peaks, "bf16", "encode_query", plan) == 100.0  # OpenVINO's FP32 keys graph
    assert stage_peak(peaks, "bf16", "decode", plan) == 1000.0
    assert stage_peak(peaks, "bf16", "encode_query") == 1000.0  # no plan: the run's precision
