"""Issue 33, cases 4 and 9: SIGTERM and SIGHUP stop hmmn-run as Ctrl-C does (a line, the clean-up,
exit 128 + the signal), during a run and during an export on the fly; work folders of exports
whose process is gone are removed; a damaged cache entry is exported again.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from hmmn_deploy.segment import cli
from hmmn_ref.media import davis_palette, write_mask
from hmmn_ref.sample_video import make_sample_video

H, W = 64, 96


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> pathlib.Path:
    """clip/: 60 PNG frames (long enough to be stopped while it runs); first.png beside it."""
    root = tmp_path_factory.mktemp("signals")
    video, labels = make_sample_video(60, H, W, num_objects=2, seed=7)
    (root / "clip").mkdir()
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(root / "clip" / f"{t:05d}.png")
    write_mask(str(root / "first.png"), labels[0], davis_palette())
    return root / "clip"


def start(clip: pathlib.Path, out: pathlib.Path, *more) -> subprocess.Popen:
    command = [sys.executable, "-m", "hmmn_deploy.segment.cli", str(clip), "--mask", str(clip.parent / "first.png"),
               "-o", str(out), "--random-weights", "--config", "small", "--no-progress", *more]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_during_a_run_clean_up_and_exit_128_plus_the_signal(clip, tmp_path, signum):
    out = tmp_path / "out"
    process = start(clip, out, "--backend", "torch")
    wait_for(lambda: len(list((out / ".partial/clip/masks").glob("*.png"))) >= 2, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert sorted(os.listdir(out)) == ["summary.json"]  # no .partial/, no lock, nothing half-published


@pytest.mark.slow
def test_sigterm_during_an_export_on_the_fly_leaves_no_work_folder(clip, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = cache / f"small-fp32-0123456789abcdef-v1.partial-{int(dead.stdout)}"  # a SIGKILLed export's
    stale.mkdir()
    (stale / "encode_query.onnx").write_bytes(b"half")
    process = start(clip, tmp_path / "out", "--cache", str(cache))
    wait_for(lambda: any(".partial-" in p.name and p.name != stale.name for p in cache.iterdir()), process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert os.listdir(cache) == []  # its own work folder and the stale one are gone
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_damaged_cache_entry_is_exported_again(clip, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "out"
    base = [str(clip), "--mask", str(clip.parent / "first.png"), "--random-weights", "--config", "small",
            "--no-progress", "--max-frames", "3", "--cache", str(cache)]
    assert cli.main(base + ["-o", str(out / "a")]) == 0
    (entry,) = cache.iterdir()
    graph = entry / "decode.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])  # truncated
    assert cli.main(base + ["-o", str(out / "b")]) == 0
    err = capsys.readouterr().err
    assert "damaged" in err and "exporting them again" in err and "--overwrite" not in err
    (entry / "manifest.json").unlink()  # an entry without its manifest
    assert cli.main(base + ["-o", str(out / "c")]) == 0
    err = capsys.readouterr().err
    assert "exporting them again" in err and "--overwrite" not in err and "--out" not in err
    assert cli.main(base + ["-o", str(out / "d")]) == 0
    assert "reusing the exported graphs" in capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(out / "a/clip/00002.png")),
                          np.asarray(Image.open(out / "d/clip/00002.png")))
