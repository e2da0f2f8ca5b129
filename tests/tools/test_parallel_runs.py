"""tools/parallel_runs.sh: train_demo runs side by side for a fixed time, then each run's mean."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

import hmmn_ref

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "parallel_runs.sh")


def run_script(*args, **env):
    environment = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=600, env=environment)


def test_runs_stop_at_the_time_limit_and_each_run_is_averaged(tmp_path):
    torch.manual_seed(0)
    init = tmp_path / "init.pth"
    torch.save(hmmn_ref.HMMN(hmmn_ref.SMALL).state_dict(), init)
    # the runs' records nest this one, with an iterations count of its own
    (tmp_path / "init.json").write_text(json.dumps({"command": "python tools/train_demo.py", "iterations_done": 7}))
    out = tmp_path / "runs"
    result = run_script(str(out), "3", str(init), "a: --seed 1 --clip 3 --lr 1e-4", "b: --seed 2 --clip 3 --jaccard 1",
                        KEEP_EVERY="1", AVERAGE_FROM="2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 runs started for 3 s each on cpu: a b" in result.stdout
    for name, seed in (("a", 1), ("b", 2)):
        record = json.loads((out / name / "final.json").read_text())
        assert record["stopped_by_time_limit"] and record["settings"]["seed"] == seed
        assert record["settings"]["schedule"] == "constant" and record["settings"]["time_limit"] == 3.0
        done = record["iterations_done"]
        assert record["previous_stage"]["iterations_done"] == 7
        assert f"run {name}: {done} iterations, mean of {done - 1} kept weights" in result.stdout
        mean = json.loads((out / f"{name}_mean.json").read_text())
        kept = [str(out / name / "weights" / f"iteration_{i:06d}.pth") for i in range(2, done + 1)]
        assert [entry["path"] for entry in mean["averaged"]] == kept  # from AVERAGE_FROM on, in order
        assert mean["records"][0]["record"]["settings"]["seed"] == seed and mean["config"] == "small"
        states = [torch.load(path) for path in kept]
        averaged = torch.load(out / f"{name}_mean.pth")
        key = "Encoder_M.conv1_m.weight"
        assert torch.allclose(averaged[key], sum(s[key] for s in states) / len(states), atol=1e-6)


def test_bad_arguments_are_refused_before_anything_runs(tmp_path):
    init = tmp_path / "init.pth"
    missing = run_script(str(tmp_path / "out"), "3", str(init), "a: --seed 1")
    assert missing.returncode == 2 and f"{init}: no such file" in missing.stderr
    init.write_bytes(b"")
    unnamed = run_script(str(tmp_path / "out"), "3", str(init), "--seed 1")
    assert unnamed.returncode == 2 and "\"--seed 1\": write NAME: flags" in unnamed.stderr
    assert not (tmp_path / "out").exists()
    none = run_script(str(tmp_path / "out"), "3", str(init))
    assert none.returncode == 2 and "give at least one" in none.stderr
    # an empty file is no state dict: the run fails, and the script says which and exits 1
    failing = run_script(str(tmp_path / "out"), "3", str(init), "a: --seed 1")
    assert failing.returncode == 1 and "run a FAILED" in failing.stdout
