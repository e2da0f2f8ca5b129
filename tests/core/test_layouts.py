"""The bank's layouts against hmmn_ref's (core/layouts.py)."""

from __future__ import annotations

import torch

from hmmn_ref import matching

from hmmn_deploy.core.graphs import block_mean
from hmmn_deploy.core.layouts import fine_cells


def test_fine_cells_is_to_cells_per_16_cell():
    x = torch.randn(2, 5, 24, 32)  # a 1/4 or 1/8 map of a frame whose 1/16 grid is h x w
    for r, (h, w) in ((2, (12, 16)), (4, (6, 8))):
        assert torch.equal(fine_cells(x, r, h, w), matching.to_cells(x, r).reshape(2, h, w, r * r, 5))


def test_block_mean_is_avg_pool_and_nests():
    x = torch.rand(3, 2, 32, 48)
    for r in (4, 8, 16):
        assert torch.allclose(block_mean(x, r), torch.nn.functional.avg_pool2d(x, r), atol=1e-6)
    assert torch.allclose(block_mean(block_mean(x, 4), 2), torch.nn.functional.avg_pool2d(x, 8), atol=1e-6)
