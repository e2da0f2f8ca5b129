"""hmmn-run: frame folders, video files, DAVIS and YouTube-VOS layouts, resume, bad input.

The small configuration with random weights (golden fill) keeps this fast; the shared
vtest.avi's first 30 frames (tests/data/vtest30.avi, MJPG) run at their native 768x576.
"""

from __future__ import annotations

import json
import os
import pathlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import hmmn_ref
from hmmn_deploy.runtime import Session
from hmmn_deploy.segment import cli, discover
from hmmn_deploy.segment.sources import InputError
from hmmn_ref.media import davis_palette
from hmmn_ref.sample_video import make_sample_video

DATA = pathlib.Path(__file__).parents[1] / "data"
SIZE = (96, 128)


def save_mask(path, labels, palette=None):
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(palette or davis_palette())
    image.save(path)


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def pngs(folder) -> list:
    """The masks of an output sequence folder (beside them: hmmn-run's record, .hmmn-run.json)."""
    return sorted(n for n in os.listdir(folder) if n.endswith(".png"))


def make_davis(root: pathlib.Path, names=("bears", "cars"), frames=6) -> pathlib.Path:
    for seed, name in enumerate(names):
        video, labels = make_sample_video(frames, *SIZE, num_objects=2, seed=seed)
        (root / "JPEGImages/480p" / name).mkdir(parents=True)
        (root / "Annotations/480p" / name).mkdir(parents=True)
        for t in range(frames):
            Image.fromarray(video[t]).save(root / "JPEGImages/480p" / name / f"{t:05d}.jpg", quality=95)
            save_mask(root / "Annotations/480p" / name / f"{t:05d}.png", labels[t])
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("\n".join(names) + "\n")
    return root


def make_folder(root: pathlib.Path, frames=6, objects=2) -> pathlib.Path:
    video, labels = make_sample_video(frames, *SIZE, num_objects=objects, seed=3)
    root.mkdir(parents=True)
    for t in range(frames):
        Image.fromarray(video[t]).save(root / f"{t:05d}.jpg", quality=95)
    save_mask(root.parent / "first.png", labels[0])
    return root


def run(*argv) -> int:
    return cli.main([str(a) for a in argv] + ["--no-progress"])


