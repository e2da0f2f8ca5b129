"""Parameter names and shapes, and the checkpoint loader's errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hmmn_ref
from hmmn_ref import CheckpointError

from conftest import GOLDEN


def published_names():
    """(name, shape) of every entry of the published checkpoint, in order."""
    rows = []
    for line in (GOLDEN / "state_dict_keys.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")
        rows.append((name, [int(v) for v in shape.strip("[]").split(",") if v.strip()]))
    return rows


def test_state_dict_equals_published_names_and_shapes():
    model = hmmn_ref.HMMN()
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == published_names()
    assert len(ours) == 572


def test_small_config_has_same_names():
    paper = hmmn_ref.HMMN().state_dict()
    small = hmmn_ref.HMMN(hmmn_ref.SMALL).state_dict()
    # Same stages and heads; the shallower trunk has fewer blocks.
    assert set(small) <= set(paper)
    assert {k.split(".")[0] for k in small} == {k.split(".")[0] for k in paper}
    assert sum(v.numel() for v in small.values()) * 20 < sum(v.numel() for v in paper.values())


def test_dataparallel_checkpoint_loads(tmp_path, small_model):
    # The public script saves nn.DataParallel(HMMN()): every name starts with "module.".
    wrapped = nn.DataParallel(small_model)
    path = tmp_path / "dp.pth"
    torch.save(wrapped.state_dict(), path)
    assert all(k.startswith("module.") for k in torch.load(path))
    model = hmmn_ref.load_model(path, hmmn_ref.SMALL)
    for name, tensor in small_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_checkpoint_without_batch_counters_and_wrapped_loads(tmp_path, small_model):
    state = {k: v for k, v in small_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    model = hmmn_ref.load_model(path, hmmn_ref.SMALL)
    assert torch.equal(model.Decoder.pred2.weight, small_model.Decoder.pred2.weight)


def test_wrong_keys_are_named(tmp_path, small_model):
    state = dict(small_model.state_dict())
    del state["Decoder.pred2.weight"]
    state["Decoder.extra.weight"] = torch.zeros(3)
    state["KV_Q_r4.Key.bias"] = torch.zeros(7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        hmmn_ref.load_model(path, hmmn_ref.SMALL)
    text = str(info.value)
    assert "1 missing: Decoder.pred2.weight" in text
    assert "1 unexpected: Decoder.extra.weight" in text
    assert "KV_Q_r4.Key.bias: file (7,), model (32,)" in text


def test_paper_checkpoint_into_small_config_is_refused(tmp_path):
    path = tmp_path / "paper.pth"
    torch.save(hmmn_ref.HMMN().state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit the 'small'"):
        hmmn_ref.load_model(path, hmmn_ref.SMALL)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        hmmn_ref.load_model(path)
    path2 = tmp_path / "list.pth"
    torch.save([1, 2, 3], path2)
    with pytest.raises(CheckpointError, match="not a state dict"):
        hmmn_ref.load_model(path2)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        hmmn_ref.load_model(tmp_path / "HMMN_weights.pth")


def test_golden_fill_is_deterministic_and_scales_keys():
    a = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL)).state_dict()
    b = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Key projections are the 0.3-scaled draw of their own generator.
    value = a["KV_M_r4.Key.bias"]
    gen = torch.Generator().manual_seed(__import__("zlib").crc32(b"KV_M_r4.Key.bias"))
    assert torch.allclose(value, 0.3 * 0.1 * torch.randn(value.shape, generator=gen))
    assert torch.equal(a["Encoder_Q.mean"], torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
