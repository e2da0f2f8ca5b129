"""tools/average_weights.py: the mean of several weight files of one model, with its record."""

from __future__ import annotations

import json

import pytest
import torch

import hmmn_ref
from conftest import load_tool


def small_weights(seed: int) -> dict:
    torch.manual_seed(seed)
    return hmmn_ref.HMMN(hmmn_ref.SMALL).state_dict()


def test_the_mean_of_three_weight_files_and_its_record(tmp_path):
    tool = load_tool("average_weights")
    states = [small_weights(seed) for seed in (0, 1, 2)]
    paths = [str(tmp_path / f"w{i}.pth") for i in range(3)]
    for state, path in zip(states, paths):
        torch.save(state, path)
    (tmp_path / "w0.json").write_text(json.dumps({"command": "python tools/train_demo.py --seed 0",
                                                  "config": "small"}))
    # a train_demo checkpoint counts as its "model" entry
    torch.save({"model": states[2], "iteration": 7}, paths[2])
    (tmp_path / "run.json").write_text(json.dumps({"command": "the run"}))
    out = tmp_path / "soup" / "mean.pth"
    assert tool.main(paths + ["--export", str(out), "--record", str(tmp_path / "run.json")]) == 0
    mean = torch.load(out)
    assert set(mean) == set(states[0])
    checked = 0
    for key, value in states[0].items():
        if value.is_floating_point():
            expected = (states[0][key] + states[1][key] + states[2][key]) / 3
            assert torch.allclose(mean[key], expected, atol=1e-6), key
            checked += int(not torch.equal(states[0][key], states[1][key]))
        else:  # BatchNorm counters: equal in all inputs, kept
            assert torch.equal(mean[key], value)
    assert checked > 10  # the random inits differ, so the mean is not any one input
    record = json.loads((tmp_path / "soup" / "mean.json").read_text())
    assert [entry["path"] for entry in record["averaged"]] == paths
    assert all(len(entry["sha256"]) == 64 for entry in record["averaged"])
    assert record["averaged"][0]["record"]["command"].endswith("--seed 0")  # w0.json, beside w0.pth
    assert "record" not in record["averaged"][1]
    assert record["records"][0]["record"] == {"command": "the run"}
    assert record["config"] == "small"  # the one configuration the records name


def test_weights_of_different_models_are_refused(tmp_path, capsys):
    tool = load_tool("average_weights")
    small = small_weights(0)
    torch.save(small, tmp_path / "a.pth")
    other = dict(small)
    key = next(k for k, v in small.items() if v.is_floating_point())
    other[key] = torch.zeros(3)  # a mis-shaped tensor
    torch.save(other, tmp_path / "b.pth")
    fewer = {k: v for k, v in small.items() if k != key}
    torch.save(fewer, tmp_path / "c.pth")
    out = tmp_path / "mean.pth"
    assert tool.main([str(tmp_path / "a.pth"), str(tmp_path / "b.pth"), "--export", str(out)]) == 1
    assert f"b.pth: {key} is (3,)" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "a.pth"), str(tmp_path / "c.pth"), "--export", str(out)]) == 1
    assert f"missing ['{key}']" in capsys.readouterr().err
    torch.save({"not": "weights"}, tmp_path / "d.pth")
    assert tool.main([str(tmp_path / "a.pth"), str(tmp_path / "d.pth"), "--export", str(out)]) == 1
    assert "d.pth: not a state dict" in capsys.readouterr().err
    assert not out.exists()  # nothing written on a refusal


def test_one_file_or_a_missing_file_is_a_usage_error(tmp_path):
    tool = load_tool("average_weights")
    torch.save(small_weights(0), tmp_path / "a.pth")
    for argv in ([str(tmp_path / "a.pth")], [str(tmp_path / "a.pth"), str(tmp_path / "gone.pth")]):
        with pytest.raises(SystemExit) as exit_info:
            tool.main(argv + ["--export", str(tmp_path / "mean.pth")])
        assert exit_info.value.code == 2
    assert not (tmp_path / "mean.pth").exists()
