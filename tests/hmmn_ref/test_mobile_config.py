"""The mobile configuration (issue 38): HMMN's memory, matching and decoder over MobileNetV2 trunks
that start from torchvision's ImageNet weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_ref.checkpoint import fitting_configs
from hmmn_ref.config import HMMNConfig
from hmmn_ref.imagenet_weights import imagenet_input, init_mobile_trunks, load_imagenet_mobilenet_v2

from tests.hmmn_ref.test_mobilenet_v2 import needs_weights


@pytest.mark.parametrize("config, value16, value4, projected",
                         [(hmmn_ref.MOBILE, 2, 2, (1, 1, 1)), (hmmn_ref.MOBILE_WIDE, 128, 16, (127, 31, 15))])
def test_mobile_trunk_widths_and_shapes(config, value16, value4, projected):
    """MOBILE (the built-in model's, label propagation) keeps its values and decoder at their narrowest;
    MOBILE_WIDE has room for a trained correction; the trunk and keys are the same."""
    model = hmmn_ref.HMMN(config)
    assert config.stage_channels == (24, 32, 96)
    frame = torch.rand(1, 3, 96, 128)
    query = model.encode_query(frame)
    assert tuple(query.key16.shape) == (1, 96, 6, 8) and tuple(query.value16.shape) == (1, value16, 6, 8)
    assert tuple(query.r3.shape) == (1, 32, 12, 16) and tuple(query.r2.shape) == (1, 24, 24, 32)
    probs = torch.softmax(torch.randn(3, 96, 128), dim=0)
    memory = model.encode_memory(frame, probs)
    assert tuple(memory.value16.shape) == (2, value16, 6, 8) and tuple(memory.value4.shape) == (2, value4, 24, 32)
    assert config.memory_channels == (26, 34, 98)  # the mask and the other objects appended
    assert config.memory_value_widths == projected  # the projections' channels beside the mask's


def test_memory_and_query_share_the_trunk_and_the_key_projections():
    model = hmmn_ref.HMMN(hmmn_ref.MOBILE)
    assert model.Encoder_M.features is model.Encoder_Q.features
    assert model.KV_M_r4.Key is model.KV_Q_r4.Key and model.KV_M_r2.Key is model.KV_Q_r2.Key
    paper = hmmn_ref.HMMN(hmmn_ref.SMALL)  # the ResNet configurations keep two of each, as published
    assert paper.KV_M_r4.Key is not paper.KV_Q_r4.Key


def test_unit_keys_make_the_affinity_a_cosine_over_the_temperature():
    """MOBILE's keys are the trunk's maps, unit length per position and scaled: the matching's
    q.k / sqrt(C) is then cos(q, k) / key_temperature, whatever the trunk's scale."""
    model = hmmn_ref.HMMN(hmmn_ref.MOBILE)
    assert not any(".Key." in name for name in model.state_dict())  # nothing learned in a key
    maps = torch.randn(2, 96, 3, 4) * torch.tensor([0.1, 30.0])[:, None, None, None]
    keys = model.KV_Q_r4.Key(maps)
    query, memory = keys[0].reshape(96, -1), keys[1].reshape(96, -1)
    affinity = memory.T @ query / 96 ** 0.5
    a, b = maps[1].reshape(96, -1), maps[0].reshape(96, -1)
    cosine = torch.nn.functional.normalize(a, dim=0).T @ torch.nn.functional.normalize(b, dim=0)
    assert torch.allclose(affinity, cosine / hmmn_ref.MOBILE.key_temperature, atol=1e-4)


def test_unit_keys_need_the_trunk_widths_and_a_positive_temperature():
    with pytest.raises(ValueError, match=r"key widths .* must be the trunk's \(24, 32, 96\), got \(16, 32, 64\)"):
        HMMNConfig(trunk="mobilenet_v2", key_dim_4=16, key_dim_8=32, key_dim_16=64, key_temperature=0.1)
    with pytest.raises(ValueError, match="key_temperature must be positive"):
        HMMNConfig(trunk="mobilenet_v2", key_dim_4=24, key_dim_8=32, key_dim_16=96, key_temperature=0.0)
    learned = HMMNConfig(trunk="mobilenet_v2", key_dim_16=64)  # the learned projections take any width
    assert hmmn_ref.HMMN(learned).KV_Q_r4.Key.weight.shape[0] == 64


def test_a_mobile_state_dict_is_recognised_as_mobile():
    state = hmmn_ref.HMMN(hmmn_ref.MOBILE).state_dict()
    assert fitting_configs(state) == ["mobile"]
    assert "Encoder_Q.features.13.conv.3.weight" in state  # torchvision's names under the encoder
    with pytest.raises(hmmn_ref.HMMNError, match="pass --config mobile"):
        hmmn_ref.checkpoint.check_state_dict(hmmn_ref.HMMN(hmmn_ref.SMALL), state)
    wide = hmmn_ref.HMMN(hmmn_ref.MOBILE_WIDE).state_dict()  # a correction trained with room for it
    assert fitting_configs(wide) == ["mobile-wide"]
    with pytest.raises(hmmn_ref.HMMNError, match="pass --config mobile-wide"):
        hmmn_ref.checkpoint.check_state_dict(hmmn_ref.HMMN(hmmn_ref.MOBILE), wide)


def test_the_trunk_is_part_of_the_recorded_configuration():
    data = hmmn_ref.MOBILE.to_dict()
    assert data["trunk"] == "mobilenet_v2" and HMMNConfig.from_dict(data) == hmmn_ref.MOBILE
    old = {k: v for k, v in hmmn_ref.PAPER.to_dict().items() if k != "trunk"}  # manifests written before it
    assert HMMNConfig.from_dict(old).trunk == "resnet"
    with pytest.raises(ValueError, match="unknown trunk 'vgg'"):
        HMMNConfig(trunk="vgg")


@needs_weights
def test_both_encoders_start_as_the_imagenet_trunk():
    """With the ImageNet weights copied in, the query encoder's maps are the ImageNet network's, and
    so are the memory encoder's (the same trunk) before the masks appended to them."""
    model = init_mobile_trunks(hmmn_ref.HMMN(hmmn_ref.MOBILE)).eval()
    imagenet = load_imagenet_mobilenet_v2()
    image = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    frame = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        expected = imagenet.trunk(imagenet_input(image), (4, 8, 16))
        r4, r3, r2 = model.Encoder_Q(frame)
        mask = torch.rand(1, 1, 64, 96)
        m4, _, _ = model.Encoder_M(frame, mask, 1 - mask)
    for got, stride in ((r4, 16), (r3, 8), (r2, 4)):
        assert torch.allclose(got, expected[stride], atol=1e-4), stride
    assert torch.allclose(m4[:, :96], expected[16], atol=1e-4)
    assert torch.allclose(m4[:, 96], torch.nn.functional.avg_pool2d(mask, 16)[:, 0], atol=1e-6)
    # memory and query keys of the same frame start equal: matching starts as a feature similarity
    with torch.no_grad():
        memory = model.encode_memory(frame, torch.cat([1 - mask[0], mask[0]]))
        query = model.encode_query(frame)
    for scale in ("key16", "key8", "key4"):
        assert torch.allclose(getattr(memory, scale)[0], getattr(query, scale)[0], atol=1e-4), scale


def test_with_a_zero_correction_the_mobile_model_is_label_propagation():
    """mask_prior: the memory values' last channel is the object's mask, so the reads carry it, and the
    logits are the 1/4 read's mask plus the decoder's correction. With the correction zeroed, the
    foreground probability is that read, upsampled."""
    torch.manual_seed(0)  # the random trunk and the noise frame: one fixed draw
    model = hmmn_ref.HMMN(hmmn_ref.MOBILE)
    with torch.no_grad():
        model.Decoder.pred2.weight.zero_()
        model.Decoder.pred2.bias.zero_()
    frame = torch.rand(1, 3, 96, 128)
    mask = torch.zeros(96, 128)
    mask[24:72, 32:96] = 1.0
    memory = model.encode_memory(frame, torch.stack([1 - mask, mask]))
    for value, stride in ((memory.value16, 16), (memory.value8, 8), (memory.value4, 4)):
        assert torch.equal(value[0, -1], torch.nn.functional.avg_pool2d(mask[None, None], stride)[0, 0])
    query = model.encode_query(frame)
    slots = lambda x: x[None]  # one slot: [1, N, C, h, w]
    m4, weights, _ = model.read_16(slots(memory.key16), slots(memory.value16), query, torch.zeros(1, 0, 48, dtype=torch.long))
    m3, m2 = model.read_fine(slots(memory.key8), slots(memory.value8), slots(memory.key4), slots(memory.value4), query, weights)
    probs = model.decode(m4, m3, m2, query)
    expected = torch.nn.functional.interpolate(m2[:, -1:], scale_factor=4, mode="bilinear", align_corners=False)
    assert torch.allclose(probs, expected[:, 0].clamp(1e-4, 1 - 1e-4), atol=1e-5)
    # the same frame read against itself (random trunk, noise frame): mostly the mask, blurred at its edges
    assert ((probs[0] > 0.5).float() == mask).float().mean() > 0.9


def test_mask_prior_needs_the_mobile_trunk():
    with pytest.raises(ValueError, match="mask_prior needs the mobilenet_v2 trunk"):
        HMMNConfig(mask_prior=True)


def test_the_built_in_layout_reads_the_guide_slots_only_with_the_same_masks():
    """MOBILE reads the first and the previous frame at 1/16 (read_16_slots "guide"): with its correction
    at zero, only the 1/4 read over those two frames reaches the masks, so they are the same as with
    HMMN's read over every slot, on a video long enough for the bank to hold 4 slots."""
    import dataclasses

    from hmmn_ref.sample_video import make_sample_video
    assert hmmn_ref.MOBILE.read_16_slots == "guide" and hmmn_ref.MOBILE_WIDE.read_16_slots == "all"
    with pytest.raises(ValueError, match="read_16_slots must be one of all, guide"):
        dataclasses.replace(hmmn_ref.MOBILE, read_16_slots="every")
    torch.manual_seed(0)
    model = hmmn_ref.HMMN(hmmn_ref.MOBILE).eval()
    with torch.no_grad():
        model.Decoder.pred2.weight.zero_()
        model.Decoder.pred2.bias.zero_()
    every = hmmn_ref.HMMN(dataclasses.replace(hmmn_ref.MOBILE, read_16_slots="all")).eval()
    every.load_state_dict(model.state_dict())
    frames, labels = make_sample_video(num_frames=8, height=96, width=128, seed=4)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    first = torch.from_numpy(labels[0]).long()
    with torch.no_grad():
        guide = hmmn_ref.run_video(model, video, first, mem_every=2)
        full = hmmn_ref.run_video(every, video, first, mem_every=2)
    assert torch.allclose(guide, full, atol=1e-5)
    assert torch.equal(guide.argmax(dim=1), full.argmax(dim=1))
