"""Shared fixtures: golden files (copied from the spec's golden vectors), models, GPU skips."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

import hmmn_ref

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = DATA / "golden"


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


def _has_cuda() -> bool:
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
