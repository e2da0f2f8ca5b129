"""hmmn-export end to end on the CPU: graphs, validation, audit, manifest, failures."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
import torch

import hmmn_ref
from hmmn_ref import protocol
from hmmn_deploy.core import contracts
from hmmn_deploy.export import audit, cli, engines, exporter, manifest, validate
from hmmn_deploy.runtime import Session
from hmmn_deploy.runtime.backends import Backend, OnnxRuntimeBackend

from conftest import engines_buildable

SMALL_ARGS = ["--random-weights", "--config", "small", "--size", "96x128", "--check-frames", "4"]


def export(tmp_path_factory, name, *extra):
    out = tmp_path_factory.mktemp(name) / "export"
    code = cli.main(SMALL_ARGS + ["--out", str(out), *extra])
    return out, code


@pytest.fixture(scope="module")
def small_fp32(small_export):
    return small_export


@pytest.fixture(scope="module")
def small_fp16(tmp_path_factory):
    out, code = export(tmp_path_factory, "fp16", "--precision", "fp16")
    assert code == 0
    return out


def graph_io(model: onnx.ModelProto):
    """{name: (dtype, dims)} of a model's inputs and outputs, dims as ints or symbols."""

    def describe(values):
        out = {}
        for v in values:
            t = v.type.tensor_type
            dims = tuple(d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim)
            out[v.name] = (onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, dims)
        return out

    return describe(model.graph.input), describe(model.graph.output)


def read(out):
    with open(out / "manifest.json") as f:
        return json.load(f)


def test_folder_holds_graphs_and_a_schema_valid_manifest(small_fp32, small_fp16):
    jsonschema = pytest.importorskip("jsonschema")
    schema = manifest.load_schema()
    for out in (small_fp32, small_fp16):
        record = read(out)
        jsonschema.validate(record, schema)
        engine_files = [f"{g}.engine" for g in contracts.GRAPH_NAMES] if record["engines"]["built"] else []
        assert sorted(os.listdir(out)) == sorted(["decode.onnx", "encode_memory.onnx", "encode_query.onnx",
                                                  "manifest.json", "match.onnx"] + engine_files)
        for name, graph in record["graphs"].items():
            assert graph["sha256"] == manifest.sha256_file(str(out / graph["file"]))
        assert record["validation"]["video"]["passed"]
        assert all(v["passed"] for v in record["validation"]["graphs"].values())
    engines_record = read(small_fp32)["engines"]
    assert engines_record["built"] is engines_buildable()
    if not engines_record["built"]:
        assert "tensorrt" in engines_record["reason"]


def test_onnx_io_follows_the_contract(small_fp32, small_fp16):
    for out, precision in ((small_fp32, "fp32"), (small_fp16, "fp16")):
        specs = contracts.graph_specs(hmmn_ref.SMALL, precision)
        for name, spec in specs.items():
            model = onnx.load(str(out / f"{name}.onnx"), load_external_data=False)
            inputs, outputs = graph_io(model)
            assert inputs == {s.name: (s.dtype, s.dims) for s in spec.inputs}
            assert outputs == {s.name: (s.dtype, s.dims) for s in spec.outputs}
            assert model.opset_import[0].version <= audit.OPSET_RANGE[1]
    # The FP16 plan in the types: float16 features, float32 frames, masks, logits, probabilities.
    assert read(small_fp16)["graphs"]["encode_query"]["outputs"][0]["dtype"] == "float16"
    assert read(small_fp16)["graphs"]["decode"]["outputs"][1]["dtype"] == "float32"


def test_one_export_serves_other_sizes_and_object_counts(small_fp32):
    """The graphs have dynamic N, T, H, W: a 3-object clip of another size, chained, matches run_video."""
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
    run = OnnxRuntimeBackend(str(small_fp32), contracts.graph_specs(hmmn_ref.SMALL, "fp32"))
    frames, labels = validate.sample_clip(112, 150, num_frames=8, num_objects=3, seed=4)
    check = validate.validate_video(model, run, frames, labels[0], mem_every=2)
    assert check.passed, check.line()
    assert check.max_dp < 1e-3