def test_discovery_of_each_layout(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for name in ("frame10.png", "frame2.png", "frame1.png", "notes.txt"):
        (folder / name).write_bytes(b"")
    (tmp_path / "m.png").write_bytes(b"")
    data = discover(str(folder), str(tmp_path / "m.png"))
    assert data.kind == "frames" and data.sequences[0].frame_names == ["frame1", "frame2", "frame10"]
    with pytest.raises(InputError, match="--mask"):
        discover(str(folder))
    davis = discover(str(make_davis(tmp_path / "davis")), imageset="2017/val")
    assert davis.kind == "davis" and [s.name for s in davis.sequences] == ["bears", "cars"]
    assert all(list(s.annotations) == [0] for s in davis.sequences)  # later annotations are ground truth
    with pytest.raises(InputError, match="2016/val"):
        discover(str(tmp_path / "davis"), imageset="2016/val")
    with pytest.raises(InputError, match="does not exist"):
        discover(str(tmp_path / "nowhere"))
    data = discover(str(DATA / "vtest30.avi"), str(DATA / "vtest30_mask.png"))
    assert data.kind == "video" and data.sequences[0].frame_names[:2] == ["00000", "00001"]
    assert data.sequences[0].num_frames == 30


def test_davis_dataset_keeps_ids_and_palette(small_export, tmp_path):
    root = make_davis(tmp_path / "davis")
    palette = [(7 * i + 3) % 256 for i in range(768)]  # an unusual palette must come back unchanged
    mask = read_png(root / "Annotations/480p/cars/00000.png").copy()
    mask[mask == 2] = 7  # object ids with gaps are kept
    save_mask(root / "Annotations/480p/cars/00000.png", mask, palette)
    out = tmp_path / "out"
    assert run(root, "-o", out, "--imageset", "2017/val", "--artifacts", small_export, "--overlay") == 0
    for name in ("bears", "cars"):
        assert pngs(out / name) == [f"{t:05d}.png" for t in range(6)]
        assert np.array_equal(read_png(out / name / "00000.png"), read_png(root / "Annotations/480p" / name / "00000.png"))
        capture = cv2.VideoCapture(str(out / "overlays" / f"{name}.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    with Image.open(out / "cars/00003.png") as image:
        assert image.mode == "P" and image.getpalette()[:30] == palette[:30]
        assert set(np.unique(np.asarray(image))) <= {0, 1, 7}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "davis" and summary["frames"] == 12
    assert summary["sequences"]["cars"]["objects"] == [1, 7]
    assert summary["sequences"]["bears"]["status"] == "done" and summary["fps"] > 0
    assert not (out / ".partial" / "cars").exists()


def test_youtube_vos_object_appearing_later(small_export, tmp_path):
    root = tmp_path / "ytvos"
    video, labels = make_sample_video(7, *SIZE, num_objects=2, seed=5)
    (root / "JPEGImages/fish").mkdir(parents=True)
    (root / "Annotations/fish").mkdir(parents=True)
    for t in range(7):
        Image.fromarray(video[t]).save(root / "JPEGImages/fish" / f"{t * 5:05d}.jpg", quality=95)
    save_mask(root / "Annotations/fish/00000.png", np.where(labels[0] == 1, 1, 0))  # object 1 only
    save_mask(root / "Annotations/fish/00015.png", labels[3])  # object 2 appears on the 4th frame
    (root / "meta.json").write_text(json.dumps({"videos": {"fish": {"objects": {}}}}))
    out = tmp_path / "out"
    assert run(root, "-o", out, "--artifacts", small_export, "--save-probs") == 0
    names = pngs(out / "fish")
    assert names == [f"{t * 5:05d}.png" for t in range(7)]
    ids = [np.load(out / "probs/fish" / n.replace(".png", ".npz"))["object_ids"].tolist() for n in names]
    assert ids[:3] == [[0, 1]] * 3 and ids[3:] == [[0, 1, 2]] * 4
    frame3 = read_png(out / "fish/00015.png")
    assert np.all(frame3[labels[3] == 2] == 2)  # the new object's own annotation wins on its first frame
    assert 2 not in read_png(out / "fish/00010.png")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "youtube-vos" and summary["sequences"]["fish"]["objects"] == [1, 2]


def test_vtest_first_30_frames_same_masks_on_both_cpu_backends(small_export, tmp_path):
    """Both CPU backends on the real clip at 768x576. Random weights leave regions where objects
    tie (p equal to rounding), which either backend may break; masks must be identical wherever
    onnxruntime's top two probabilities differ by more than 0.02 (8-bit saved probabilities)."""
    masks, probs = {}, {}
    for backend in ("onnxruntime", "torch"):
        out = tmp_path / backend
        assert run(DATA / "vtest30.avi", "--mask", DATA / "vtest30_mask.png", "-o", out, "--backend", backend,
                   "--artifacts", small_export, "--save-probs") == 0
        names = pngs(out / "vtest30")
        assert names == [f"{t:05d}.png" for t in range(30)]
        masks[backend] = np.stack([read_png(out / "vtest30" / n) for n in names])
        probs[backend] = np.stack([np.load(out / "probs/vtest30" / n.replace(".png", ".npz"))["probs"]
                                   for n in names[1:]])
        assert masks[backend].shape == (30, 576, 768)
        assert json.loads((out / "summary.json").read_text())["backend"] == backend
    ranked = np.sort(probs["onnxruntime"].astype(np.int16), axis=1)
    decided = (ranked[:, -1] - ranked[:, -2]) > 0.02 * 255
    same = masks["onnxruntime"][1:] == masks["torch"][1:]
    assert decided.mean() > 0.5
    assert same[decided].mean() >= 0.9999, f"decided agreement {same[decided].mean():.6f}"
    assert np.array_equal(masks["onnxruntime"][0], masks["torch"][0])


def test_resume_after_an_interrupt(small_export, tmp_path, monkeypatch):
    root = make_davis(tmp_path / "davis", names=("a", "b", "c"))
    out = tmp_path / "out"
    real_step = Session.step
    calls = {"n": 0}

    def step_then_interrupt(self, state, frame, **kw):
        calls["n"] += 1
        if calls["n"] == 8:  # third frame of the second sequence
            raise KeyboardInterrupt
        return real_step(self, state, frame, **kw)

    monkeypatch.setattr(Session, "step", step_then_interrupt)
    assert run(root, "-o", out, "--artifacts", small_export) == 130
    assert (out / "a").is_dir() and not (out / "b").exists() and not (out / "c").exists()
    assert not (out / ".partial" / "b").exists()  # a half-written sequence is not kept
    first_mtime = (out / "a/00005.png").stat().st_mtime_ns
    monkeypatch.setattr(Session, "step", real_step)
    assert run(root, "-o", out, "--artifacts", small_export) == 0
    assert (out / "a/00005.png").stat().st_mtime_ns == first_mtime  # finished: skipped, not redone
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v["status"] for k, v in summary["sequences"].items()} == {"a": "done", "b": "done", "c": "done"}
    assert run(root, "-o", out, "--artifacts", small_export) == 0  # nothing left to do


def test_corrupt_frame_is_named_or_skipped(small_export, tmp_path, capsys):
    folder = make_folder(tmp_path / "clip")
    (folder / "00004.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out"
    assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", small_export) == 1
    err = capsys.readouterr().err
    assert "00004.jpg" in err and "--skip-bad-frames" in err
    assert not (out / "clip").exists()
    assert json.loads((out / "summary.json").read_text())["sequences"]["clip"]["status"] == "failed"
    assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", small_export,
               "--skip-bad-frames") == 0
    record = json.loads((out / "summary.json").read_text())["sequences"]["clip"]
    assert record["status"] == "done" and record["skipped_frames"] == ["00004"]
    assert np.array_equal(read_png(out / "clip/00004.png"), read_png(out / "clip/00003.png"))


def test_bad_masks_and_inputs_get_clear_errors(small_export, tmp_path, capsys):
    folder = make_folder(tmp_path / "clip")
    save_mask(tmp_path / "small.png", np.ones((SIZE[0] - 16, SIZE[1]), np.uint8))
    out = tmp_path / "out"
    assert run(folder, "--mask", tmp_path / "small.png", "-o", out, "--artifacts", small_export) == 1
    assert "is 80x128 but the frames are 96x128" in capsys.readouterr().err
    assert not (out / "clip").exists()
    save_mask(tmp_path / "empty.png", np.zeros(SIZE, np.uint8))
    assert run(folder, "--mask", tmp_path / "empty.png", "-o", out, "--artifacts", small_export) == 1
    assert "no object" in capsys.readouterr().err
    assert run(folder, "-o", out, "--artifacts", small_export) == 2
    assert "--mask" in capsys.readouterr().err
    assert run(tmp_path / "missing", "--mask", tmp_path / "first.png", "-o", out) == 2
    assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", tmp_path) == 2
    assert "manifest" in capsys.readouterr().err
    assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", small_export,
               "--precision", "fp16") == 2
    assert "fp32 graphs" in capsys.readouterr().err
    # A device the backend cannot use is refused, never swapped for another.
    assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", small_export,
               "--backend", "tensorrt", "--device", "cpu") == 2
    assert "CUDA GPU only" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", small_export,
                   "--device", "cuda") == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err
    assert not (out / "clip").exists()


