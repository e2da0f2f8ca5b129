"""HMMN as separate stages: encode query, encode memory, the three reads, decode, aggregate.

Each stage is a plain callable on tensors, so export can wrap them one by one. Frames and
masks given to the stages are already padded to multiples of 16 (see `video.padding_for`
and `video.pad`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from . import matching
from .config import PAPER, HMMNConfig
from .modules import Decoder, KeyValue, memory_encoder, query_encoder


class QueryFeatures(NamedTuple):
    """Per-frame query features, shared by all objects (batch 1)."""

    key16: torch.Tensor  # [1, Ck16, h, w]
    value16: torch.Tensor  # [1, Cv16, h, w]
    key8: torch.Tensor  # [1, Ck8, 2h, 2w]
    key4: torch.Tensor  # [1, Ck4, 4h, 4w]
    r3: torch.Tensor  # [1, C3, 2h, 2w] decoder skip
    r2: torch.Tensor  # [1, C2, 4h, 4w] decoder skip


class MemoryEntry(NamedTuple):
    """One frame memorised for N objects."""

    key16: torch.Tensor  # [N, Ck16, h, w]
    value16: torch.Tensor  # [N, Cv16, h, w]
    key8: torch.Tensor  # [N, Ck8, 2h, 2w]
    value8: torch.Tensor  # [N, Cv8, 2h, 2w]
    key4: torch.Tensor  # [N, Ck4, 4h, 4w]
    value4: torch.Tensor  # [N, Cv4, 4h, 4w]


def others_mask(objects: torch.Tensor, objects_sum: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Object masks [N, H, W] -> per object the clamped sum of the other objects [N, H, W].
    objects_sum [1, H, W]: the sum over all objects, when `objects` is only some of them."""
    if objects_sum is None:
        objects_sum = objects.sum(dim=0, keepdim=True)
    return (objects_sum - objects).clamp(0.0, 1.0)


def soft_aggregate(object_probs: torch.Tensor) -> torch.Tensor:
    """Per-object foreground probabilities [N, H, W] -> output logits L [N+1, H, W] (spec 6)."""
    background = torch.prod(1.0 - object_probs, dim=0, keepdim=True)
    e = torch.cat([background, object_probs], dim=0).clamp(1e-7, 1.0 - 1e-7)
    return torch.log(e / (1.0 - e))


