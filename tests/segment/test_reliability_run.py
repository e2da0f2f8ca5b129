"""hmmn-run's output folder (issue 19): a clean DAVIS results folder, forced redos replaced
whole, a full disk that fails a sequence instead of publishing it, one run at a time, a
summary.json that agrees with the disk.

The small configuration with random weights on the torch backend keeps each run to seconds.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import sys

import pytest

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.evaluate import cli as eval_cli
from hmmn_deploy.segment import cli, writer

FRAMES, H, W = 6, 64, 96
MODEL = ["--backend", "torch", "--random-weights", "--config", "small", "--no-progress"]


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("reliability") / "davis"
    write_davis(str(root), [("one", 11), ("two", 12)], FRAMES, H, W, "val")
    return root


def run(*argv) -> int:
    return cli.main([str(a) for a in argv] + MODEL)


def pngs(folder: pathlib.Path) -> list:
    return sorted(n for n in os.listdir(folder) if n.endswith(".png"))


def records(out: pathlib.Path) -> dict:
    return json.loads((out / "summary.json").read_text())["sequences"]


def test_the_output_folder_is_scored_by_vos_benchmark_directly(davis, tmp_path, capsys):
    from vos_benchmark.benchmark import benchmark

    out = tmp_path / "out"
    assert run(davis, "-o", out) == 0
    assert sorted(os.listdir(out)) == ["one", "summary.json", "two"]  # no work folder, no lock left
    (jf,), _, _, _ = benchmark([str(davis / "Annotations/480p")], [str(out)], num_processes=1, verbose=False)
    assert 0 <= jf <= 100
    os.remove(out / "results.csv")  # vos-benchmark's own output
    (out / ".partial").mkdir()  # left by a killed run: hmmn-eval skips hidden folders
    assert eval_cli.main(["--gt", str(out), "--pred", str(out)]) == 0
    assert "one_1" in capsys.readouterr().out


def test_force_replaces_a_finished_sequence_whole(davis, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert run(davis, "-o", out, "--sequences", "one", "--max-frames", "4", "--save-probs") == 0
    assert run(davis, "-o", out, "--sequences", "one", "--force", "--overlay") == 0
    assert pngs(out / "one") == [f"{t:05d}.png" for t in range(FRAMES)]
    assert not (out / "probs/one").exists()  # the old run's probabilities went with its masks
    assert (out / "overlays/one.mp4").is_file()
    assert records(out)["one"]["status"] == "done" and records(out)["one"]["frames"] == FRAMES
    before = {n: (out / "one" / n).read_bytes() for n in pngs(out / "one")}
    failing_write = fail_after(2, OSError(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(writer, "write_mask", failing_write)
    assert run(davis, "-o", out, "--sequences", "one", "--force") == 1  # a redo that fails ...
    assert "previous outputs are kept" in capsys.readouterr().err
    assert {n: (out / "one" / n).read_bytes() for n in pngs(out / "one")} == before  # ... changes nothing
    assert records(out)["one"]["status"] == "done" and "No space left" in records(out)["one"]["redo_error"]


def fail_after(count: int, error: BaseException):
    real = writer.write_mask
    calls = {"n": 0}

    def write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > count:
            raise error
        return real(*args, **kwargs)

    return write


class DroppingVideo:
    """OpenCV's writer on a full disk: frames after the first `keep` are lost without an error."""

    def __init__(self, real, keep: int) -> None:
        self.real, self.keep = real, keep

    def isOpened(self):
        return self.real.isOpened()

    def write(self, frame):
        if self.keep > 0:
            self.keep -= 1
            self.real.write(frame)

    def release(self):
        self.real.release()


def test_a_full_disk_fails_the_sequence_and_a_rerun_redoes_it(davis, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(writer, "write_mask", fail_after(3, OSError(errno.ENOSPC, "No space left on device")))
    assert run(davis, "-o", out, "--sequences", "one") == 1
    err = capsys.readouterr().err
    assert "one: FAILED" in err and "No space left on device" in err and "Traceback" not in err
    assert not (out / "one").exists() and not (out / ".partial").exists()
    monkeypatch.undo()
    real_open = writer.open_video
    monkeypatch.setattr(writer, "open_video", lambda *a: DroppingVideo(real_open(*a), keep=2))
    assert run(davis, "-o", out, "--sequences", "one", "--overlay") == 1
    assert f"holds 2 of its {FRAMES} frames" in capsys.readouterr().err
    assert not (out / "one").exists() and not (out / "overlays/one.mp4").exists()
    assert records(out)["one"]["status"] == "failed"
    monkeypatch.undo()
    assert run(davis, "-o", out, "--sequences", "one", "--overlay") == 0  # the rerun redoes it
    assert pngs(out / "one") == [f"{t:05d}.png" for t in range(FRAMES)]
    assert records(out)["one"]["status"] == "done"


def test_summary_that_cannot_be_written_is_a_message_and_rebuilt_from_the_disk(davis, tmp_path, capsys,
                                                                                 monkeypatch):
    from hmmn_deploy.segment import summary

    out = tmp_path / "out"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(summary.json, "dump", full)
    assert run(davis, "-o", out, "--sequences", "one") == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left on device" in err and "Traceback" not in err
    assert sorted(os.listdir(out)) == ["one"]  # the masks, no summary.json, no temporary file
    monkeypatch.undo()
    assert run(davis, "-o", out, "--sequences", "one") == 0
    assert "nothing to do" in capsys.readouterr().err
    record = records(out)["one"]
    assert record["status"] == "done" and record["frames"] == FRAMES


def test_summary_records_what_is_on_disk(davis, tmp_path):
    out = tmp_path / "out"
    assert run(davis, "-o", out) == 0
    data = json.loads((out / "summary.json").read_text())
    data["sequences"]["one"] = {"status": "failed", "error": "from another run"}  # what two runs left
    data["sequences"]["two"]["frames"] = 0
    data["sequences"]["gone"] = {"status": "done", "frames": 3, "model_seconds": 1.0}
    (out / "summary.json").write_text(json.dumps(data))
    assert run(davis, "-o", out) == 0  # nothing to do, and the summary is set right
    fixed = json.loads((out / "summary.json").read_text())
    assert set(fixed["sequences"]) == {"one", "two"}
    assert all(r["status"] == "done" and r["frames"] == FRAMES for r in fixed["sequences"].values())
    assert fixed["frames"] == 2 * FRAMES


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(davis, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom hmmn_deploy.segment.outdir import OutputFolder\n"
         "OutputFolder(sys.argv[1]).open()\nprint('locked', flush=True)\ntime.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run(davis, "-o", out) == 2
        err = capsys.readouterr().err
        assert f"PID {holder.pid}" in err and "Traceback" not in err
        assert not (out / "one").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run(davis, "-o", out, "--sequences", "one") == 0  # the lock went with its process
    assert (out / "one").is_dir() and not (out / ".hmmn-run.lock").exists()


def test_a_forced_redo_whose_publishing_fails_puts_the_old_sequence_back(davis, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run(davis, "-o", out, "--sequences", "one", "--save-probs") == 0
    snapshot = lambda: {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
                        and p.name != "summary.json"}
    before = snapshot()
    real_replace = os.replace

    def refuse_the_new_masks(src, dst):
        if str(src).endswith(os.path.join(".partial", "one", "masks")):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_the_new_masks)
    assert run(davis, "-o", out, "--sequences", "one", "--save-probs", "--force") == 1
    assert snapshot() == before and records(out)["one"]["status"] == "done"
