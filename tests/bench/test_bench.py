"""hmmn-bench on the small configuration: the JSON contract, per-stage timings, FLOPs counted
from the graphs, the interleaved comparison with the baseline, scaling and profiles.
(Times are not asserted: they are reported, and this machine is shared.)"""

from __future__ import annotations

import json
import shutil

import numpy as np

import hmmn_ref
from hmmn_deploy.bench import cli
from hmmn_deploy.bench.flops import FlopModel, graph_flops, model_flops
from hmmn_deploy.core.contracts import dim_values, graph_specs


def test_compare_json_contract_and_mask_agreement(small_export, tmp_path, capsys):
    code = cli.main(["--artifacts", str(small_export), "--backend", "onnxruntime", "torch", "--size", "96x128",
                     "--frames", "3", "--warmup", "1", "--compare", "--json", "--no-probe",
                     "--profile", str(tmp_path / "prof")])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)  # standard output holds only the JSON object
    assert set(result) >= {"machine", "runs", "ratios"}
    names = [r["name"] for r in result["runs"]]
    assert names == ["baseline: hmmn_ref.run_video", "onnxruntime fp32", "torch fp32"]
    for run in result["runs"]:
        assert set(run) >= {"name", "backend", "precision", "median_ms", "p90_ms", "fps", "peak_mem_mb", "stages"}
        assert run["median_ms"] > 0 and run["mask_agreement"] >= 99.0
    stages = result["runs"][1]["stages"]
    assert list(stages) == ["upload", "encode_memory", "encode_query", "match", "decode", "bank_update", "download"]
    assert all(set(s) >= {"median_ms", "p90_ms", "p99_ms", "min_ms", "max_ms"} for s in stages.values())
    assert result["runs"][1]["gflop_per_frame"] > 0 and stages["match"]["gflop"] > 0
    assert set(result["ratios"]) == {"onnxruntime fp32", "torch fp32"}
    assert result["profile"]["stage"] in ("encode_query", "encode_memory", "match", "decode")
    assert (tmp_path / "prof" / f"{result['profile']['stage']}_operators.txt").is_file()
    assert "speed-up" in captured.err


def test_flops_counted_by_hand():
    """Conv, MatMul and Einsum FLOPs of a hand-built graph against the formulas."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
         helper.make_node("MatMul", ["a", "b"], ["c"]),
         helper.make_node("Einsum", ["d", "e"], ["f"], equation="bij,bjk->bik")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 4, 5]),
         helper.make_tensor_value_info("d", TensorProto.FLOAT, [2, 3, 4]),
         helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 4, 6])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "c", "f")],
        [helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], np.zeros(216, np.float32)),
         helper.make_tensor("b", TensorProto.FLOAT, [5, 6], np.zeros(30, np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    conv = 2 * (8 * 16 * 16) * (3 * 3 * 3)
    matmul = 2 * (2 * 4 * 6) * 5
    einsum = 2 * (2 * 3 * 4 * 6)
    assert model_flops(model) == conv + matmul + einsum


def test_flops_of_the_stage_graphs(small_export):
    """Every graph counts work, and match grows linearly in the slots T."""
    specs = graph_specs(hmmn_ref.SMALL, "fp32")
    for name in ("encode_query", "encode_memory", "match", "decode"):
        assert graph_flops(str(small_export / f"{name}.onnx"), specs[name], dim_values(2, 2, 96, 128)) > 0
    model = FlopModel(str(small_export), specs, 96, 128, 2)
    counted = [graph_flops(str(small_export / "match.onnx"), specs["match"], dim_values(2, t, 96, 128)) for t in (3, 5)]
    assert counted == [model.match(3), model.match(5)] and model.match_per_slot > 0


def test_scaling_table_and_plot(small_export, tmp_path, capsys):
    out = tmp_path / "scaling"
    code = cli.main(["--artifacts", str(small_export), "--size", "64x96", "--frames", "1", "--warmup", "0",
                     "--capacity", "4", "--scaling", str(out), "--scaling-sizes", "64x96", "--json", "--no-probe"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)["scaling"]
    assert list(result["slots"]) == ["1", "2", "4"] and list(result["objects"]) == ["1", "2", "4", "8"]
    bank = [result["slots"][t]["bank_mb"] for t in ("1", "2", "4")]
    assert np.all(np.diff(bank) > 0)
    assert (out / "scaling.png").stat().st_size > 1000 and "| memory slots |" in (out / "scaling.md").read_text()


def test_mem_every_is_the_exports_unless_given(small_export, tmp_path, capsys):
    """As hmmn-run: the manifest's memory.mem_every by default, --mem-every when given."""
    folder = tmp_path / "export"
    shutil.copytree(small_export, folder)
    record = json.loads((folder / "manifest.json").read_text())
    record["memory"]["mem_every"] = 3
    (folder / "manifest.json").write_text(json.dumps(record))
    args = ["--artifacts", str(folder), "--size", "96x128", "--frames", "1", "--warmup", "0", "--json", "--no-probe"]
    for extra, expected in (([], 3), (["--mem-every", "2"], 2)):
        assert cli.main(args + extra) == 0
        assert json.loads(capsys.readouterr().out)["settings"]["mem_every"] == expected
    assert cli.main(args + ["--mem-every", "0"]) == 2
    assert "--mem-every 0: give a whole number >= 1" in capsys.readouterr().err