class HMMN(nn.Module):
    """Hierarchical Memory Matching Network; `HMMN()` is the paper configuration.

    Submodule names and order equal the published checkpoint's (without `module.`).
    """

    def __init__(self, config: Optional[HMMNConfig] = None) -> None:
        super().__init__()
        cfg = config or PAPER
        self.config = cfg
        c2, c3, c4 = cfg.stage_channels
        m2, m3, m4 = cfg.memory_channels
        self.Encoder_M = memory_encoder(cfg)
        self.Encoder_Q = query_encoder(cfg)
        shared = cfg.trunk == "mobilenet_v2"  # memory keys are query keys (below)
        t, prior = cfg.key_temperature, cfg.mask_prior
        self.KV_M_r4 = KeyValue(m4, cfg.key_dim_16, cfg.value_dim_16, c4 if shared else None, t, prior)
        self.KV_Q_r4 = KeyValue(c4, cfg.key_dim_16, cfg.value_dim_16, None, t)
        self.KV_M_r3 = KeyValue(m3, cfg.key_dim_8, cfg.value_dim_8, c3 if shared else None, t, prior)
        self.KV_Q_r3 = KeyValue(c3, cfg.key_dim_8, None, None, t)
        self.KV_M_r2 = KeyValue(m2, cfg.key_dim_4, cfg.value_dim_4, c2 if shared else None, t, prior)
        self.KV_Q_r2 = KeyValue(c2, cfg.key_dim_4, None, None, t)
        if shared:
            # The mobile configuration keys memory and query frames alike: one trunk and one key
            # projection per scale (as STCN does), so that a frame's memory and query keys are equal
            # and matching compares ImageNet features of real things, which no mask can bend.
            self.Encoder_M.features = self.Encoder_Q.features
            for memory, query in ((self.KV_M_r4, self.KV_Q_r4), (self.KV_M_r3, self.KV_Q_r3),
                                  (self.KV_M_r2, self.KV_Q_r2)):
                memory.Key = query.Key
        self.Decoder = Decoder(cfg)
        # The memory reads' formulation (matching.Reads); hmmn-bench's baseline sets the public code's.
        self.reads = matching.READS
        self.eval()

    # -- encoders ---------------------------------------------------------------------------
    def encode_query(self, frame: torch.Tensor) -> QueryFeatures:
        """frame [1, 3, H, W] RGB in [0, 1], H and W multiples of 16."""
        r4, r3, r2 = self.Encoder_Q(frame)
        k16, v16 = self.KV_Q_r4(r4)
        k8, _ = self.KV_Q_r3(r3)
        k4, _ = self.KV_Q_r2(r2)
        return QueryFeatures(k16, v16, k8, k4, r3, r2)

    def encode_memory(self, frame: torch.Tensor, probs: torch.Tensor) -> MemoryEntry:
        """frame [1, 3, H, W]; probs [K, H, W] with channel 0 the background -> N objects' memory."""
        n = probs.shape[0] - 1
        mask = probs[1:, None]  # [N, 1, H, W]
        others = others_mask(probs[1:])[:, None]  # [N, 1, H, W]
        r4, r3, r2 = self.Encoder_M(frame, mask, others)  # [N, C, h, w] each
        k16, v16 = self.KV_M_r4(r4)
        k8, v8 = self.KV_M_r3(r3)
        k4, v4 = self.KV_M_r2(r2)
        return MemoryEntry(k16, v16, k8, v8, k4, v4)

    # -- reads ------------------------------------------------------------------------------
    def read_16(
        self, mem_keys: torch.Tensor, mem_values: torch.Tensor, query: QueryFeatures, tracks: torch.Tensor,
        ages: Optional[torch.Tensor] = None,
    ):
        """Slots [T, N, C, h, w]; tracks [N, T-1, hw] -> (m4 [N, 2Cv, h, w], W [N, S, hw, hw], tracks [N, T, hw]).
        ages [T]: temporal ranks of the slots (None: slots in temporal order). S = T, or with
        read_16_slots "guide" the first and the previous frame's (matching.guide_slots)."""
        cfg = self.config
        slots = matching.guide_slots(mem_keys.shape[0]) if cfg.read_16_slots == "guide" else None
        readout, weights, new_tracks = matching.read_16(
            mem_keys, mem_values, query.key16, tracks, cfg.flow_window, cfg.gaussian_sigma, ages,
            readout=self.reads.readout_16, slots=slots,
        )
        n = readout.shape[0]
        m4 = torch.cat([readout, query.value16.expand(n, -1, -1, -1)], dim=1)
        return m4, weights, new_tracks

    def read_fine(
        self,
        keys8: torch.Tensor,
        values8: torch.Tensor,
        keys4: torch.Tensor,
        values4: torch.Tensor,
        query: QueryFeatures,
        weights: torch.Tensor,
    ):
        """Top-k reads at 1/8 and 1/4; memory [S, N, C, H, W] with S = 2 (first, previous) or 1."""
        reads = self.reads
        cells = reads.select_cells(matching.guide_rows(weights), self.config.top_k)  # [N, hw, k]
        m3 = matching.read_fine(keys8, values8, query.key8, cells, 2, reads.read_fine_cells)
        m2 = matching.read_fine(keys4, values4, query.key4, cells[:, :, : self.config.top_k_fine], 4,
                                reads.read_fine_cells)
        return m3, m2

    # -- decoder ----------------------------------------------------------------------------
    def decode(self, m4: torch.Tensor, m3: torch.Tensor, m2: torch.Tensor, query: QueryFeatures) -> torch.Tensor:
        """Readouts of N objects -> foreground probability per object [N, H, W]."""
        n = m4.shape[0]
        logits = self.Decoder(
            m4, query.r3.expand(n, -1, -1, -1), query.r2.expand(n, -1, -1, -1), m3, m2
        )  # [N, 2, H, W]
        return torch.softmax(logits, dim=1)[:, 1]

    aggregate = staticmethod(soft_aggregate)

    def segment(
        self,
        frame: torch.Tensor,
        memory16: MemoryEntry,
        memory_fine: MemoryEntry,
        tracks: torch.Tensor,
        ages: Optional[torch.Tensor] = None,
    ):
        """One query frame against memory, all stages. memory16 fields hold [T, N, ...] slots
        (key16/value16 used); memory_fine [S, N, ...] (key8..value4 used); ages [T] the slots'
        temporal ranks when they are not in temporal order.
        Returns (L [N+1, H, W], new tracks [N, T, hw])."""
        query = self.encode_query(frame)
        m4, weights, new_tracks = self.read_16(memory16.key16, memory16.value16, query, tracks, ages)
        m3, m2 = self.read_fine(
            memory_fine.key8, memory_fine.value8, memory_fine.key4, memory_fine.value4, query, weights
        )
        return self.aggregate(self.decode(m4, m3, m2, query)), new_tracks
