"""The memory reads against direct, loop-by-loop readings of spec sections 4 and 5."""

from __future__ import annotations

import math

import torch

from hmmn_ref import matching


def brute_flow(aff_last: torch.Tensor, h: int, w: int, half: int) -> torch.Tensor:
    n, hw, _ = aff_last.shape
    out = torch.zeros(n, hw, dtype=torch.int64)
    for b in range(n):
        for i in range(hw):
            iy, ix = divmod(i, w)
            best, arg = -math.inf, -1
            for q in range(hw):
                qy, qx = divmod(q, w)
                if abs(qy - iy) <= half and abs(qx - ix) <= half and aff_last[b, i, q] > best:
                    best, arg = float(aff_last[b, i, q]), q
            out[b, i] = arg
    return out


def test_local_flow_is_windowed_argmax():
    torch.manual_seed(0)
    h, w = 5, 7
    aff = torch.randn(2, h * w, h * w)
    assert torch.equal(matching.local_flow(aff, h, w, 7), brute_flow(aff, h, w, 3))
    assert torch.equal(matching.local_flow(aff, h, w, 3), brute_flow(aff, h, w, 1))
    by_query = aff.transpose(1, 2).contiguous()
    assert torch.equal(matching.local_flow_query_major(by_query, h, w, 7), brute_flow(aff, h, w, 3))
    # Ties go to the smallest query index, as the brute force's strict ">" does.
    tied = torch.zeros(1, h * w, h * w)
    assert torch.equal(matching.local_flow(tied, h, w, 3), brute_flow(tied, h, w, 1))
    assert torch.equal(matching.local_flow_query_major(tied, h, w, 3), brute_flow(tied, h, w, 1))


def brute_read_16(mk, mv, qk, tracks, half, sigma):
    """Spec section 4 step by step, with loops over slots and positions."""
    t, n, c, h, w = mk.shape
    hw = h * w
    out = torch.zeros(n, mv.shape[2], hw)
    weights_all = torch.zeros(n, t, hw, hw)
    new_tracks = torch.zeros(n, t, hw, dtype=torch.int64)
    for b in range(n):
        aff = torch.stack([mk[s, b].reshape(c, hw).T @ qk.reshape(c, hw) for s in range(t)]) / math.sqrt(c)
        flow = brute_flow(aff[t - 1][None], h, w, half)[0]
        kernel = torch.zeros(t, hw, hw)
        for s in range(t):
            for i in range(hw):
                if s == t - 1:
                    centre, sig = int(flow[i]), sigma
                    new_tracks[b, s, i] = centre
                else:
                    moved = int(flow[int(tracks[b, s, i])])
                    new_tracks[b, s, i] = moved
                    centre, sig = int(flow[moved]), sigma * (0.5 * (t - 1 - s) + 1)
                cy, cx = divmod(centre, w)
                for q in range(hw):
                    qy, qx = divmod(q, w)
                    kernel[s, i, q] = math.exp(-((qx - cx) ** 2 + (qy - cy) ** 2) / (2 * sig * sig))
        wts = torch.softmax(aff.reshape(t * hw, hw), 0) * kernel.reshape(t * hw, hw)
        wts = wts / wts.sum(0, keepdim=True)
        weights_all[b] = wts.reshape(t, hw, hw)
        out[b] = torch.cat([mv[s, b].reshape(-1, hw) for s in range(t)], 1) @ wts
    return out.reshape(n, -1, h, w), weights_all, new_tracks


def test_read_16_matches_spec_steps():
    """Also the graphs' form: weights_16's query-major W and its readout, in float32 and in a
    lower precision of the values."""
    torch.manual_seed(1)
    t, n, c, cv, h, w = 3, 2, 8, 5, 4, 6
    mk = torch.randn(t, n, c, h, w)
    mv = torch.randn(t, n, cv, h, w)
    qk = torch.randn(1, c, h, w)
    tracks = torch.randint(0, h * w, (n, t - 1, h * w))
    got = matching.read_16(mk, mv, qk, tracks, 7, 3.0)
    want = brute_read_16(mk, mv, qk, tracks, 3, 3.0)
    assert torch.allclose(got[0], want[0], atol=1e-5)
    assert torch.allclose(got[1], want[1], atol=1e-6)
    assert torch.equal(got[2], want[2])
    weights, tracks_q = matching.weights_16(mk, qk, tracks, 7, 3.0)  # query-major
    assert torch.equal(tracks_q, want[2])
    assert torch.allclose(weights, want[1].permute(0, 3, 1, 2).reshape(n, h * w, t * h * w), atol=1e-6)
    assert torch.allclose(matching.readout_query_major_16(mv, weights), want[0], atol=1e-5)
    in_bf16 = matching.readout_query_major_16(mv.to(torch.bfloat16), weights).float()
    assert torch.allclose(in_bf16, want[0], atol=5e-2)


def brute_read_fine(mk, mv, qk, cells, r):
    """Spec section 5: each query pixel attends over the pixels of its cell's selected cells."""
    s, n, c, hh, ww = mk.shape
    h, w = hh // r, ww // r
    out = torch.zeros(n, mv.shape[2], hh, ww)
    for b in range(n):
        for q in range(h * w):
            qy, qx = divmod(q, w)
            mem_k, mem_v = [], []
            for cell in cells[b, q].tolist():
                slot, pos = divmod(cell, h * w)
                cy, cx = divmod(pos, w)
                for a in range(r):
                    for bb in range(r):
                        mem_k.append(mk[slot, b, :, cy * r + a, cx * r + bb])
                        mem_v.append(mv[slot, b, :, cy * r + a, cx * r + bb])
            mem_k, mem_v = torch.stack(mem_k), torch.stack(mem_v)
            for a in range(r):
                for bb in range(r):
                    y, x = qy * r + a, qx * r + bb
                    att = torch.softmax(mem_k @ qk[0, :, y, x] / math.sqrt(c), 0)
                    out[b, :, y, x] = att @ mem_v
    return out