def test_bad_arguments(tmp_path, capsys):
    assert cli.main(["--artifacts", str(tmp_path), "--frames", "1"]) == 2
    assert "manifest" in capsys.readouterr().err
    assert cli.main(["--frames", "0"]) == 2


def test_versus_times_two_models_side_by_side_each_at_its_processing_size(tmp_path, capsys):
    """--versus: a checkpoint and the built-in small model timed in one run, interleaved, each on the frames
    resized as hmmn-run would for it, the runs named after their model, masks compared per model."""
    import torch
    from PIL import Image

    from hmmn_ref.media import write_mask
    from hmmn_ref.sample_video import make_sample_video

    other = tmp_path / "other.pth"
    torch.save(hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL)).state_dict(), other)
    (tmp_path / "other.json").write_text(json.dumps({"trained_sizes": [[64, 96]]}))
    frames, labels = make_sample_video(num_frames=4, height=128, width=192, num_objects=2, seed=1)
    (tmp_path / "frames").mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "frames" / f"{i:05d}.png")
    Image.fromarray(labels[0].astype(np.uint8)).save(tmp_path / "first.png")
    code = cli.main(["--weights", str(other), "--config", "small", "--versus", "builtin:small",
                     "--input", str(tmp_path / "frames"), "--mask", str(tmp_path / "first.png"),
                     "--run", "torch:fp32", "--frames", "2", "--warmup", "1", "--json", "--no-probe"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert [r["name"] for r in result["runs"]] == ["other.pth (small): torch fp32", "built-in small: torch fp32"]
    assert all(r["median_ms"] > 0 and r["mask_agreement"] == 100.0 for r in result["runs"])
    first, second = result["settings"]["models"]
    assert first["label"] == "other.pth (small)" and first["processing_size"] == [64, 96]
    assert first["working_size"]["frames"] == [128, 192]
    # the built-in small model was trained at sizes around 128x192: it takes the frames as they are
    assert second["label"] == "built-in small" and second["processing_size"] == [128, 192]


def test_size_resizes_the_frames_of_input(tmp_path, capsys):
    """--size HxW with --input times the frames resized to HxW (as hmmn-run --size processes them),
    says so and records it; it is never ignored."""
    from PIL import Image

    from hmmn_ref.sample_video import make_sample_video

    frames, labels = make_sample_video(num_frames=3, height=128, width=192, num_objects=1, seed=2)
    (tmp_path / "frames").mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "frames" / f"{i:05d}.png")
    Image.fromarray(labels[0].astype(np.uint8)).save(tmp_path / "first.png")
    common = ["--random-weights", "--config", "small", "--input", str(tmp_path / "frames"), "--mask",
              str(tmp_path / "first.png"), "--run", "torch:fp32", "--frames", "1", "--warmup", "1", "--json",
              "--no-probe"]
    assert cli.main(common + ["--size", "64x96"]) == 0
    captured = capsys.readouterr()
    working = json.loads(captured.out)["settings"]["working_size"]
    assert working == {"source": "--size", "frames": [128, 192], "processing_size": [64, 96]}
    assert "resized to 64x96" in captured.err and "1 runs, 64x96," in captured.err
    assert cli.main(common) == 0  # no --size: the frames as they are
    assert "working_size" not in json.loads(capsys.readouterr().out)["settings"]


def test_versus_arguments():
    assert cli.parse_versus("builtin") == (None, None)
    assert cli.parse_versus("builtin:mobile") == (None, "mobile")
    assert cli.parse_versus("builtin:small") == (None, "small")
    assert cli.model_label(None, "small") == "built-in small"
    assert cli.model_label(None, "mobile") == cli.model_label(None, None) == "built-in mobile"  # the default
    assert cli.parse_versus("runs/w.pth:mobile") == ("runs/w.pth", "mobile")
    assert cli.parse_versus("runs/w.pth") == ("runs/w.pth", None)
    assert cli.parse_versus("runs/a:b.pth") == ("runs/a:b.pth", None)  # a colon not before a configuration
    assert cli.main(["--random-weights", "--versus", "builtin", "--frames", "1"]) == 2
    assert cli.main(["--versus", "builtin", "--scaling", "x", "--frames", "1"]) == 2
