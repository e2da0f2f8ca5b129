"""The parameter-free memory reads of HMMN (spec sections 4 and 5).

Memory tensors are slot-major: `[S, N, C, h, w]` for S slots and N objects, the layout a
preallocated bank hands to an engine without copies. The tracking maps of the 1/16 read are
explicit inputs and outputs; nothing here keeps state between calls, loops over pixels or
builds a tensor whose shape depends on data.

Three reads have another formulation with the same values (`Reads`): the model takes the set it
uses as an argument (HMMN.reads), so that hmmn-bench's baseline can run the public code's
(bench/public_matching.py) without touching this module.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch


def grid_yx(h: int, w: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row-major grid coordinates: y [h*w] and x [h*w] (int64) of positions 0..h*w-1.
    (Built by broadcasting rather than // and %, which do not export with symbolic sizes.)"""
    y = torch.arange(h, device=device)[:, None].expand(h, w).reshape(-1)
    x = torch.arange(w, device=device)[None, :].expand(h, w).reshape(-1)
    return y, x


def window_candidates(h: int, w: int, window: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Each position's window x window neighbourhood on the h x w grid, in row-major order
    (smallest index first): (candidates [hw, window^2] int64, 0 where outside the grid;
    inside [hw, window^2] bool)."""
    half = window // 2
    offsets = torch.arange(-half, half + 1, device=device)
    rows = torch.arange(h, device=device)[:, None] + offsets[None, :]  # [h, window]
    cols = torch.arange(w, device=device)[:, None] + offsets[None, :]  # [w, window]
    rows_inside = (rows >= 0) & (rows < h)
    cols_inside = (cols >= 0) & (cols < w)
    # Rows and columns outside the grid are clamped to it (any position there would do: `inside`
    # masks them), before they are combined, by Max and Min (int64 Clip is not TensorRT's). (A
    # Where over the combined int64 [h, w, window, window] came out wrong in OpenVINO's CPU
    # plugin limited to AVX2.)
    zeros_r, zeros_c = torch.zeros_like(rows), torch.zeros_like(cols)
    rows = torch.minimum(torch.maximum(rows, zeros_r), zeros_r + (h - 1))
    cols = torch.minimum(torch.maximum(cols, zeros_c), zeros_c + (w - 1))
    candidates = rows[:, None, :, None] * w + cols[None, :, None, :]  # [h, w, window, window]
    inside = rows_inside[:, None, :, None] & cols_inside[None, :, None, :]
    return candidates.reshape(h * w, window * window), inside.reshape(h * w, window * window)


def local_flow(affinity_last: torch.Tensor, h: int, w: int, window: int) -> torch.Tensor:
    """Argmax of each memory position over the query positions of its window (the first of
    equal maxima: the smallest query index).

    affinity_last: [N, hw_mem, hw_query] affinity of the previous-frame slot.
    Returns c: [N, hw] int64, for memory position i the query position it moved to.
    """
    candidates, inside = window_candidates(h, w, window, affinity_last.device)
    hw = h * w
    flat = torch.arange(hw, device=affinity_last.device)[:, None] * hw + candidates  # (i, q) at i*hw + q
    return _window_argmax(affinity_last.reshape(affinity_last.shape[0], hw * hw), flat, candidates, inside)


def local_flow_query_major(affinity_last: torch.Tensor, h: int, w: int, window: int) -> torch.Tensor:
    """local_flow of the affinity laid out [N, hw_query, hw_mem] (weights_16's): [N, hw] int64."""
    candidates, inside = window_candidates(h, w, window, affinity_last.device)
    hw = h * w
    flat = candidates * hw + torch.arange(hw, device=affinity_last.device)[:, None]  # (q, i) at q*hw + i
    return _window_argmax(affinity_last.reshape(affinity_last.shape[0], hw * hw), flat, candidates, inside)


def _window_argmax(flat_affinity: torch.Tensor, flat: torch.Tensor, candidates: torch.Tensor,
                   inside: torch.Tensor) -> torch.Tensor:
    """flat_affinity [N, hw*hw]; flat [hw, k] where each memory position's k window entries lie in
    it; candidates and inside [hw, k] (window_candidates) -> [N, hw] the query position of the
    largest entry inside the window, the first of equal ones."""
    # One rule for both layouts: the window's entries taken by plain Gathers from the flat
    # affinity, then an argmax along the last axis (ties to the first, as torch, ONNX Runtime
    # and OpenVINO all break them there).
    n = flat_affinity.shape[0]
    hw, k = candidates.shape
    near = flat_affinity.index_select(1, flat.reshape(-1)).reshape(n, hw, k)
    near = torch.where(inside, near, torch.full_like(near, float("-inf")))
    best = near.argmax(dim=2)  # [N, hw], into the window
    rows = torch.arange(hw, device=flat.device)[None, :] * k + best  # into candidates seen flat
    return candidates.reshape(-1).index_select(0, rows.reshape(-1)).reshape(n, hw)


def compose_tracks(flow: torch.Tensor, tracks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Carry the older slots' maps one frame forward and find every slot's kernel centre.

    flow:   [N, hw] int64, the new local flow c.
    tracks: [N, T-1, hw] int64, tau_s of the older slots (T-1 may be 0).
    Returns (new_tracks [N, T, hw]: c(tau_s) then c; centres [N, T, hw]: c(c(tau_s)) then c).
    """
    n, older, hw = tracks.shape
    moved = torch.gather(flow, 1, tracks.reshape(n, older * hw)).reshape(n, older, hw)
    centres_older = torch.gather(flow, 1, moved.reshape(n, older * hw)).reshape(n, older, hw)
    new_tracks = torch.cat([moved, flow[:, None]], dim=1)
    centres = torch.cat([centres_older, flow[:, None]], dim=1)
    return new_tracks, centres


def slot_ages(t: int, device: torch.device) -> torch.Tensor:
    """Ages of T slots in temporal order: T-1, ..., 1, 0 (the previous frame is 0)."""
    return torch.arange(t - 1, -1, -1, device=device)


def slot_sigmas(t: int, sigma: float, ages: Optional[torch.Tensor], device: torch.device) -> torch.Tensor:
    """The Gaussian width of each of T slots [T] float32: a slot of age d (ages [T], default
    T-1-s, see gaussian_kernel) has sigma * (0.5 * d + 1)."""
    age = (slot_ages(t, device) if ages is None else ages).to(torch.float32)
    return sigma * (0.5 * age + 1.0)


def gaussian_kernel(
    centres: torch.Tensor, h: int, w: int, sigma: float, ages: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Per-slot Gaussian around each memory position's centre, over the query grid.

    centres: [N, T, hw] int64. ages [T]: how many of the T slots are newer than each slot
    (default T-1-s: slots in temporal order). A slot of age d has sigma * (0.5 * d + 1): the
    previous frame (d = 0) gets sigma, older slots wider kernels. Returns G [N, T, hw, hw].
    """
    t = centres.shape[1]
    y, x = grid_yx(h, w, centres.device)
    slot_sigma = slot_sigmas(t, sigma, ages, centres.device)
    two_var = (2.0 * slot_sigma * slot_sigma)[None, :, None, None]
    cy = y[centres].to(torch.float32)[..., None]  # row of each centre
    cx = x[centres].to(torch.float32)[..., None]
    dist2 = (x.to(torch.float32) - cx) ** 2 + (y.to(torch.float32) - cy) ** 2
    return torch.exp(-dist2 / two_var)


def end_slots(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The first and the last slot of x along `dim` (the first and the previous frame), by slices
    from both ends, so that T stays a symbolic size in the exported graphs; slot 0 twice when T == 1."""
    return torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, x.shape[dim] - 1, 1)], dim=dim)


def weights_16(
    mem_keys: torch.Tensor,
    query_key: torch.Tensor,
    tracks: torch.Tensor,
    window: int,
    sigma: float,
    ages: Optional[torch.Tensor] = None,
    first_and_previous: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """attention_16's weights, query-major: the exported match graph's formulation (spec
    section 4, steps 1-5; the same values to ~1e-6). hmmn_ref's own loop keeps attention_16,
    the spec's steps as written, whose rounding the golden runs follow (golden_multi meets
    exact ties in its top-k guide, which tip with any change of rounding).

    mem_keys [T, N, C, h, w]: slot 0 the first frame, the last one the previous frame, the
    others in temporal order unless `ages` [T] says otherwise (see gaussian_kernel).
    query_key [1, C, h, w]. tracks [N, T-1, hw] int64. Returns (W [N, hw_query, T*hw_mem],
    memory positions slot-major, each query's row summing to 1; new tracks [N, T, hw]). Always
    float32 (the sensitive part of the FP16 plan).

    first_and_previous: W over two slots only, the first and the previous frame (M = 2*hw; the
    graphs' form of attention_16's `slots=guide_slots(T)`: when T == 1 both are slot 0, and the
    caller's guide drops the second); every slot's track is still carried forward.

    The spec's softmax over memory times the Gaussian kernel, renormalised, is one softmax of
    s = q.k/sqrt(C) - |q - centre|^2 / (2 sigma_slot^2): the first softmax's sum cancels in the
    renormalisation. The kernel's exponent is separable: [N, h, M] and [N, w, M] terms broadcast
    over the query grid, no [N, T, hw, hw] distance tensor; the softmax runs on the last axis.
    """
    t, n, c, h, w = mem_keys.shape
    hw = h * w
    age = slot_ages(t, mem_keys.device) if ages is None else ages
    if first_and_previous:
        mem_keys, age = end_slots(mem_keys), end_slots(age)
    s = mem_keys.shape[0]
    keys = mem_keys.reshape(s, n, c, hw).float().permute(1, 2, 0, 3).reshape(n, c, s * hw)  # [N, C, M]
    query = query_key.reshape(c, hw).float().transpose(0, 1)  # [hw_q, C]
    affinity = torch.matmul(query, keys) / math.sqrt(c)  # [N, hw_q, M]
    flow = local_flow_query_major(affinity[:, :, (s - 1) * hw :], h, w, window)
    new_tracks, centres = compose_tracks(flow, tracks)
    if first_and_previous:
        centres = end_slots(centres, dim=1)
    y, x = grid_yx(h, w, centres.device)
    slot_sigma = slot_sigmas(s, sigma, age, centres.device)
    inv_two_var = (0.5 / (slot_sigma * slot_sigma))[:, None].expand(s, hw).reshape(1, 1, s * hw)  # [1, 1, M]
    flat_centres = centres.reshape(n, 1, s * hw)
    rows = torch.arange(h, device=centres.device).to(torch.float32)[None, :, None]  # [1, h, 1]
    cols = torch.arange(w, device=centres.device).to(torch.float32)[None, :, None]  # [1, w, 1]
    dy2 = (rows - y[flat_centres].to(torch.float32)) ** 2 * inv_two_var  # [N, h, M]
    dx2 = (cols - x[flat_centres].to(torch.float32)) ** 2 * inv_two_var  # [N, w, M]
    scores = affinity.reshape(n, h, w, s * hw) - dy2[:, :, None, :] - dx2[:, None, :, :]
    return torch.softmax(scores.reshape(n, hw, s * hw), dim=2), new_tracks


def guide_slots(t: int) -> List[int]:
    """The slots of T that the top-k guide reads: the first and the previous frame (one slot when
    T == 1). A model whose decoder does not use the 1/16 readout (`HMMNConfig.read_16_slots`
    "guide") reads only these at 1/16, so that its match does not grow with the bank."""
    return [0] if t == 1 else [0, t - 1]


def attention_16(
    mem_keys: torch.Tensor,
    query_key: torch.Tensor,
    tracks: torch.Tensor,
    window: int,
    sigma: float,
    ages: Optional[torch.Tensor] = None,
    slots: Optional[Sequence[int]] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Kernel-guided attention at 1/16 with temporal smoothing (spec section 4, steps 1-5).

    mem_keys [T, N, C, h, w]: slot 0 the first frame, the last one the previous frame, the
    others in temporal order unless `ages` [T] says otherwise (see gaussian_kernel).
    query_key [1, C, h, w]. tracks [N, T-1, hw] int64. Always computed in float32 (the
    sensitive part of the FP16 plan). Returns (W [N, T, hw_mem, hw_query], tracks [N, T, hw]).
    slots: attend over these S slots only (guide_slots: ascending, the last one T-1): W is then
    [N, S, hw, hw]; every slot's track is still carried forward.
    """
    t, n, c, h, w = mem_keys.shape
    hw = h * w
    read = mem_keys if slots is None else mem_keys[list(slots)]  # every slot: no copy of the bank
    slots = list(range(t)) if slots is None else list(slots)
    if slots[-1] != t - 1:
        raise ValueError(f"the slots read at 1/16 must end with the previous frame's ({t - 1}), got {slots}")
    s = len(slots)
    keys = read.reshape(s, n, c, hw).float()
    affinity = torch.einsum("tnci,cq->ntiq", keys, query_key.reshape(c, hw).float()) / math.sqrt(c)
    flow = local_flow(affinity[:, s - 1], h, w, window)
    new_tracks, centres = compose_tracks(flow, tracks)
    age = slot_ages(t, mem_keys.device) if ages is None else ages
    kernel = gaussian_kernel(centres[:, slots], h, w, sigma, age[slots])
    weights = torch.softmax(affinity.reshape(n, s * hw, hw), dim=1) * kernel.reshape(n, s * hw, hw)
    weights = weights / weights.sum(dim=1, keepdim=True)
    return weights.reshape(n, s, hw, hw), new_tracks


def readout_16(mem_values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mem_values [T, N, Cv, h, w], W [N, T, hw, hw] -> readout [N, Cv, h, w] (spec 4, step 6),
    in the values' precision."""
    t, n, cv, h, w = mem_values.shape
    hw = h * w
    # One matrix product per object over the T*hw memory positions: [N, Cv, T*hw] x [N, T*hw, hw].
    # (The einsum "tnci,ntiq->ncq" it replaces ran as a MatMul per slot plus a sum, at a few
    # GFLOP/s in ONNX Runtime and OpenVINO; the values' transpose is the small operand.)
    values = mem_values.reshape(t, n, cv, hw).permute(1, 2, 0, 3).reshape(n, cv, t * hw)
    return torch.matmul(values, weights.to(values.dtype).reshape(n, t * hw, hw)).reshape(n, cv, h, w)


def readout_query_major_16(mem_values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """readout_16 from weights_16's W [N, hw_q, T*hw]: [N, Cv, h, w], in the values' precision."""
    t, n, cv, h, w = mem_values.shape
    values = mem_values.reshape(t, n, cv, h * w).permute(1, 2, 0, 3).reshape(n, cv, t * h * w)  # [N, Cv, T*hw]
    # W is the left operand as it lies and the small values are the transposed right one (a
    # transposed W cost twice the product in ONNX Runtime); the small result is transposed.
    read = torch.matmul(weights.to(values.dtype), values.transpose(1, 2))  # [N, hw_q, Cv]
    return read.transpose(1, 2).reshape(n, cv, h, w)


def read_16(
    mem_keys: torch.Tensor,
    mem_values: torch.Tensor,
    query_key: torch.Tensor,
    tracks: torch.Tensor,
    window: int,
    sigma: float,
    ages: Optional[torch.Tensor] = None,
    readout: Callable = readout_16,
    slots: Optional[Sequence[int]] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole 1/16 read: (readout [N, Cv, h, w], W [N, T, hw, hw], new tracks [N, T, hw]).
    ages [T]: the slots' temporal ranks when they are not in temporal order (a capped bank);
    readout: its formulation (Reads.readout_16); slots: read these only (attention_16)."""
    weights, new_tracks = attention_16(mem_keys, query_key, tracks, window, sigma, ages, slots)
    return readout(mem_values if slots is None else mem_values[list(slots)], weights), weights, new_tracks


def guide_rows(weights: torch.Tensor) -> torch.Tensor:
    """Rows of W for the first and the previous frame: [N, S*hw, hw], S = 2 (1 when T == 1)."""
    n, t, hw, _ = weights.shape
    if t == 1:
        return weights.reshape(n, hw, hw)
    return torch.cat([weights[:, 0], weights[:, t - 1]], dim=1)


def select_cells(guide: torch.Tensor, k: int) -> torch.Tensor:
    """For each query cell, the k memory cells of largest guide weight, best first: [N, hw, k]."""
    # Top-k along the memory axis in place, then the small [N, k, hw] result transposed (not the
    # [N, S*hw, hw] guide: a transpose of the whole guide cost as much as the top-k itself).
    return torch.topk(guide, k, dim=1, sorted=True).indices.transpose(1, 2)


def select_cells_query_major(guide: torch.Tensor, k: int) -> torch.Tensor:
    """select_cells on a query-major guide [N, hw, S*hw] (weights_16's layout): [N, hw, k]."""
    return torch.topk(guide, k, dim=2, sorted=True).indices


def to_cells(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """[..., C, h*r, w*r] -> [..., h*w, r*r, C]: each 1/16 cell's r x r pixels, channels last."""
    *lead, c, hh, ww = x.shape
    h, w = hh // ratio, ww // ratio
    x = x.reshape(*lead, c, h, ratio, w, ratio)
    nd = len(lead)
    perm = list(range(nd)) + [nd + 1, nd + 3, nd + 2, nd + 4, nd]
    return x.permute(*perm).reshape(*lead, h * w, ratio * ratio, c)


def from_cells(x: torch.Tensor, h: int, w: int, ratio: int) -> torch.Tensor:
    """Inverse of `to_cells` for a leading batch: [N, h*w, r*r, C] -> [N, C, h*r, w*r]."""
    n, _, _, c = x.shape
    x = x.reshape(n, h, w, ratio, ratio, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, c, h * ratio, w * ratio)


def bank_rows(cells: torch.Tensor, s: int, n: int, hw: int) -> torch.Tensor:
    """cells [N, hw, k] (slot-major indices s*hw + position) -> rows [N, hw, k] of the bank seen
    as [S*N*hw, r*r*C]: row (slot*N + n)*hw + position."""
    # The index is split into (slot, position) by lookup tables (no // or % on symbolic sizes),
    # so that rows are taken by one Gather, not a GatherND of (slot, object, position) triples.
    slot_of = torch.arange(s, device=cells.device)[:, None].expand(s, hw).reshape(-1)
    position_of = torch.arange(hw, device=cells.device)[None, :].expand(s, hw).reshape(-1)
    objects = torch.arange(n, device=cells.device)[:, None, None]  # [N, 1, 1]
    return (slot_of[cells] * n + objects) * hw + position_of[cells]


def read_fine_cells(
    key_cells: torch.Tensor, value_cells: torch.Tensor, query_cells: torch.Tensor, cells: torch.Tensor
) -> torch.Tensor:
    """Top-k guided read on memory already grouped by cell (spec section 5).

    key_cells [S, N, hw, r*r, C], value_cells [S, N, hw, r*r, Cv]; query_cells [hw, r*r, C];
    cells [N, hw, k] int64 indices into the S*hw memory cells (slot-major: s*hw + cell).
    Each query pixel attends over the k*r*r pixels of its cell's selected memory cells,
    gathered by index (no nonzero, no data-dependent shapes). Returns [N, hw, r*r, Cv].
    The softmax runs in float32; the products in the inputs' precision.
    """
    s, n, hw, rr, c = key_cells.shape
    k = cells.shape[2]
    # Keys are taken query-cell-major ([hw, N*k*r*r, C]) so that the affinity is one batched
    # product over the query cells with no operand broadcast over the objects (einsum's lowering
    # broadcast and transposed the gathered keys and values in ONNX Runtime and OpenVINO).
    rows = bank_rows(cells, s, n, hw)  # [N, hw, k]
    m = k * rr
    picked_keys = key_cells.reshape(s * n * hw, rr * c).index_select(0, rows.transpose(0, 1).reshape(-1))
    picked_values = value_cells.reshape(s * n * hw, -1).index_select(0, rows.reshape(-1)).reshape(n, hw, m, -1)
    queries = query_cells.transpose(1, 2)  # [hw, C, r*r]
    affinity = torch.matmul(picked_keys.reshape(hw, n * m, c), queries) / math.sqrt(c)  # [hw, N*m, r*r]
    attention = torch.softmax(affinity.float().reshape(hw, n, m, rr), dim=2).to(picked_values.dtype)
    return torch.matmul(attention.permute(1, 0, 3, 2), picked_values)  # [N, hw, r*r, Cv]


def read_fine_cells_by_query(
    key_cells: torch.Tensor, value_cells: torch.Tensor, query_cells: torch.Tensor, cells: torch.Tensor
) -> torch.Tensor:
    """read_fine_cells with both products batched over (query cell, object) and the softmax on
    the last axis: the exported match graph's formulation (same arguments and result; the same
    values to ~2e-6). hmmn_ref's own loop keeps read_fine_cells: the golden run of golden_multi
    meets exact ties in its top-k guide, which tip one way or the other with any change of
    rounding, and read_fine_cells's rounding is the one the goldens follow.
    """
    s, n, hw, rr, c = key_cells.shape
    k = cells.shape[2]
    # Keys and values are taken query-cell-major ([hw, N, k*r*r, C]) so that both products are
    # batched over (query cell, object) with the softmax on the last axis and no transposition
    # of the [hw, N, r*r, k*r*r] attention (a Transpose of it cost as much as the products in
    # ONNX Runtime); only the small result is transposed.
    rows = bank_rows(cells, s, n, hw)  # [N, hw, k]
    index = rows.transpose(0, 1).reshape(-1)  # [hw * N * k]
    m = k * rr
    picked_keys = key_cells.reshape(s * n * hw, rr * c).index_select(0, index).reshape(hw, n, m, c)
    picked_values = value_cells.reshape(s * n * hw, -1).index_select(0, index).reshape(hw, n, m, -1)
    affinity = torch.matmul(query_cells[:, None], picked_keys.transpose(2, 3)) / math.sqrt(c)  # [hw, N, r*r, m]
    attention = torch.softmax(affinity.float(), dim=3).to(picked_values.dtype)
    return torch.matmul(attention, picked_values).transpose(0, 1)  # [N, hw, r*r, Cv]


def read_fine(
    mem_keys: torch.Tensor,
    mem_values: torch.Tensor,
    query_key: torch.Tensor,
    cells: torch.Tensor,
    ratio: int,
    read_cells: Callable = read_fine_cells,
) -> torch.Tensor:
    """Top-k guided read at 1/8 (ratio 2) or 1/4 (ratio 4) on pixel-layout tensors.

    mem_keys [S, N, C, H, W], mem_values [S, N, Cv, H, W] with H = h * ratio; query_key
    [1, C, H, W]; cells [N, hw, k]; read_cells: its formulation (Reads.read_fine_cells).
    Returns [N, Cv, H, W].
    """
    h, w = mem_keys.shape[-2] // ratio, mem_keys.shape[-1] // ratio
    readout = read_cells(
        to_cells(mem_keys, ratio), to_cells(mem_values, ratio), to_cells(query_key[0], ratio), cells
    )
    return from_cells(readout, h, w, ratio)


@dataclasses.dataclass(frozen=True)
class Reads:
    """The formulation of the three reads that have another with the same values (to ~6e-7)."""

    readout_16: Callable = readout_16
    select_cells: Callable = select_cells
    read_fine_cells: Callable = read_fine_cells


READS = Reads()  # this module's: what the exported graphs compute
