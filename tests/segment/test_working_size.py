"""Issue 24: the built-in model processes frames at a size it was trained at (its record's
trained_sizes), unless --size says otherwise; masks come back at the frames' size; the overlay
a person looks at."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy import demo
from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.evaluate import evaluate
from hmmn_deploy.core.working_size import WorkingSize, WorkingSizeError, parse_trained_sizes, record_path
from hmmn_deploy.segment import cli as run_cli
from hmmn_deploy.core.drawing import overlay, palette_colours

from conftest import load_tool

# Seeds of no training run, validation set, report table or other test (the report: 40000-40019).
FRESH_SEEDS = range(41_000, 41_004)
FRAMES = 12


# -- the rule -------------------------------------------------------------------------------


def pick(frame_size, trained_sizes, min_cells=0):
    """The processing size of HxW frames for a model trained at `trained_sizes`; None: their own."""
    return WorkingSize(parse_trained_sizes([list(t) for t in trained_sizes]), None, min_cells).size_for(frame_size)

def test_the_rule_keeps_the_aspect_ratio_at_the_trained_area():
    assert pick((240, 320), [[96, 128]]) == (96, 128)
    assert pick((576, 768), [[96, 128]]) == (96, 128)
    assert pick((480, 854), [[96, 128]]) == (80, 144)  # 16:9, sides multiples of 16
    assert pick((96, 128), [[96, 128]]) is None  # already a trained size: as it is
    assert pick((48, 64), [[96, 128]]) == (96, 128)  # smaller frames are enlarged to the scale it knows
    # several trained sizes span a range of areas: frames within it as they are, others at its nearest end
    several = [[96, 128], [240, 320], [128, 224]]
    assert pick((240, 320), several) is None and pick((180, 320), several) is None
    assert pick((720, 1280), several) == (208, 368)  # the largest area, 76,800, at 16:9
    assert pick((576, 768), several) == (240, 320)
    assert pick((60, 80), several) == (96, 128)  # the smallest area, 12,288, at 4:3
    # never fewer 1/16 cells than the model reads
    size = pick((64, 4000), [[96, 128]], min_cells=8)
    assert size[0] % 16 == 0 and size[1] % 16 == 0 and (size[0] // 16) * (size[1] // 16) >= 8


def test_a_record_without_the_field_gives_no_rule(tmp_path):
    weights = tmp_path / "w.pth"
    assert WorkingSize.for_weights(str(weights)) is None  # no record at all
    (tmp_path / "w.json").write_text(json.dumps({"command": "python tools/train_demo.py"}))
    assert record_path(str(weights)) == str(tmp_path / "w.json")
    assert WorkingSize.for_weights(str(weights)) is None
    (tmp_path / "w.json").write_text(json.dumps({"trained_sizes": [[96, "128"]]}))
    with pytest.raises(WorkingSizeError, match="trained_sizes"):
        WorkingSize.for_weights(str(weights))


def _nested_sizes(record) -> set:
    found = set()
    if isinstance(record, dict):
        for key, value in record.items():
            if key == "settings" and isinstance(value, dict) and "size" in value:
                sizes = value["size"] if isinstance(value["size"], list) else [value["size"]]
                found |= {size.split(":")[0] for size in sizes}  # HxW or HxW:FRAMES
            found |= _nested_sizes(value)
    elif isinstance(record, list):
        for value in record:
            found |= _nested_sizes(value)
    return found


def test_the_demo_record_states_the_sizes_every_stage_trained_at():
    record = demo.training_record("small")
    trained = {f"{h}x{w}" for h, w in record["trained_sizes"]}
    assert trained == _nested_sizes(record)
    assert {"96x128", "240x320", "480x640"} <= trained  # stages 9-11 and 13 trained at many sizes (demo_training.md)


# -- hmmn-run -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def videos_240x320(tmp_path_factory):
    """Fresh generated videos at 240x320 (2.5 times the training size), and the copy-the-first-mask
    baseline's predictions."""
    root = tmp_path_factory.mktemp("working_size")
    data, copy = root / "data", root / "copy"
    names = [f"video{i}" for i in range(len(FRESH_SEEDS))]
    write_davis(str(data), list(zip(names, FRESH_SEEDS)), FRAMES, 240, 320, "val")
    load_tool("generate_videos").write_copy_first(str(data), str(copy), names)
    return data, copy, names


