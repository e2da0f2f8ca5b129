"""The four stage graphs: torch modules around hmmn_ref's stages, ready for ONNX export.

Inputs are padded to multiples of 16 by the caller. Differences from hmmn_ref's stage
boundaries, all exact up to rounding:
- the decoder's object-independent work runs once per frame in `encode_query`: the query
  half of `convFM` (convolution is linear: convFM(cat(mem, qv)) = conv_mem(mem) + conv_q(qv)
  + bias) and the refine stages' `convFS` of the query skips;
- with `memory_from_query` (the mobile configuration) the trunk runs once a frame: encode_query
  also gives the frame's share of the memory value projections (linear again: the trunk maps'
  part, with the bias), and encode_memory takes encode_query's outputs for the frame it
  memorises, adding each object's mask part; its keys are the query keys;
- fine memory (1/8 and 1/4) is emitted grouped by 1/16 cell, `[N, hw, r*r, C]`, the layout
  the top-k read gathers from, so no graph re-arranges the memory bank per frame;
- the 1/16 read runs query-major (`matching.weights_16`): one softmax of the affinity minus the
  Gaussian kernel's exponent over each query's T*hw memory positions, which equals the spec's
  softmax x kernel renormalised, with the top-k guide and the fine reads laid out for
  contiguous products (`select_cells_query_major`, `read_fine_cells_by_query`); with
  `read_16_slots` "guide" it covers the first and the previous frame only (slices from both
  ends of the bank: T stays symbolic), as hmmn_ref does with `matching.guide_slots`;
- the 1/16 read always takes two fine slots; on a video's first call (T == 1) the second
  slot is ignored (the guide rows of the previous frame are pushed below every first-frame
  row), which is what the reference does with one slot.
Precision: `fp16` runs convolutions and products in float16 and keeps the 1/16 affinity, its
softmax, the Gaussian kernel and renormalisation, the top-k scores and all softmaxes in
float32 (see hmmn_ref.matching); I/O dtypes are declared in `export.contracts`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from hmmn_ref import HMMN, matching
from hmmn_ref.model import others_mask, soft_aggregate
from hmmn_ref.modules import plane_softmax

from .contracts import Precision
from .layouts import fine_cells, tracks_from_bank, tracks_to_bank


def _working_copy(model: HMMN, precision: Precision) -> HMMN:
    """A frozen copy of `model` in the plan's compute dtype."""
    clone = copy.deepcopy(model).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone.half() if precision == "fp16" else clone.float()


def _split_conv(conv: nn.Conv2d, start: int, stop: int, bias: bool) -> nn.Conv2d:
    """A convolution over input channels [start, stop) of `conv`, with or without its bias."""
    part = nn.Conv2d(stop - start, conv.out_channels, conv.kernel_size, padding=conv.padding, bias=bias)
    part = part.to(conv.weight.dtype)
    with torch.no_grad():
        part.weight.copy_(conv.weight[:, start:stop])
        if bias:
            part.bias.copy_(conv.bias)
    return part.requires_grad_(False)


class StageGraph(nn.Module):
    """Common base: the model copy and the compute dtype."""

    def __init__(self, model: HMMN, precision: Precision) -> None:
        super().__init__()
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = _working_copy(model, precision)


class EncodeQueryGraph(StageGraph):
    """frame [1,3,H,W] -> query keys at 1/16, 1/8, 1/4 and the decoder's query-side features."""

    def __init__(self, model: HMMN, precision: Precision) -> None:
        super().__init__(model, precision)
        cfg = self.model.config
        cv = cfg.value_dim_16
        fm = self.model.Decoder.convFM
        self.fm_query = _split_conv(fm, cv, 2 * cv, bias=True)  # query half of convFM, with its bias
        # memory_from_query: the trunk's share of the memory value projections, with their bias
        self.frame_values = nn.ModuleList(
            _split_conv(kv.Value, 0, c, bias=True)
            for kv, c in zip(memory_projections(self.model), reversed(cfg.stage_channels))
        ) if cfg.memory_from_query else None

    def forward(self, frame: torch.Tensor):
        m = self.model
        r4, r3, r2 = m.Encoder_Q(frame.to(self.dtype))
        key16, value16 = m.KV_Q_r4(r4)
        key8, _ = m.KV_Q_r3(r3)
        key4, _ = m.KV_Q_r2(r2)
        fm_query = self.fm_query(value16)  # [1, D, h, w]
        fs8 = m.Decoder.RF3.convFS(r3)  # [1, D, H/8, W/8]
        fs4 = m.Decoder.RF2.convFS(r2)  # [1, D, H/4, W/4]
        outputs = (key16, key8, key4, fm_query, fs8, fs4)
        if self.frame_values is None:
            return outputs
        return outputs + tuple(conv(x) for conv, x in zip(self.frame_values, (r4, r3, r2)))  # [1, Cv', h_s, w_s]