def test_read_fine_matches_spec_and_ignores_cell_order():
    torch.manual_seed(2)
    s, n, c, cv, h, w, k = 2, 2, 6, 3, 3, 4, 5
    for r in (2, 4):
        mk = torch.randn(s, n, c, h * r, w * r)
        mv = torch.randn(s, n, cv, h * r, w * r)
        qk = torch.randn(1, c, h * r, w * r)
        cells = torch.stack([torch.stack([torch.randperm(s * h * w)[:k] for _ in range(h * w)]) for _ in range(n)])
        got = matching.read_fine(mk, mv, qk, cells, r)
        assert torch.allclose(got, brute_read_fine(mk, mv, qk, cells, r), atol=1e-5)
        shuffled = cells[:, :, torch.randperm(k)]
        assert torch.allclose(matching.read_fine(mk, mv, qk, shuffled, r), got, atol=1e-5)
        by_query = matching.read_fine(mk, mv, qk, cells, r, matching.read_fine_cells_by_query)
        assert torch.allclose(by_query, got, atol=1e-5)


def test_cells_round_trip_and_selection():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    cells = matching.to_cells(x, 4)  # [2, 2*3, 16, 3]
    assert cells.shape == (2, 6, 16, 3)
    assert torch.equal(cells[1, 4, 5, 2], x[1, 2, 1 * 4 + 1, 1 * 4 + 1])  # cell (1,1), pixel (1,1)
    assert torch.equal(matching.from_cells(cells, 2, 3, 4), x)
    guide = torch.rand(2, 10, 4)
    picked = matching.select_cells(guide, 3)
    assert torch.equal(picked, guide.transpose(1, 2).argsort(dim=2, descending=True)[:, :, :3])


def test_guide_rows_first_and_previous():
    weights = torch.rand(2, 4, 6, 6)
    rows = matching.guide_rows(weights)
    assert torch.equal(rows, torch.cat([weights[:, 0], weights[:, 3]], 1))
    assert torch.equal(matching.guide_rows(weights[:, :1]), weights[:, 0])


def test_slot_ages_make_the_read_independent_of_slot_order():
    """A capped bank keeps slots out of temporal order; ages and tracks travel with the slots."""
    torch.manual_seed(3)
    t, n, c, h, w = 5, 2, 8, 4, 6
    mk, qk = torch.randn(t, n, c, h, w), torch.randn(1, c, h, w)
    tracks = torch.randint(0, h * w, (n, t - 1, h * w))
    weights, new_tracks = matching.attention_16(mk, qk, tracks, 7, 3.0)
    order = torch.tensor([0, 3, 1, 2, 4])  # first and previous frame stay in place
    ages = matching.slot_ages(t, mk.device)[order]
    shuffled, shuffled_tracks = matching.attention_16(mk[order], qk, tracks[:, order[:-1]], 7, 3.0, ages)
    assert torch.allclose(shuffled, weights[:, order], atol=1e-7)
    assert torch.equal(shuffled_tracks, new_tracks[:, order])


def test_reading_only_the_guide_slots_keeps_the_guide_and_every_track():
    """read_16_slots "guide": W over the first and the previous frame only is the full W's rows of
    those slots renormalised, so the top-k cells are the same; every slot's track still moves on.
    The graphs' query-major form (weights_16 first_and_previous) gives the same W."""
    torch.manual_seed(3)
    t, n, c, cv, h, w = 5, 2, 8, 3, 4, 6
    hw = h * w
    mk, mv, qk = torch.randn(t, n, c, h, w), torch.randn(t, n, cv, h, w), torch.randn(1, c, h, w)
    tracks = torch.randint(0, hw, (n, t - 1, hw))
    slots = matching.guide_slots(t)
    assert slots == [0, t - 1] and matching.guide_slots(1) == [0]
    full, full_tracks = matching.attention_16(mk, qk, tracks, 7, 3.0)
    read, read_tracks = matching.attention_16(mk, qk, tracks, 7, 3.0, slots=slots)
    assert torch.equal(read_tracks, full_tracks) and read.shape == (n, 2, hw, hw)
    rows = full[:, slots]
    assert torch.allclose(read, rows / rows.sum(dim=(1, 2), keepdim=True), atol=1e-6)
    cells = matching.select_cells(matching.guide_rows(read), 8)
    assert torch.equal(cells, matching.select_cells(matching.guide_rows(full), 8))
    readout, _, _ = matching.read_16(mk, mv, qk, tracks, 7, 3.0, slots=slots)
    assert torch.allclose(readout, matching.readout_16(mv[slots], read), atol=1e-5)
    query_major, tracks_q = matching.weights_16(mk, qk, tracks, 7, 3.0, first_and_previous=True)
    assert torch.equal(tracks_q, full_tracks)
    assert torch.allclose(query_major, read.permute(0, 3, 1, 2).reshape(n, hw, 2 * hw), atol=1e-6)
    # the first call (T == 1): the graphs read slot 0 twice, each copy with half the weight
    first, _ = matching.attention_16(mk[:1], qk, tracks[:, :0], 7, 3.0, slots=[0])
    twice, _ = matching.weights_16(mk[:1], qk, tracks[:, :0], 7, 3.0, first_and_previous=True)
    once = first.permute(0, 3, 1, 2).reshape(n, hw, hw)
    assert torch.allclose(twice[:, :, :hw], once / 2, atol=1e-6) and torch.allclose(twice[:, :, hw:], once / 2, atol=1e-6)
