"""hmmn_ref against the golden vectors of the public HMMN code (spec section 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmmn_ref
from hmmn_ref.video import grid_16, object_labels, one_hot, pad, padding_for, stack_slots

from conftest import golden_frames, load_golden

# Tolerances of spec section 7.
MAX_DP = 1e-3
MAX_REL_DL = 1e-2
MIN_AGREEMENT = 0.999


def compare(logits: np.ndarray, golden: np.ndarray):
    """-> (max |dP|, max |dL| / (1 + |L_golden|), argmax agreement)."""
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    pg = torch.softmax(torch.from_numpy(golden), 1).numpy()
    dp = float(np.abs(p - pg).max())
    dl = float((np.abs(logits - golden) / (1.0 + np.abs(golden))).max())
    agreement = float((logits.argmax(1) == golden.argmax(1)).mean())
    return dp, dl, agreement


@pytest.mark.parametrize("name", ["single", "three", "multi"])
def test_run_video_matches_golden(paper_model, name):
    data = load_golden(name)
    logits = hmmn_ref.run_video(
        paper_model, golden_frames(data), torch.from_numpy(data["labels0"]).long(), int(data["mem_every"])
    ).numpy()
    assert logits.shape == data["logits"].shape
    dp, dl, agreement = compare(logits, data["logits"])
    print(f"golden_{name}: max|dP| {dp:.2e}  rel|dL| {dl:.2e}  agreement {agreement:.6f}")
    assert dp <= MAX_DP
    assert dl <= MAX_REL_DL
    assert agreement >= MIN_AGREEMENT
    # The golden argmax masks too (frame 0 is the annotation).
    assert (logits.argmax(1) == data["pred"][1:]).mean() >= MIN_AGREEMENT


def _close(actual: torch.Tensor, expected: np.ndarray, rel: float) -> None:
    """float16 debug arrays: compare relative to the tensor's scale."""
    expected_t = torch.from_numpy(expected.astype(np.float32))
    scale = float(expected_t.abs().max())
    err = float((actual - expected_t).abs().max())
    assert err <= rel * scale, f"max error {err:.3g} vs scale {scale:.3g}"


# MemoryEntry fields -> the public code's names (k4 is the 1/16 key: r4 features).
GOLDEN_MEMORY_NAMES = {"key16": "k4", "value16": "v4", "key8": "k3", "value8": "v3", "key4": "k2", "value4": "v2"}


def test_memory_of_first_frame_matches_golden_debug(paper_model):
    """encode_memory on the annotation: golden_multi's debug_memorize0_* ([N, C, 1, h, w])."""
    data = load_golden("multi")
    frames = golden_frames(data)
    labels0 = torch.from_numpy(data["labels0"]).long()
    p = padding_for(*labels0.shape)
    with torch.no_grad():
        entry = paper_model.encode_memory(pad(frames[:1], p), pad(one_hot(labels0, object_labels(labels0)), p))
    for field, suffix in GOLDEN_MEMORY_NAMES.items():
        _close(getattr(entry, field), data["debug_memorize0_" + suffix][:, :, 0], 5e-3)


def test_decoder_inputs_match_golden_debug(paper_model):
    """The readouts m4, m3, m2 the decoder gets on frames 1 and 2 of golden_multi."""
    data = load_golden("multi")
    frames = golden_frames(data)
    labels0 = torch.from_numpy(data["labels0"]).long()
    labels = object_labels(labels0)
    p = padding_for(*labels0.shape)
    n = len(labels)
    h, w = grid_16(*labels0.shape)
    with torch.no_grad():
        first = paper_model.encode_memory(pad(frames[:1], p), pad(one_hot(labels0, labels), p))
        stack = stack_slots
        query = paper_model.encode_query(pad(frames[1:2], p))
        tracks = torch.zeros(n, 0, h * w, dtype=torch.int64)
        m4, weights, tracks = paper_model.read_16(*stack([first])[:2], query, tracks)
        m3, m2 = paper_model.read_fine(*stack([first])[2:], query, weights)
        for got, key in ((m4, "m4"), (m3, "m3"), (m2, "m2")):
            _close(got, data[f"debug_decoder_in_{key}"][0], 5e-3)
        # Frame 2 reads frame 0 and frame 1 (memorised with the golden probabilities of frame 1).
        probs1 = torch.softmax(torch.from_numpy(data["logits"][0]), 0)
        second = paper_model.encode_memory(pad(frames[1:2], p), pad(probs1, p))
        query = paper_model.encode_query(pad(frames[2:3], p))
        m4, weights, _ = paper_model.read_16(*stack([first, second])[:2], query, tracks)
        m3, m2 = paper_model.read_fine(*stack([first, second])[2:], query, weights)
        for got, key in ((m4, "m4"), (m3, "m3"), (m2, "m2")):
            _close(got, data[f"debug_decoder_in_{key}"][1], 5e-3)
