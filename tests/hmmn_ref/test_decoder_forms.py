"""The decoder's full-size form used by the exported decode graph equals hmmn_ref's spec form:
`Decoder.foreground` against softmax(from_parts)[:, 1], `upsample_by_products` against the resize."""

from __future__ import annotations

import pytest
import torch

import hmmn_ref
from hmmn_ref.modules import plane_softmax, upsample_by_products


def _decoder_inputs(model: hmmn_ref.HMMN, n: int, h4: int, w4: int, seed: int):
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    d = cfg.decoder_dim
    fm = torch.randn(n, d, h4 // 4, w4 // 4, generator=g)
    fs3 = torch.randn(n, d, h4 // 2, w4 // 2, generator=g)
    fs2 = torch.randn(n, d, h4, w4, generator=g)
    m3 = torch.randn(n, cfg.value_dim_8, h4 // 2, w4 // 2, generator=g)
    m2 = torch.randn(n, cfg.value_dim_4, h4, w4, generator=g)
    if cfg.mask_prior:  # the last channel is a propagated mask in [0, 1], with hard 0s and 1s
        m2[:, -1] = torch.rand(n, h4, w4, generator=g).mul(1.4).sub(0.2).clamp(0, 1)
    return fm, fs3, fs2, m3, m2


@pytest.mark.parametrize("config", ["mobile", "small"])
def test_foreground_is_the_two_class_softmax_of_the_decoder(config):
    torch.manual_seed(0)
    model = hmmn_ref.HMMN(hmmn_ref.MOBILE if config == "mobile" else hmmn_ref.SMALL).eval()
    inputs = _decoder_inputs(model, 2, 12, 16, seed=1)
    with torch.no_grad():
        for p in model.Decoder.parameters():
            p.normal_(0, 0.05)
        two = model.Decoder._two_class(*inputs)
        model.Decoder.pred2.weight.mul_(8.0 / (two[:, 1] - two[:, 0]).std())  # margins of +-20:
        model.Decoder.pred2.bias.zero_()  # saturated and unsure pixels both
        spec = torch.softmax(model.Decoder.from_parts(*inputs).float(), dim=1)[:, 1]
        fast = model.Decoder.foreground(*inputs)
        model.Decoder.pred2.weight.mul_(50.0)  # margins of +-1000: exp(-margin) overflows to inf
        spec_far = torch.softmax(model.Decoder.from_parts(*inputs).float(), dim=1)[:, 1]
        fast_far = model.Decoder.foreground(*inputs)
    assert fast.shape == spec.shape == (2, 48, 64)
    assert torch.isfinite(fast).all() and torch.isfinite(fast_far).all()
    assert (fast - spec).abs().max() < 1e-6
    assert spec.min() < 1e-3 and spec.max() > 1 - 1e-3 and ((spec > 0.1) & (spec < 0.9)).any()
    assert (fast_far - spec_far).abs().max() < 1e-4  # the spec form rounds logits of 1000s


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (7, 3), (30, 40), (135, 240)])
def test_upsampling_by_products_is_the_bilinear_resize(size):
    x = torch.randn(3, *size, generator=torch.Generator().manual_seed(3)) * 10
    resized = torch.nn.functional.interpolate(x[:, None], scale_factor=4, mode="bilinear", align_corners=False)[:, 0]
    products = upsample_by_products(x, 4)
    assert products.shape == resized.shape == (3, 4 * size[0], 4 * size[1])
    assert (products - resized).abs().max() < 1e-5


def test_plane_softmax_is_the_softmax():
    x = torch.randn(3, 2, 20, 30, generator=torch.Generator().manual_seed(4)) * 30  # saturated pixels too
    for dim in (0, 1):
        assert (plane_softmax(x, dim) - torch.softmax(x, dim)).abs().max() < 1e-6