def block_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H/r, W/r], the mean of each r x r block (avg_pool2d's values)."""
    # Sums along one axis at a time: OpenVINO ran a mean over two axes of a 6-D view with its
    # reference kernel (4.5 ms for [1, 2, 480, 640]).
    n, c, hh, ww = x.shape
    rows = x.reshape(n, c, hh, ww // r, r).sum(dim=4)  # [N, C, H, W/r]
    return rows.reshape(n, c, hh // r, r, ww // r).sum(dim=3) * (1.0 / (r * r))


def memory_projections(model: HMMN):
    """The memory's key/value projections at 1/16, 1/8, 1/4."""
    return model.KV_M_r4, model.KV_M_r3, model.KV_M_r2


class EncodeMemoryGraph(StageGraph):
    """frame [1,3,H,W] + masks [N,H,W] of the objects to memorise + objects_sum [1,H,W] of all
    the video's objects -> those objects' keys and values at three scales.

    objects_sum lets a call memorise a subset of the objects (for instance objects that
    appeared later, with their own memory) while "others" still counts every object.
    """

    def forward(self, frame: torch.Tensor, masks: torch.Tensor, objects_sum: torch.Tensor):
        m = self.model
        n = masks.shape[0]
        others = others_mask(masks, objects_sum)  # clamp(sum of the other objects, 0, 1)
        r4, r3, r2 = m.Encoder_M(
            frame.to(self.dtype), masks[:, None].to(self.dtype), others[:, None].to(self.dtype)
        )
        key16, value16 = m.KV_M_r4(r4)  # [N, C, h, w]
        key8, value8 = m.KV_M_r3(r3)
        key4, value4 = m.KV_M_r2(r2)
        h, w = key16.shape[-2:]
        return (key16, value16, fine_cells(key8, 2, h, w), fine_cells(value8, 2, h, w), fine_cells(key4, 4, h, w),
                fine_cells(value4, 4, h, w))


class EncodeMemoryFromQueryGraph(StageGraph):
    """cfg.memory_from_query: encode_query's outputs for the frame to memorise (its keys and
    its share of the memory values) + masks [N,H,W] + objects_sum [1,H,W] -> the objects' keys
    and values, as EncodeMemoryGraph gives them, with no trunk pass of its own.

    The memory keys are the query keys (unit keys of the same maps); each value projection is
    linear, value(cat(maps, mask, others)) = frame_value + conv_masks(cat(mask, others)), where
    frame_value (encode_query's, with the bias) is the same for every object.
    """

    def __init__(self, model: HMMN, precision: Precision) -> None:
        super().__init__(model, precision)
        cfg = self.model.config
        self.mask_convs = nn.ModuleList(
            _split_conv(kv.Value, c, c + 2, bias=False)
            for kv, c in zip(memory_projections(self.model), reversed(cfg.stage_channels))
        )

    def forward(self, query_key16, query_key8, query_key4, frame_value16, frame_value8, frame_value4,
                masks: torch.Tensor, objects_sum: torch.Tensor):
        n = masks.shape[0]
        others = others_mask(masks, objects_sum)
        both = torch.stack([masks, others], dim=1).to(self.dtype)  # [N, 2, H, W]
        # The mask and the others averaged per cell at 1/4, then 1/8 from 1/4 and 1/16 from 1/8
        # (a mean of means over equal blocks), by block_mean: OpenVINO reordered the whole
        # [N, 2, H, W] into 16-channel blocks for an AvgPool.
        pooled4 = block_mean(both, 4)
        pooled8 = block_mean(pooled4, 2)
        keys, values = [], []
        for key, frame_value, conv, pooled in zip(
            (query_key16, query_key8, query_key4), (frame_value16, frame_value8, frame_value4), self.mask_convs,
            (block_mean(pooled8, 2), pooled8, pooled4),
        ):
            value = frame_value + conv(pooled)
            if self.model.config.mask_prior:  # the mask itself as the last channel (KeyValue's mask_value)
                value = torch.cat([value, pooled[:, :1]], dim=1)
            keys.append(key.expand(n, -1, -1, -1))
            values.append(value)
        h, w = keys[0].shape[-2:]
        return (keys[0], values[0], fine_cells(keys[1], 2, h, w), fine_cells(values[1], 2, h, w),
                fine_cells(keys[2], 4, h, w), fine_cells(values[2], 4, h, w))


class MatchGraph(StageGraph):
    """Memory bank + query keys + tracking maps -> readouts at 1/16, 1/8, 1/4 and new maps.

    mem_key16/mem_value16 [T, N, C, h, w] slot-major: slot 0 the first frame, slot T-1 the
    previous frame; slot_age [T] int32 the temporal rank of each slot (a capped bank replaces
    its oldest slot in place, so the other slots need not be in temporal order);
    tracks [T, N, h, w] int32, rows 0..T-2 the maps of the older slots (row T-1 is ignored);
    fine memory [2, N, h, w, r*r, C]: slot 0 the first frame, slot 1 the previous frame.
    """

    def forward(
        self,
        query_key16: torch.Tensor,
        query_key8: torch.Tensor,
        query_key4: torch.Tensor,
        mem_key16: torch.Tensor,
        mem_value16: torch.Tensor,
        tracks: torch.Tensor,
        slot_age: torch.Tensor,
        mem_key8: torch.Tensor,
        mem_value8: torch.Tensor,
        mem_key4: torch.Tensor,
        mem_value4: torch.Tensor,
    ):
        cfg = self.model.config
        t, n, _, h, w = mem_key16.shape
        older = tracks_from_bank(tracks[: t - 1])  # [N, T-1, hw]
        guide_only = cfg.read_16_slots == "guide"
        weights, new_tracks = matching.weights_16(
            mem_key16, query_key16, older, cfg.flow_window, cfg.gaussian_sigma, slot_age, first_and_previous=guide_only
        )  # W [N, hw, S*hw], query-major; S = T, or 2 (the first and the previous frame) with guide_only
        read_values = matching.end_slots(mem_value16) if guide_only else mem_value16
        readout16 = matching.readout_query_major_16(read_values, weights)  # [N, Cv, h, w]
        # Guide: first frame, then previous frame, per query cell; on the first call (T == 1) the
        # previous-frame entries drop below every first-frame entry (W >= 0) and are never picked.
        hw = h * w
        s = 2 if guide_only else t
        first_call = (torch.arange(t, device=weights.device).max() == 0).to(weights.dtype)
        guide = torch.cat([weights[:, :, :hw], weights[:, :, (s - 1) * hw :] - 2.0 * first_call], dim=2)  # [N, hw, 2hw]
        cells = matching.select_cells_query_major(guide, cfg.top_k)  # [N, hw, k]

        def flat(x):  # [2, N, h, w, r*r, C] -> [2, N, hw, r*r, C], a reshape, not a copy
            return x.reshape(2, n, h * w, x.shape[-2], x.shape[-1])

        read8 = matching.read_fine_cells_by_query(flat(mem_key8), flat(mem_value8), matching.to_cells(query_key8[0], 2), cells)
        read4 = matching.read_fine_cells_by_query(
            flat(mem_key4), flat(mem_value4), matching.to_cells(query_key4[0], 4), cells[:, :, : cfg.top_k_fine]
        )
        return (
            readout16,
            matching.from_cells(read8, h, w, 2),  # [N, Cv8, H/8, W/8]
            matching.from_cells(read4, h, w, 4),  # [N, Cv4, H/4, W/4]
            tracks_to_bank(new_tracks, h, w),  # [T, N, h, w]
        )


class DecodeGraph(StageGraph):
    """Readouts of N objects + query-side features -> logits L [K,H,W], probabilities [K,H,W]
    and their sum over the objects [1,H,W].

    `pad` int32 [4] = (top, bottom, left, right): the padding of this frame; the returned
    probabilities are zero there, ready to be memorised as they are.
    """

    def __init__(self, model: HMMN, precision: Precision) -> None:
        super().__init__(model, precision)
        cv = self.model.config.value_dim_16
        self.fm_memory = _split_conv(self.model.Decoder.convFM, 0, cv, bias=False)  # memory half of convFM

    def forward(
        self,
        readout16: torch.Tensor,
        readout8: torch.Tensor,
        readout4: torch.Tensor,
        fm_query: torch.Tensor,
        fs8: torch.Tensor,
        fs4: torch.Tensor,
        pad: torch.Tensor,
    ):
        decoder = self.model.Decoder
        fm = self.fm_memory(readout16) + fm_query
        object_probs = decoder.foreground(fm, fs8, fs4, readout8, readout4)  # [N, H, W]
        logits = soft_aggregate(object_probs)  # [K, H, W]
        height, width = logits.shape[-2:]
        rows = torch.arange(height, device=pad.device)
        cols = torch.arange(width, device=pad.device)
        pad = pad.to(torch.int64)
        inside_rows = (rows >= pad[0]) & (rows < height - pad[1])
        inside_cols = (cols >= pad[2]) & (cols < width - pad[3])
        inside = (inside_rows[:, None] & inside_cols[None, :]).to(logits.dtype)
        probs = plane_softmax(logits, dim=0) * inside
        return logits, probs, probs[1:].sum(dim=0, keepdim=True)


GRAPH_CLASSES = {
    "encode_query": EncodeQueryGraph,
    "encode_memory": EncodeMemoryGraph,
    "match": MatchGraph,
    "decode": DecodeGraph,
}


def build_graph(name: str, model: HMMN, precision: Precision) -> StageGraph:
    if name == "encode_memory" and model.config.memory_from_query:
        return EncodeMemoryFromQueryGraph(model, precision).eval()
    return GRAPH_CLASSES[name](model, precision).eval()
