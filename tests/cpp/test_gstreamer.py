"""hmmnseg, the GStreamer element (cpp/gst/): found by gst-inspect-1.0; in the issue's pipeline
(multifilesrc ! pngdec ! videoconvert ! hmmnseg ! pngenc) the same label maps as
`hmmn-run --backend onnxruntime` on the same PNG frames; the overlay; objects joining from an
annotations folder; a flushing seek that restarts the video; region metas; errors that say what to
do; and AddressSanitizer over gst-launch-1.0 and a seek.

Built into the trees of test_cpp.py (cpp/build/pytest-*, with -DHMMN_WITH_GSTREAMER=ON).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy.demo.synthetic import make_video
from hmmn_deploy.segment import cli as run_cli
from test_cpp import ASAN, RELEASE, SIZE, _bad_input_folders, _build, _save_mask, _write_frames, gstreamer_dev

TOOLS = ("gst-launch-1.0", "gst-inspect-1.0")
if not gstreamer_dev() or not all(shutil.which(t) for t in TOOLS):
    pytest.skip("GStreamer is not installed (apt-get install libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev "
                "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)", allow_module_level=True)

PIPELINE = ("multifilesrc location={frames}/%05d.png caps=image/png,framerate=10/1 ! pngdec ! videoconvert ! "
            "hmmnseg artifacts={artifacts} mask={mask} {extra} ! {encode} ! multifilesink location={out}/%05d.png")


@pytest.fixture(scope="module")
def gst_build() -> pathlib.Path:
    return _build("pytest-release", *RELEASE)


def _env(build: pathlib.Path, **extra) -> dict:
    """The element of `build` only, with a registry of its own (the release and ASan builds
    both hold a plugin named hmmn)."""
    return dict(os.environ, GST_PLUGIN_PATH=str(build / "gst"), GST_REGISTRY=str(build / "gst" / "registry.bin"),
                **extra)


def _launch(build, pipeline: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], capture_output=True, text=True, timeout=300,
                          env=_env(build, **extra))


def _launch_failing(build, pipeline: str) -> subprocess.CompletedProcess:
    """A pipeline expected to fail. gst-launch-1.0 (1.22) sometimes never exits after two errors
    during preroll (the element's, then the source's "not-negotiated"; the same happens with a
    missing multifilesrc file and no hmmnseg at all): after 90 s it is killed and what it
    printed is judged as it is."""
    command = ["gst-launch-1.0", "-q", *pipeline.split()]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=90, env=_env(build))
    except subprocess.TimeoutExpired as hung:
        def text(data):
            return data.decode(errors="replace") if isinstance(data, bytes) else data or ""
        return subprocess.CompletedProcess(command, -9, text(hung.stdout), text(hung.stderr))


def _labels(path) -> np.ndarray:
    """Label values of a PNG: palette indices (hmmn-run) or grey levels (pngenc of GRAY8)."""
    image = Image.open(path)
    assert image.mode in ("P", "L"), (path, image.mode)
    return np.asarray(image)


def _video(folder: pathlib.Path, seed: int, frames: int = 12):
    images, labels = make_video(seed, frames, *SIZE)
    _write_frames(folder / "frames", images)
    _save_mask(folder / "first.png", labels[0])
    return images, labels


def test_gst_inspect_finds_hmmnseg(gst_build):
    done = subprocess.run(["gst-inspect-1.0", "hmmnseg"], capture_output=True, text=True, env=_env(gst_build))
    assert done.returncode == 0, done.stderr
    for word in ("artifacts", "mask", "annotations", "capacity", "mem-every", "threads", "overlay", "GRAY8"):
        assert word in done.stdout, word


def test_labels_equal_hmmn_run(gst_build, demo_export, tmp_path):
    """The issue's check: pngenc writes 8-bit grey PNGs, hmmn-run palette PNGs: label values compared."""
    images, _ = _video(tmp_path, seed=7)
    (tmp_path / "gst").mkdir()
    done = _launch(gst_build, PIPELINE.format(frames=tmp_path / "frames", artifacts=demo_export,
                                              mask=tmp_path / "first.png", extra="output=labels", encode="pngenc",
                                              out=tmp_path / "gst"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_cli.main([str(tmp_path / "frames"), "--mask", str(tmp_path / "first.png"), "-o", str(tmp_path / "py"),
                         "--artifacts", str(demo_export), "--backend", "onnxruntime", "--no-progress"]) == 0
    names = sorted(p.name for p in (tmp_path / "py" / "frames").glob("*.png"))
    assert len(names) == len(images) and sorted(p.name for p in (tmp_path / "gst").glob("*.png")) == names
    same = total = 0
    for name in names:
        expected, got = _labels(tmp_path / "py" / "frames" / name), _labels(tmp_path / "gst" / name)
        assert got.shape == expected.shape == SIZE
        same += int((got == expected).sum())
        total += got.size
    assert same / total >= 0.9999, f"{total - same} of {total} pixels differ"
    assert len(np.unique(_labels(tmp_path / "gst" / names[-1]))) > 1  # objects are still tracked at the end


def test_overlay_paints_objects_only(gst_build, demo_export, tmp_path):
    images, _ = _video(tmp_path, seed=8, frames=4)
    (tmp_path / "labels").mkdir()
    (tmp_path / "overlay").mkdir()
    for extra, out in (("output=labels", "labels"), ("output=overlay", "overlay")):
        done = _launch(gst_build, PIPELINE.format(frames=tmp_path / "frames", artifacts=demo_export,
                                                  mask=tmp_path / "first.png", extra=extra, encode="pngenc",
                                                  out=tmp_path / out))
        assert done.returncode == 0, done.stderr
    for t, frame in enumerate(images):
        labels = _labels(tmp_path / "labels" / f"{t:05d}.png")
        overlay = np.asarray(Image.open(tmp_path / "overlay" / f"{t:05d}.png").convert("RGB"))
        background = labels == 0
        assert np.array_equal(overlay[background], frame[background])
        assert (overlay[~background] != frame[~background]).any(axis=-1).mean() > 0.9


def test_objects_joining_from_annotations(gst_build, demo_export, tmp_path):
    """annotations=DIR (PNGs named by frame index): as hmmn-run on a YouTube-VOS folder."""
    images, labels = make_video(2, 10, *SIZE)
    assert set(np.unique(labels[4])) == {0, 1, 2, 3}
    root = tmp_path / "ytvos"
    _write_frames(root / "JPEGImages" / "seq", images)
    notes = root / "Annotations" / "seq"
    notes.mkdir(parents=True)
    _save_mask(notes / "00000.png", np.where(labels[0] == 1, 1, 0))
    _save_mask(notes / "00004.png", labels[4])
    assert run_cli.main([str(root), "-o", str(tmp_path / "py"), "--artifacts", str(demo_export), "--backend",
                         "onnxruntime", "--no-progress"]) == 0
    (tmp_path / "gst").mkdir()
    done = _launch(gst_build, PIPELINE.format(frames=root / "JPEGImages" / "seq", artifacts=demo_export,
                                              mask=notes / "00000.png", extra=f"annotations={notes}", encode="pngenc",
                                              out=tmp_path / "gst"))
    assert done.returncode == 0, done.stderr
    for t in range(10):
        expected, got = _labels(tmp_path / "py" / "seq" / f"{t:05d}.png"), _labels(tmp_path / "gst" / f"{t:05d}.png")
        assert np.array_equal(expected, got), f"frame {t}: {(expected != got).sum()} pixels differ"
    assert {2, 3} <= set(np.unique(_labels(tmp_path / "gst" / "00004.png")))  # they joined on frame 4


def _regions(printed: str):
    """test_hmmnseg's lines -> [(kind, payload)], payload of a buffer: {id: (x, y, w, h, pixels)}."""
    events = []
    for line in printed.splitlines():
        if line.startswith("buffer "):
            regions = {}
            for item in filter(None, (part.strip() for part in line.split(":", 1)[1].split(";"))):
                kind, *numbers = item.split()
                assert kind == "hmmn-object"
                regions[int(numbers[0])] = tuple(int(n) for n in numbers[1:])
            events.append(("buffer", regions))
        else:
            events.append(tuple(line.split(": ", 1)) if ": " in line else (line, None))
    return events


def _mask_regions(mask: np.ndarray) -> dict:
    out = {}
    for i in np.unique(mask)[1:]:
        ys, xs = np.nonzero(mask == i)
        box = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1, len(xs))
        out[int(i)] = tuple(int(v) for v in box)
    return out


def test_seek_restarts_with_the_mask_and_regions_are_attached(gst_build, demo_export, tmp_path):
    _, labels = _video(tmp_path, seed=9, frames=2)
    done = subprocess.run([str(gst_build / "gst" / "test_hmmnseg"), str(demo_export), str(tmp_path / "first.png"),
                           str(SIZE[1]), str(SIZE[0])], capture_output=True, text=True, timeout=300,
                          env=_env(gst_build))
    assert done.returncode == 0, done.stdout + done.stderr
    events = _regions(done.stdout)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "eos" and "error" not in kinds, done.stdout
    seek = kinds.index("seek")
    warning = kinds.index("warning")
    assert warning > seek and "restarts after a flush or seek" in events[warning][1] and "mask=" in events[warning][1]
    first = _mask_regions(labels[0])
    # the first buffer, and the first after the seek, are the mask itself (boxes and pixel counts)
    assert events[0] == ("buffer", first)
    after = [payload for kind, payload in events[seek:] if kind == "buffer"]
    assert after[0] == first and len(after) == 5  # 0.5 s at 10 frames per second
    for regions in after[1:]:
        assert set(regions) <= set(first)
        for x, y, w, h, pixels in regions.values():
            assert 0 <= x and x + w <= SIZE[1] and 0 <= y and y + h <= SIZE[0] and 0 < pixels <= w * h


def test_errors_say_what_to_do(gst_build, demo_export, tmp_path):
    images, _ = _video(tmp_path, seed=10, frames=3)
    (tmp_path / "rgba").mkdir()
    for t, frame in enumerate(images):
        Image.fromarray(frame).convert("RGBA").save(tmp_path / "rgba" / f"{t:05d}.png")
    foreign, missing, edited = _bad_input_folders(demo_export, tmp_path)
    Image.fromarray(np.zeros((SIZE[0], SIZE[1] + 16), np.uint8)).save(tmp_path / "wide.png")
    source = f"multifilesrc location={tmp_path}/frames/%05d.png caps=image/png,framerate=10/1 ! pngdec !"
    cases = {
        # RGBA frames straight from pngdec: the element names the format and the fix
        "put videoconvert before hmmnseg": f"multifilesrc location={tmp_path}/rgba/%05d.png "
                                           f"caps=image/png,framerate=10/1 ! pngdec ! "
                                           f"hmmnseg artifacts={demo_export} mask={tmp_path}/first.png",
        "not an hmmn-deploy manifest": f"{source} videoconvert ! hmmnseg artifacts={foreign} mask={tmp_path}/first.png",
        "is missing; export again": f"{source} videoconvert ! hmmnseg artifacts={missing} mask={tmp_path}/first.png",
        "SHA-256 mismatch": f"{source} videoconvert ! hmmnseg artifacts={edited} mask={tmp_path}/first.png",
        "needs artifacts=DIR": f"{source} videoconvert ! hmmnseg mask={tmp_path}/first.png",
        "needs mask=FILE": f"{source} videoconvert ! hmmnseg artifacts={demo_export}",
        "cannot open mask": f"{source} videoconvert ! hmmnseg artifacts={demo_export} mask={tmp_path}/none.png",
        "the mask is 144x96 but the video is 128x96": f"{source} videoconvert ! hmmnseg artifacts={demo_export} "
                                                      f"mask={tmp_path}/wide.png",
    }
    for words, pipeline in cases.items():
        done = _launch_failing(gst_build, pipeline + " ! fakesink")
        assert done.returncode != 0 and words in done.stdout + done.stderr, (words, done.stdout + done.stderr)
        assert "hmmnseg" in done.stdout + done.stderr
    # caps that cannot link at all: gst-launch-1.0 names them
    done = _launch_failing(gst_build, f"videotestsrc num-buffers=2 ! video/x-raw,format=I420 ! "
                                      f"hmmnseg artifacts={demo_export} mask={tmp_path}/first.png ! fakesink")
    assert done.returncode != 0 and "hmmnseg0 can't handle caps" in done.stdout + done.stderr


def _sanitizer_runtimes() -> str:
    """libasan and libubsan of the compiler that built the sanitizer tree, to preload into gst-launch-1.0."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    paths = [subprocess.run([compiler, f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
             for lib in ("libasan.so", "libubsan.so")]
    if not all(os.path.isabs(p) and os.path.exists(p) for p in paths):
        pytest.skip("the compiler's libasan.so / libubsan.so were not found to preload into gst-launch-1.0")
    return " ".join(paths)


def test_sanitizers_over_gst_launch_and_a_seek(demo_export, tmp_path):
    """The element built with AddressSanitizer + UBSan (leak checks on), loaded by gst-launch-1.0
    (runtimes preloaded) over the issue's pipeline with the overlay, and test_hmmnseg's seek."""
    build = _build("pytest-asan", *ASAN, targets=("gsthmmn", "test_hmmnseg"))
    _video(tmp_path, seed=11, frames=5)
    (tmp_path / "out").mkdir()
    sanitizers = dict(ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23",
                      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    preload = dict(sanitizers, LD_PRELOAD=_sanitizer_runtimes())
    # the registry first (scanning every installed plugin is not what is checked here)
    subprocess.run(["gst-inspect-1.0", "hmmnseg"], capture_output=True, env=_env(build, **preload), timeout=300)
    runs = [
        _launch(build, PIPELINE.format(frames=tmp_path / "frames", artifacts=demo_export, mask=tmp_path / "first.png",
                                       extra="output=overlay", encode="videoconvert ! pngenc", out=tmp_path / "out"),
                **preload),
        subprocess.run([str(build / "gst" / "test_hmmnseg"), str(demo_export), str(tmp_path / "first.png"),
                        str(SIZE[1]), str(SIZE[0])], capture_output=True, text=True, timeout=300,
                       env=_env(build, **sanitizers)),
    ]
    for done in runs:
        report = done.stdout[-3000:] + done.stderr[-6000:]
        assert done.returncode == 0, report
        assert "Sanitizer" not in done.stderr and "runtime error" not in done.stderr, report
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
