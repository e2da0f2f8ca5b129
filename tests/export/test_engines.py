"""TensorRT without a GPU: engines built by TensorRT-RTX, NVIDIA's parser on every graph, the
layer precisions of the plan, the manifest's engine section, and the runtime's refusals."""

from __future__ import annotations

import json
import os
import shutil

import onnx
import pytest

import hmmn_ref
from hmmn_deploy.core import tensorrt_lib
from hmmn_deploy.core.tensorrt_lib import TensorRTUnavailable
from hmmn_deploy.core import contracts
from hmmn_deploy.export import cli, engines, exporter, manifest, trt_network
from hmmn_deploy.runtime import ArtifactMismatch, BackendUnavailable, Session
from hmmn_ref.sample_video import make_sample_video

rtx = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'hmmn-deploy[trt-rtx]')")

DEMO_ARGS = ["--config", "small", "--size", "96x128", "--check-frames", "3", "--capacity", "8", "--max-objects", "3",
             "--engines", "--builder", "tensorrt-rtx"]


def read(folder) -> dict:
    with open(os.path.join(folder, "manifest.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def demo_engines(request, tmp_path_factory):
    """The built-in small model's export with engines, on this machine without a GPU."""
    out = tmp_path_factory.mktemp(f"demo_{request.param}") / "export"
    assert cli.main(DEMO_ARGS + ["--precision", request.param, "--out", str(out)]) == 0
    return request.param, out


def test_demo_model_engines_are_built_and_recorded(demo_engines):
    precision, out = demo_engines
    jsonschema = pytest.importorskip("jsonschema")
    record = read(out)
    jsonschema.validate(record, manifest.load_schema())
    section = record["engines"]
    assert section["built"] and section["builder"] == {"name": "tensorrt-rtx", "version": rtx.__version__}
    assert section["targets"] == list(tensorrt_lib.RTX_DEFAULT_TARGETS) and section["targets_are_default"]
    assert section["runtime_cache"] == "rtx_runtime.cache" and section["gpu"] is None
    for name in contracts.GRAPH_NAMES:
        entry = section["files"][name]
        path = out / entry["file"]
        assert entry["sha256"] == manifest.sha256_file(str(path)) and entry["bytes"] == path.stat().st_size
        assert list(entry["profile"]) == contracts.graph_specs(hmmn_ref.SMALL, precision)[name].input_names
    # NVIDIA's parser checked every graph, and the plan is in the network it builds.
    network = record["tensorrt_network"]
    assert network["checked_by"] == f"tensorrt-rtx {rtx.__version__}"
    graphs = network["graphs"]
    assert all(g["passed"] and not g["problems"] for g in graphs.values())
    if precision == "fp32":
        assert all(g["precisions"].get("FP16", 0) == 0 and g["precisions"]["FP32"] > 0 for g in graphs.values())
    else:
        assert all(g["precisions"]["FP16"] > 0 for g in graphs.values())
        assert graphs["match"]["fp32_islands"]["softmaxes over memory positions"].startswith("3 of 3")
        assert graphs["decode"]["precisions"]["FP32"] > 0  # probabilities and aggregation stay FP32


def test_graph_with_an_unsupported_node_is_refused_naming_it(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])
    nodes = [onnx.helper.make_node("Relu", ["x"], ["r"], name="fine_relu"),
             onnx.helper.make_node("NoSuchOp", ["r"], ["y"], name="mystery_node", domain="my.custom")]
    model = onnx.helper.make_model(onnx.helper.make_graph(nodes, "bad", [x], [y]),
                                   opset_imports=[onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("my.custom", 1)])
    onnx.save(model, str(tmp_path / "bad.onnx"))
    spec = contracts.graph_specs(hmmn_ref.SMALL, "fp32")["decode"]
    verdict = trt_network.check_graph(tensorrt_lib.TENSORRT_RTX, str(tmp_path / "bad.onnx"), spec, "fp32")
    assert not verdict.passed
    assert "node 'mystery_node' (NoSuchOp)" in verdict.problems[0]


def test_parsed_inputs_and_outputs_are_held_to_the_contract(small_export):
    specs = contracts.graph_specs(hmmn_ref.SMALL, "fp32")
    good = trt_network.check_graph(tensorrt_lib.TENSORRT_RTX, str(small_export / "match.onnx"), specs["match"], "fp32")
    assert good.passed, good.problems
    wrong = trt_network.check_graph(tensorrt_lib.TENSORRT_RTX, str(small_export / "match.onnx"), specs["decode"], "fp32")
    assert any("inputs are" in p and "the contract says" in p for p in wrong.problems)


def test_fp32_islands_and_fp16_layers_are_checked():
    islands = {}
    layers = [("SOFTMAX", "FLOAT"), ("SOFTMAX", "HALF"), ("TOPK", "FLOAT"), ("EINSUM", "HALF")]
    problems = trt_network._plan_problems("match", "fp16", layers, islands)
    assert any("softmaxes over memory positions" in p and "1 of 2" in p for p in problems)
    assert any("1/16 affinity" in p for p in problems)
    assert islands["top-k guide scores"] == "1 of 1 TOPK layers FP32"
    assert trt_network._plan_problems("decode", "fp16", [("UNARY", "FLOAT"), ("CONVOLUTION", "FLOAT")], {})
    assert any("output softmax" in p for p in trt_network._plan_problems(
        "decode", "fp16", [("UNARY", "FLOAT"), ("UNARY", "HALF"), ("CONVOLUTION", "HALF")], {}))
    assert trt_network._plan_problems("decode", "fp32", [("CONVOLUTION", "HALF")], {}) == [
        "1 layers compute in FP16 in an FP32 export"]


def test_gpu_arch_targets_the_engines(small_export, tmp_path):
    assert tensorrt_lib.parse_gpu_arch("8.6, sm89,120") == ("8.6", "8.9", "12.0")
    for bad in ("", "ampere", "8.66"):
        with pytest.raises(ValueError, match="compute capability|at least one"):
            tensorrt_lib.parse_gpu_arch(bad)
    with pytest.raises(ValueError, match="cannot target compute capability 9.0; it knows .*8.6"):
        tensorrt_lib.compute_capability_enum(rtx, "9.0")
    spec = contracts.graph_specs(hmmn_ref.SMALL, "fp32")["match"]
    profile = engines.profile_shapes(spec, 96, 128, 2, 4)
    engines.build_engine(tensorrt_lib.TENSORRT_RTX, str(small_export / "match.onnx"), str(tmp_path / "m.engine"),
                         profile, targets=("8.6",))
    assert (tmp_path / "m.engine").stat().st_size > 0


def test_export_refuses_builder_options_that_cannot_apply(tmp_path, capsys):
    base = ["--random-weights", "--config", "small", "--size", "96x128", "--out", str(tmp_path / "x")]
    assert cli.main(base + ["--engines", "--gpu-arch", "9.0"]) == 2
    assert "cannot target compute capability 9.0" in capsys.readouterr().err
    assert cli.main(base + ["--engines", "--builder", "tensorrt", "--gpu-arch", "8.6"]) == 2
    assert "enterprise TensorRT builds for the GPU it runs on" in capsys.readouterr().err
    assert cli.main(base + ["--gpu-arch", "8.6"]) == 2
    assert "add --engines" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_auto_builder_never_swaps_what_was_asked(monkeypatch):
    real_installed = tensorrt_lib.installed
    monkeypatch.setattr(tensorrt_lib, "installed", lambda f: False if f is tensorrt_lib.TENSORRT else real_installed(f))
    assert tensorrt_lib.choose_builder("auto") is tensorrt_lib.TENSORRT_RTX
    if not real_installed(tensorrt_lib.TENSORRT):
        with pytest.raises(TensorRTUnavailable, match=r"tensorrt is not installed.*hmmn-deploy\[gpu\]"):
            tensorrt_lib.choose_builder("tensorrt")  # asked by name: refused, not swapped for tensorrt-rtx
    monkeypatch.setattr(tensorrt_lib, "installed", lambda f: False)
    with pytest.raises(TensorRTUnavailable, match=r"hmmn-deploy\[trt-rtx\].*hmmn-deploy\[gpu\]"):
        tensorrt_lib.choose_builder("auto")


def test_target_rules_for_both_builders():
    rtx_default = {"builder": {"name": "tensorrt-rtx", "version": "1.7.1"}, "targets": ["8.0", "8.6", "8.9", "12.0"],
                   "targets_are_default": True}
    assert tensorrt_lib.target_problem(rtx_default, "1.7.1", "RTX 4090", "8.9") is None
    assert tensorrt_lib.target_problem(rtx_default, "1.7.1", "RTX PRO", "12.1") is None  # "and later"
    assert "this GPU (NVIDIA H200) is 9.0" in tensorrt_lib.target_problem(rtx_default, "1.7.1", "NVIDIA H200", "9.0")
    explicit = dict(rtx_default, targets=["8.6"], targets_are_default=False)
    assert "target compute capability 8.6" in tensorrt_lib.target_problem(explicit, "1.7.1", "L40", "8.9")
    assert "built with tensorrt-rtx 1.7.1, and tensorrt-rtx 1.8.0" in tensorrt_lib.target_problem(
        rtx_default, "1.8.0", "RTX 4090", "8.9")
    enterprise = {"builder": {"name": "tensorrt", "version": "10.13.0"}, "targets": ["9.0"], "gpu": "NVIDIA H100"}
    assert tensorrt_lib.target_problem(enterprise, "10.13.0", "NVIDIA H100 PCIe", "9.0") is None
    assert "is 8.6" in tensorrt_lib.target_problem(enterprise, "10.13.0", "NVIDIA A10", "8.6")
    assert "10.13.3" in tensorrt_lib.target_problem(enterprise, "10.13.3", "NVIDIA H100", "9.0")  # exact version


@pytest.fixture()
def engine_copy(small_export, tmp_path):
    if not read(small_export)["engines"]["built"]:
        pytest.skip("the small export has no engines")
    folder = tmp_path / "export"
    shutil.copytree(small_export, folder)
    return folder


def test_runtime_refuses_engines_it_cannot_trust(engine_copy):
    record = read(engine_copy)
    # Intact engines still need a GPU: a clean refusal here.
    with pytest.raises(BackendUnavailable, match="needs a CUDA GPU"):
        Session.open(str(engine_copy), "tensorrt")
    # Another version of the same builder.
    other = json.loads(json.dumps(record))
    other["engines"]["builder"]["version"] = "0.9.0"
    (engine_copy / "manifest.json").write_text(json.dumps(other))
    with pytest.raises(ArtifactMismatch, match="built with tensorrt-rtx 0.9.0.*load only with the version"):
        Session.open(str(engine_copy), "tensorrt")
    # Another builder, not installed here (enterprise TensorRT).
    other["engines"]["builder"] = {"name": "tensorrt", "version": "10.13.0"}
    (engine_copy / "manifest.json").write_text(json.dumps(other))
    if not tensorrt_lib.installed(tensorrt_lib.TENSORRT):
        with pytest.raises(BackendUnavailable, match=r"built with tensorrt: .*hmmn-deploy\[gpu\]"):
            Session.open(str(engine_copy), "tensorrt")
    (engine_copy / "manifest.json").write_text(json.dumps(record))
    # An engine altered after the export, then one that is gone.
    with open(engine_copy / "decode.engine", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ArtifactMismatch, match="decode.engine.*SHA-256"):
        Session.open(str(engine_copy), "tensorrt")
    os.remove(engine_copy / "match.engine")
    with pytest.raises(ArtifactMismatch, match="match.engine.*missing"):
        Session.open(str(engine_copy), "tensorrt")


def test_runtime_refuses_graphs_changed_after_the_export(small_export, tmp_path):
    """What is loaded is what was validated: an edited or truncated graph is refused by its hash."""
    folder = tmp_path / "export"
    shutil.copytree(small_export, folder)
    frames, labels = make_sample_video(num_frames=2, height=96, width=128, seed=1)
    Session.open(str(folder), "onnxruntime").start(frames[0], labels[0])
    model = onnx.load(str(folder / "decode.onnx"))
    model.graph.initializer[0].raw_data = bytes(len(model.graph.initializer[0].raw_data))  # same size, new values
    onnx.save(model, str(folder / "decode.onnx"))
    with pytest.raises(ArtifactMismatch, match="decode.onnx.*differs from the file the export validated"):
        Session.open(str(folder), "onnxruntime")
    data = (small_export / "match.onnx").read_bytes()
    (folder / "match.onnx").write_bytes(data[: len(data) // 2])
    shutil.copy(small_export / "decode.onnx", folder / "decode.onnx")
    with pytest.raises(ArtifactMismatch, match="match.onnx.*truncated"):
        Session.open(str(folder), "onnxruntime")


def test_export_overwrite_only_replaces_an_export(small_export, tmp_path, capsys):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"not ours")
    base = ["--random-weights", "--config", "small", "--size", "96x128", "--check-frames", "3"]
    assert cli.main(base + ["--out", str(precious), "--overwrite"]) == 2
    assert "not an hmmn-export folder" in capsys.readouterr().err
    assert (precious / "holiday.jpg").read_bytes() == b"not ours"


def test_ctrl_c_during_an_export_leaves_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "export_graph", interrupted)
    out = tmp_path / "export"
    assert cli.main(["--random-weights", "--config", "small", "--size", "96x128", "--out", str(out)]) == 130
    assert "interrupted; nothing was written" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_paper_fp16_engines_at_480x854(tmp_path):
    """The paper configuration's FP16 graphs at 480x854 build into four engines on this CPU, with
    hmmn-export's default profile (8 objects, 48 slots: match holds a 4 GiB affinity, which a
    4 GiB workspace cap made fail)."""
    from hmmn_deploy.core.graphs import build_graph
    from hmmn_deploy.export.onnx_export import export_graph

    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN())
    specs = contracts.graph_specs(model.config, "fp16")
    for name in contracts.GRAPH_NAMES:
        export_graph(build_graph(name, model, "fp16"), specs[name], str(tmp_path / f"{name}.onnx"))
        assert trt_network.check_graph(tensorrt_lib.TENSORRT_RTX, str(tmp_path / f"{name}.onnx"), specs[name],
                                       "fp16").passed
    built = engines.build_engines(str(tmp_path), specs, (480, 854), 8, 48, tensorrt_lib.TENSORRT_RTX, log=print)
    assert sorted(built) == sorted(contracts.GRAPH_NAMES)
    assert all((tmp_path / e["file"]).stat().st_size > 1 << 20 for e in built.values())


def test_onnxruntime_on_cuda_is_never_a_silent_cpu_run(small_export):
    """Session.open(..., 'onnxruntime', device='cuda') asks for the CUDA provider (it ran on the CPU)."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert Session.open(str(small_export), "onnxruntime", device="cuda").device.type == "cuda"
    else:
        with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
            Session.open(str(small_export), "onnxruntime", device="cuda")
    from hmmn_deploy.runtime.errors import RuntimeInputError

    with pytest.raises(RuntimeInputError, match="make them agree"):
        Session.open(str(small_export), "onnxruntime", device="cpu", providers=["CUDAExecutionProvider"])
    assert Session.open(str(small_export), "onnxruntime", device="cpu").device.type == "cpu"