def test_rounding_floor_is_measured_only_below_the_gate_and_still_catches_broken_graphs(small_fp32):
    """Below min_agreement the check runs hmmn_ref against itself on frames moved by +-1e-6 and
    passes only at or above that floor; a graph that is really wrong fails all the same."""
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
    run = OnnxRuntimeBackend(str(small_fp32), contracts.graph_specs(hmmn_ref.SMALL, "fp32"))
    frames, labels = validate.sample_clip(96, 128, num_frames=4, seed=3)
    plain = validate.validate_video(model, run, frames, labels[0], mem_every=2)
    assert plain.passed and plain.floor_agreement is None and len(plain.frame_agreement) == 3

    # An impossible bar forces the floor: the graphs match hmmn_ref as well as it matches itself.
    strict = validate.validate_video(model, run, frames, labels[0], mem_every=2, min_agreement=1.01)
    assert strict.floor_agreement is not None and 0.99 <= strict.floor_agreement <= 1.0
    assert strict.passed == (strict.decided_agreement >= strict.floor_agreement)
    assert "rounding floor" in strict.line() or "further off" in strict.line()

    class Broken(Backend):  # decode favours object 1 by 2 nats: a real bug, far past rounding
        def _run(self, graph, inputs, outputs):
            run._run(graph, inputs, outputs)
            if graph == "decode":
                outputs["logits"][1] += 2.0

    broken = Broken(run.specs, run.device)
    wrong = validate.validate_video(model, broken, frames, labels[0], mem_every=2)
    assert wrong.floor_agreement is not None and wrong.decided_agreement < 0.95
    assert not wrong.passed and not wrong.at_floor and "further off" in wrong.line()


def test_free_running_session_equals_run_video_on_the_small_model(small_fp32):
    """Without teacher forcing, the runtime's own loop over the exported graphs is run_video."""
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
    frames, labels = validate.sample_clip(96, 128, num_frames=9, seed=2)
    reference = hmmn_ref.run_video(model, frames, labels[0], mem_every=3).numpy()
    session = Session.open(str(small_fp32), "onnxruntime", mem_every=3)
    state = session.start(frames[0], labels[0])
    got = np.stack([session.step(state, frames[t], outputs=("logits",)).logits for t in range(1, 9)])
    assert (got.argmax(1) == reference.argmax(1)).mean() >= 0.999


def test_teacher_tracks_are_checked_and_force_the_bank(small_fp32):
    """The hook the export's video check uses: wrong shapes are refused; the given maps are read.
    (At 160x224 the kernel is narrow enough on the 10x14 grid for the maps to matter.)"""
    session = Session.open(str(small_fp32), "onnxruntime", mem_every=1)
    frames, labels = validate.sample_clip(160, 224, num_frames=4, seed=5)
    hw = 10 * 14
    state = session.start(frames[0], labels[0])
    session.step(state, frames[1])  # frame 0 kept: one permanent slot from now on
    with pytest.raises(Exception, match=r"teacher_tracks must be integer \[N, P, hw\] = \(2, 1, 140\)"):
        session.step(state, frames[2], teacher_tracks=np.zeros((2, 2, hw), np.int64))
    own = state.groups[0].tracks[:1].permute(1, 0, 2, 3).reshape(2, 1, hw).clone()  # the bank's maps, [N, P, hw]
    other = torch.randint(0, hw, (2, 1, hw), generator=torch.Generator().manual_seed(0))
    logits = {}
    for name, tracks in (("free", None), ("own", own), ("other", other)):
        again = session.start(frames[0], labels[0])
        session.step(again, frames[1])
        logits[name] = session.step(again, frames[2], teacher_tracks=tracks, outputs=("logits",)).logits
    np.testing.assert_array_equal(logits["own"], logits["free"])  # forcing the bank's own maps changes nothing
    assert np.abs(logits["other"] - logits["free"]).max() > 1e-2  # other maps are read


def test_fp16_effect_is_measured_and_printed(small_fp16, capsys):
    video = read(small_fp16)["validation"]["video"]
    assert video["passed"] and video["margin"] == 0.1
    assert 0.9 <= video["agreement"] <= 1.0 and video["decided_agreement"] >= 0.99
    assert video["max_dp"] > 0  # float16 does change the numbers