def run(args) -> dict:
    assert run_cli.main(args + ["--backend", "torch", "--threads", "1", "--no-progress"]) == 0
    with open(os.path.join(args[args.index("-o") + 1], "summary.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def default_run(videos_240x320, tmp_path_factory):
    data, _, _ = videos_240x320
    out = tmp_path_factory.mktemp("default") / "out"
    return out, run([str(data), "-o", str(out), "--config", "small"])


def test_the_built_in_model_at_240x320_beats_copying_the_first_mask(videos_240x320, default_run):
    """The built-in small model (stage 13, trained at 96x128 to 480x640) processes 240x320 frames as
    they are, and beats copying the first mask by a wide margin."""
    data, copy, names = videos_240x320
    out, summary = default_run
    assert all(record["processing_size"] == [240, 320] for record in summary["sequences"].values())
    model, baseline = evaluate(str(data), str(out), sequences=names), evaluate(str(data), str(copy), sequences=names)
    # Measured on these 4 videos (hmmn_ref.run_video): 89.1 against 27.3 (stage 13; stage 11 89.2,
    # stage 10 89.2, stage 9 84.7); stage 8 (trained at 96x128 only) scored 23.7 on them natively,
    # below copying, and failed this assertion.
    assert model.jf >= baseline.jf + 40, (model.jf, baseline.jf)


def test_the_records_sizes_are_used_by_default_and_reported(default_run, capsys):
    out, summary = default_run
    working = summary["working_size"]
    assert working["source"] == "weights' record" and working["record"] == demo.BUILT_IN["small"].record
    assert working["trained_sizes"] == demo.training_record("small")["trained_sizes"]
    for name, record in summary["sequences"].items():
        # 240x320 lies within the trained areas: processed as it is, by the record's rule
        assert record["size"] == [240, 320] and record["processing_size"] == [240, 320], name
        assert record["size_source"] == "trained sizes"
        for mask in (out / name).glob("*.png"):  # masks at the frames' size
            assert Image.open(mask).size == (320, 240)


def test_the_run_says_so_in_one_line(videos_240x320, tmp_path, capsys):
    data, _, names = videos_240x320
    run([str(data), "-o", str(tmp_path / "out"), "--sequences", names[0], "--max-frames", "3", "--config", "small"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "works at 96x128 to 480x640" in line]
    assert len(lines) == 1 and "(here 240x320: as it is)" in lines[0], lines


@pytest.mark.parametrize("size, expected, source", [("112x160", [112, 160], "--size"),
                                                     ("native", [240, 320], "--size native")])
def test_size_overrides_the_record(videos_240x320, tmp_path, size, expected, source):
    data, _, names = videos_240x320
    out = tmp_path / "out"
    summary = run([str(data), "-o", str(out), "--sequences", names[0], "--max-frames", "3", "--size", size,
                   "--config", "small"])
    assert summary["working_size"]["source"] == source
    record = summary["sequences"][names[0]]
    assert record["processing_size"] == expected and record["size"] == [240, 320]
    for mask in (out / names[0]).glob("*.png"):
        assert Image.open(mask).size == (320, 240)


@pytest.mark.parametrize("field, expected", [(None, [240, 320]), ([[64, 64]], [48, 80])])
def test_any_weights_with_a_record_get_the_rule_and_without_one_keep_their_size(videos_240x320, tmp_path, field,
                                                                                  expected):
    data, _, names = videos_240x320
    weights = tmp_path / "mine.pth"
    shutil.copyfile(demo.BUILT_IN["small"].weights, weights)
    record = {"command": "my own training"}
    if field is not None:
        record["trained_sizes"] = field  # 64x64 of area 4096 at 3:4 -> 55x74 -> 48x80
    (tmp_path / "mine.json").write_text(json.dumps(record))
    summary = run([str(data), "-o", str(tmp_path / "out"), "--sequences", names[0], "--max-frames", "3",
                   "--weights", str(weights), "--config", "small"])
    assert summary["sequences"][names[0]]["processing_size"] == expected
    assert summary["working_size"]["source"] == ("frames" if field is None else "weights' record")


def test_a_bad_record_is_refused_in_one_line_and_size_skips_it(videos_240x320, tmp_path, capsys):
    data, _, names = videos_240x320
    weights = tmp_path / "mine.pth"
    shutil.copyfile(demo.BUILT_IN["small"].weights, weights)
    (tmp_path / "mine.json").write_text(json.dumps({"trained_sizes": [[8, 8]]}))
    args = [str(data), "--sequences", names[0], "--max-frames", "3", "--weights", str(weights), "--config", "small",
            "--backend", "torch", "--threads", "1", "--no-progress"]
    assert run_cli.main(args + ["-o", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "mine.json" in err and "--size native" in err
    summary = run(args[:-5] + ["-o", str(tmp_path / "native"), "--size", "native"])
    assert summary["sequences"][names[0]]["processing_size"] == [240, 320]


# -- the overlay ----------------------------------------------------------------------------

def test_overlay_is_translucent_with_a_contour_in_the_palette_colour():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    labels = np.zeros((240, 320), dtype=np.uint8)
    labels[100:200, 150:300] = 2
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (768 - 9)
    colours = palette_colours(palette)
    drawn = overlay(frame, labels, colours, index=7)
    # inside, away from the outline and the id text: the frame shows through the tint
    inner = (slice(105, 125), slice(155, 185))
    tint = np.array([0, 128, 0], dtype=np.float32)
    got = drawn[inner].astype(np.float32)
    assert not np.all(got == tint)
    through = (got - 0.6 * frame[inner].astype(np.float32) - 0.4 * tint)
    assert np.abs(through).max() <= 1.0  # 60% of the frame, 40% of the colour
    assert np.corrcoef(got[..., 0].ravel(), frame[inner][..., 0].ravel())[0, 1] > 0.9
    # the outline: the mask's border pixels are the palette colour
    for y, x in ((100, 200), (199, 200), (150, 150), (150, 299)):
        assert drawn[y, x].tolist() == [0, 128, 0], (y, x, drawn[y, x])
    # background far from any drawing is the frame itself
    assert np.array_equal(drawn[220:, :100], frame[220:, :100])
    # the frame index (top-left) and the object's id (at its centre) are drawn
    plain = overlay(frame, labels, colours, index=None)
    assert not np.array_equal(drawn[:20, :80], frame[:20, :80]) and np.array_equal(plain[:20, :80], frame[:20, :80])
    centre = drawn[140:160, 215:235].astype(int) - (0.6 * frame[140:160, 215:235] + 0.4 * tint).round().astype(int)
    assert (np.abs(centre).max(axis=2) > 40).sum() > 10  # the id's strokes


def test_hmmn_run_overlay_video_has_every_frame(videos_240x320, tmp_path):
    import cv2

    data, _, names = videos_240x320
    out = tmp_path / "out"
    run([str(data), "-o", str(out), "--sequences", names[0], "--max-frames", "4", "--overlay"])
    capture = cv2.VideoCapture(str(out / "overlays" / f"{names[0]}.mp4"))
    try:
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
        ok, first = capture.read()
        assert ok and first.shape == (240, 320, 3)  # at the frames' size, not the processing size
    finally:
        capture.release()
