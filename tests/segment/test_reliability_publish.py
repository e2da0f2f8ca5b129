"""Issue 33, case 3: a crash during a --force publish. The process is killed (os._exit, as
SIGKILL would) before each step of the journaled swap in turn; after the next run the
sequence's outputs are whole: the old ones (4 masks and their probabilities) or the new ones
(6 masks and an overlay), never a mix, never none, and summary.json agrees with them.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.segment import cli
from hmmn_deploy.segment.outdir import CRASH_ENV, CRASH_EXIT

FRAMES, H, W = 6, 64, 96
MODEL = ["--backend", "torch", "--random-weights", "--config", "small", "--no-progress"]


def args(data, out, *more) -> list:
    return [str(data), "-o", str(out), "--sequences", "one", *more] + MODEL


def outputs(out: pathlib.Path) -> dict:
    """The sequence's published files -> bytes (hmmn-run's record and the overlay's bytes aside:
    they differ between two runs that make the same masks)."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out))
        if p.is_file() and not rel.startswith((".", "summary.json")) and p.name != ".hmmn-run.json":
            files[rel] = b"" if rel.endswith(".mp4") else p.read_bytes()
    return files


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("publish") / "davis"
    write_davis(str(root), [("one", 31)], FRAMES, H, W, "val")
    return root


@pytest.mark.slow
def test_a_crash_at_any_step_of_a_forced_publish_leaves_the_old_or_the_new_outputs(davis, tmp_path):
    old_out = tmp_path / "old"
    assert cli.main(args(davis, old_out, "--max-frames", "4", "--save-probs")) == 0
    old = outputs(old_out)
    assert len([k for k in old if k.startswith("one/")]) == 4 and any(k.startswith("probs/") for k in old)
    new = None
    seen = set()
    for step in range(1, 20):
        out = tmp_path / f"crash{step}"
        shutil.copytree(old_out, out)
        env = dict(os.environ, **{CRASH_ENV: str(step)})
        done = subprocess.run([sys.executable, "-m", "hmmn_deploy.segment.cli", *args(davis, out, "--force",
                                                                                       "--overlay")],
                              env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:  # past the last step: the publish completed
            new = outputs(out)
            break
        assert done.returncode == CRASH_EXIT, done.stderr
        if step == 3:  # the old masks were moved aside: a next run that fails on its input puts them back
            assert not (out / "one").exists()
            assert cli.main(args(tmp_path / "no-such-input", out)) == 2
            assert outputs(out) == old and not (out / ".partial").exists()
        assert cli.main(args(davis, out)) == 0  # the next run: finishes or rolls back, then skips the sequence
        after = outputs(out)
        assert not (out / ".partial").exists() and not (out / ".hmmn-run.lock").exists()
        if after == old:
            seen.add("old")
        else:
            masks = sorted(k for k in after if k.startswith("one/"))
            assert len(masks) == FRAMES and "overlays/one.mp4" in after, sorted(after)
            assert not any(k.startswith("probs/") for k in after), sorted(after)
            seen.add("new")
        record = json.loads((out / "summary.json").read_text())["sequences"]["one"]
        assert record["status"] == "done" and record["frames"] == len([k for k in after if k.startswith("one/")])
    assert new is not None and step > 3, "the forced publish never completed"
    assert sorted(k for k in new if k.startswith("one/")) == [f"one/{t:05d}.png" for t in range(FRAMES)]
    assert "old" in seen and "new" in seen  # crashes before and after the commit were both tried