def test_processing_size_writes_masks_at_the_frames_size(small_export, tmp_path):
    folder = make_folder(tmp_path / "clip")
    out = tmp_path / "out"
    assert run(folder, "--mask", tmp_path / "first.png", "-o", out, "--artifacts", small_export,
               "--size", "64x96", "--backend", "torch") == 0
    assert read_png(out / "clip/00005.png").shape == SIZE
    record = json.loads((out / "summary.json").read_text())["sequences"]["clip"]
    assert record["processing_size"] == [64, 96] and record["size"] == list(SIZE)


def test_weights_export_once_into_the_cache(tmp_path, capsys):
    """--weights with a graph backend exports on the fly, keyed by the weights; the next run reuses it."""
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
    weights = tmp_path / "small.pth"
    torch.save(model.state_dict(), weights)
    folder = make_folder(tmp_path / "clip", frames=4)
    cache = tmp_path / "cache"
    args = [folder, "--mask", tmp_path / "first.png", "--weights", weights, "--config", "small", "--cache", cache]
    assert run(*args, "-o", tmp_path / "one") == 0
    assert "exporting the graphs once" in capsys.readouterr().err
    (entry,) = os.listdir(cache)
    assert entry.startswith("small-fp32-")
    assert run(*args, "-o", tmp_path / "two") == 0
    assert "reusing the exported graphs" in capsys.readouterr().err
    for name in pngs(tmp_path / "one/clip"):
        assert np.array_equal(read_png(tmp_path / "one/clip" / name), read_png(tmp_path / "two/clip" / name))
    wrong = tmp_path / "paper_keys.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    assert run(folder, "--mask", tmp_path / "first.png", "--weights", wrong, "--config", "small",
               "-o", tmp_path / "three") == 2
    assert "missing" in capsys.readouterr().err