def test_validation_names_a_wrong_graph(small_fp32, tmp_path):
    """A decode graph from other weights fails value checks; renamed outputs fail name checks."""
    specs = contracts.graph_specs(hmmn_ref.SMALL, "fp32")
    model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
    frames, labels = validate.sample_clip(96, 128, num_frames=3)
    inputs, expected = validate.reference_cases(model, frames, labels[0])
    dims = validate.case_dims(labels[0], 2)
    run = OnnxRuntimeBackend(str(small_fp32), specs)
    other = hmmn_ref.HMMN(hmmn_ref.SMALL)  # default initialisation: different weights
    with torch.no_grad():
        _, bad_expected = validate.reference_cases(other, frames, labels[0])
    checks = validate.validate_graph(specs["encode_query"], run, inputs["encode_query"], bad_expected["encode_query"], dims)
    assert not any(c.passed for c in checks)
    assert [c.output for c in checks][0] == "query_key16" and "FAIL  encode_query   query_key16" in checks[0].line()
    good = validate.validate_graph(specs["decode"], run, inputs["decode"], expected["decode"], dims)
    assert all(c.passed for c in good)
    assert "decode: inputs ['readout16']" in specs["decode"].io_mismatch(["readout16"], ["logits", "probs"])


def test_audit_passes_our_graphs_and_names_violations(small_fp32):
    for name in contracts.GRAPH_NAMES:
        assert audit.audit_model(onnx.load(str(small_fp32 / f"{name}.onnx")), name) == []
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])
    k = onnx.helper.make_tensor_value_info("k", onnx.TensorProto.INT64, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None])
    i = onnx.helper.make_tensor_value_info("i", onnx.TensorProto.INT64, [None])
    nodes = [
        onnx.helper.make_node("Unique", ["x"], ["u"], name="uniq"),
        onnx.helper.make_node("TopK", ["x", "k"], ["y", "i"], name="top"),
    ]
    graph = onnx.helper.make_graph(nodes, "bad", [x, k], [y, i])
    bad = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    findings = [str(f) for f in audit.audit_model(bad, "bad")]
    assert "bad: node '<model>' (opset): opset 21 is outside TensorRT 10's 9..20" in findings
    assert "bad: node 'uniq' (Unique): operator not supported by TensorRT's ONNX parser" in findings
    assert "bad: node 'top' (TopK): K must be a constant (initializer)" in findings


def test_audit_table_records_its_source():
    table = audit.load_table()
    assert table["source"]["repository"] == "onnx/onnx-tensorrt"
    assert table["source"]["tensorrt_version"].startswith("10.")
    assert table["operators"]["TopK"]["supported"] and not table["operators"]["Unique"]["supported"]


