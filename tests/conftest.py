"""Shared fixtures: golden files (copied from the spec's golden vectors), models, GPU skips."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

import hmmn_ref

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = DATA / "golden"


TOOLS = pathlib.Path(__file__).parent.parent / "tools"


def load_tool(name: str):
    """tools/<name>.py as a module (the tools are scripts, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_golden(name: str) -> dict:
    """golden_<name>.npz as a dict; golden_multi's debug arrays live in a second file."""
    data = dict(np.load(GOLDEN / f"golden_{name}.npz"))
    debug = GOLDEN / f"golden_{name}_debug.npz"
    if debug.exists():
        data.update(np.load(debug))
    return data


def golden_frames(data: dict) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [T, 3, H, W] in [0, 1]."""
    return torch.from_numpy(data["frames"]).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="session")
def paper_model() -> hmmn_ref.HMMN:
    """The paper configuration with the golden fill rule's weights."""
    return hmmn_ref.fill_golden_weights(hmmn_ref.HMMN())


@pytest.fixture(scope="session")
def small_model() -> hmmn_ref.HMMN:
    return hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))


@pytest.fixture(scope="session")
def small_export(tmp_path_factory):
    """hmmn-export of the small configuration (golden-fill weights) at 96x128, FP32.

    Asked with --engines: TensorRT-RTX (the trt-rtx extra) builds them without a GPU; with no
    TensorRT at all that exits 3 and still writes the folder."""
    from hmmn_deploy.export import cli

    out = tmp_path_factory.mktemp("small_export") / "export"
    code = cli.main(["--random-weights", "--config", "small", "--size", "96x128", "--check-frames", "4",
                     "--capacity", "8", "--out", str(out), "--engines"])
    assert code == (0 if engines_buildable() else 3)
    return out


def engines_buildable() -> bool:
    """Whether `hmmn-export --engines` (builder auto) can build engines on this machine."""
    from hmmn_deploy.core import tensorrt_lib

    try:
        tensorrt_lib.choose_builder("auto")
    except tensorrt_lib.TensorRTUnavailable:
        return False
    return True


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory) -> pathlib.Path:
    """hmmn-export of the built-in demo model (small configuration, its shipped weights) at
    96x128, FP32: shared by the libhmmn tests and the openvino tests (which quantize a copy).
    (One conftest.py for the suite: the tests import helpers from it by module name.)"""
    from hmmn_deploy.export import cli

    out = tmp_path_factory.mktemp("demo_export") / "export"
    assert cli.main(["--config", "small", "--out", str(out), "--size", "96x128", "--check-frames", "3"]) == 0
    return out


@pytest.fixture(scope="session")
def paper_export(tmp_path_factory):
    """hmmn-export of the paper configuration (golden-fill weights) at 240x432, FP32 (~2 min)."""
    from hmmn_deploy.export import cli

    out = tmp_path_factory.mktemp("paper_export") / "export"
    assert cli.main(["--random-weights", "--config", "paper", "--size", "240x432", "--check-frames", "4",
                     "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def mobile_export(tmp_path_factory):
    """hmmn-export of the mobile configuration (golden-fill weights) at 96x128, FP32, engines asked
    (built by TensorRT-RTX without a GPU where it is installed; exit 3 where no TensorRT is)."""
    from hmmn_deploy.export import cli

    out = tmp_path_factory.mktemp("mobile_export") / "export"
    code = cli.main(["--random-weights", "--config", "mobile", "--size", "96x128", "--check-frames", "3",
                     "--capacity", "8", "--max-objects", "4", "--out", str(out), "--engines"])
    assert code == (0 if engines_buildable() else 3)
    return out


def _has_cuda() -> bool:
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# -- a session over a whole clip (runtime parity tests) ---------------------------------------
def run_session(session, frames, first_mask, teacher=None):
    """frames uint8 [T, H, W, 3] -> logits [T-1, K, H, W] like hmmn_ref.run_video."""
    state = session.start(frames[0], first_mask, probs=None if teacher is None else teacher[0])
    out = []
    for t in range(1, len(frames)):
        result = session.step(state, frames[t], outputs=("logits",), teacher=None if teacher is None else teacher[t])
        out.append(result.logits)
    return np.stack(out)


def compare(logits, reference):
    """-> (argmax agreement, max |dP|) of logits against reference logits."""
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    pr = torch.softmax(torch.from_numpy(np.asarray(reference)), 1).numpy()
    return float((logits.argmax(1) == np.asarray(reference).argmax(1)).mean()), float(np.abs(p - pr).max())