def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "x"
    assert cli.main(["--weights", str(tmp_path / "missing.pth"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(SMALL_ARGS[:-4] + ["--size", "32x32", "--out", str(out)]) == 2
    assert "1/16 grid" in capsys.readouterr().err
    out.mkdir()
    assert cli.main(SMALL_ARGS + ["--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert os.listdir(out) == []


def test_failed_validation_keeps_files_aside(tmp_path, monkeypatch):
    monkeypatch.setitem(exporter.VIDEO_GATES, "fp32", (1e-3, 1.1))  # impossible: the video check must fail,
    real = exporter.validate_video  # and without the rounding floor (which this export would meet)
    monkeypatch.setattr(exporter, "validate_video", lambda *a, **k: real(*a, **{**k, "measure_floor": False}))
    out = tmp_path / "export"
    assert cli.main(SMALL_ARGS + ["--out", str(out)]) == 1
    assert not out.exists()
    assert (tmp_path / "export.failed" / "manifest.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_manifest_reader_refuses_other_versions(small_fp32, tmp_path):
    assert manifest.read_manifest(str(small_fp32))["schema_version"] == manifest.SCHEMA_VERSION
    record = read(small_fp32)
    record["schema_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    with pytest.raises(manifest.ManifestError, match="schema version 99"):
        manifest.read_manifest(str(tmp_path))
    with pytest.raises(manifest.ManifestError, match="not an hmmn-export folder"):
        manifest.read_manifest(str(tmp_path / "nowhere"))


def test_manifest_holds_what_libhmmn_reads_as_numbers(small_fp32):
    """Derived dims as numbers, the padding multiple, the fewest 1/16 cells, the protocol's settings;
    the JSON schema's limits are the protocol's."""
    record = read(small_fp32)
    config = hmmn_ref.HMMNConfig.from_dict(record["model"]["config"])
    assert record["input"]["min_cells_16"] == config.min_cells_16 and record["input"]["multiple"] == 16
    free = {"N": 3, "T": 2, "H": record["input"]["padded_height"], "W": record["input"]["padded_width"]}
    derived = {s: free[r["of"]] // r["ratio"] + r["offset"] for s, r in record["derived_dims"].items()}
    assert derived == {"K": 4, "h": 6, "w": 8, "h8": 12, "w8": 16, "h4": 24, "w4": 32}  # 96x128
    assert set(derived) | set(free) == set(record["dims"])
    memory = record["memory"]
    assert (memory["mem_every"], memory["capacity"]) == (protocol.DEFAULT_MEM_EVERY, 8)  # conftest's --capacity 8
    assert memory["max_objects"] == (protocol.DEFAULT_MAX_OBJECTS if record["engines"]["built"] else None)
    limits = manifest.load_schema()["properties"]["memory"]["properties"]
    assert {name: limits[name]["minimum"] for name in protocol.MINIMUM} == {
        name: minimum for name, (minimum, _) in protocol.MINIMUM.items()}


def test_engine_profiles_cover_objects_and_slots():
    spec = contracts.graph_specs(hmmn_ref.PAPER, "fp16")["match"]
    profile = engines.profile_shapes(spec, 480, 864, max_objects=5, capacity=20)  # a multiple of 16
    assert profile["mem_key16"] == {"min": [1, 1, 128, 30, 54], "opt": [10, 2, 128, 30, 54],
                                    "max": [20, 5, 128, 30, 54]}
    assert profile["mem_key8"]["max"] == [2, 5, 30, 54, 4, 128]
    # Engines take padded frames: 480x854 pads to 480x864.
    assert engines.profile_shapes(spec, 480, 854, 5, 20) == profile


@pytest.mark.gpu
def test_engines_build_and_load_on_a_gpu(small_fp32, tmp_path):
    trt = pytest.importorskip("tensorrt")
    from hmmn_deploy.core import tensorrt_lib

    specs = contracts.graph_specs(hmmn_ref.SMALL, "fp32")
    built = engines.build_engines(str(small_fp32), specs, (96, 128), 3, 6, tensorrt_lib.TENSORRT,
                                  timing_cache=str(tmp_path / "cache"), log=print)
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    for name, entry in built.items():
        with open(small_fp32 / entry["file"], "rb") as f:
            engine = runtime.deserialize_cuda_engine(f.read())
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        assert names == specs[name].input_names + specs[name].output_names


def test_export_size_defaults_to_the_weights_trained_size(tmp_path):
    """No --size: the built-in model's record's first trained size (240x320 for the default, mobile;
    96x128 for the small one) becomes the export size, and all its trained sizes are kept in the
    manifest; weights without a record keep 480x854; --size wins."""
    from hmmn_deploy import demo

    def chosen(*argv):
        args = cli.build_parser().parse_args(["--out", str(tmp_path / "x"), *argv])
        cli.resolve_source(args)
        cli.choose_size(args)
        return args.size, args.trained_sizes

    mobile, small = demo.training_record("mobile")["trained_sizes"], demo.training_record("small")["trained_sizes"]
    assert mobile == [[240, 320], [480, 640]] and small[0] == [96, 128] and len(small) > 1
    assert chosen() == ((240, 320), mobile)
    assert chosen("--config", "small") == ((96, 128), small)
    assert chosen("--config", "small", "--size", "240x320") == ((240, 320), small)
    assert chosen("--random-weights") == ((480, 854), None)
