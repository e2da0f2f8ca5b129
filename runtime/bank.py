"""The memory bank of one object group: preallocated slots written in place, and its policy.

A group is the objects that entered the video on the same frame (all of them, unless objects
are added later): they share their first frame, their permanent frames and their slot
bookkeeping. Policy (the public protocol; its rules live in hmmn_ref.protocol): the group's
first frame and every mem_every-th frame after it stay in the 1/16 memory, the previous frame
is always read; 1/8 and 1/4 read the first and the previous frame. With `capacity` 1/16 slots, once the bank is full the
oldest permanent slot after the first frame is overwritten in place (one slot copy), so
memory and work per frame stay flat on videos of any length.
"""

from __future__ import annotations

from typing import Dict, List, Mapping

import torch

from hmmn_ref import protocol

from ..core.contracts import GraphSpec
from .backends import TORCH_DTYPES


class GroupBank:
    """Buffers and slot bookkeeping of one group of N objects (shapes for capacity C). Which
    objects they are is the video's ObjectTable's business (runtime/objects.py)."""

    def __init__(
        self, objects: int, start: int, capacity: int, mem_every: int,
        specs: Mapping[str, GraphSpec], dims: Mapping[str, int], device: torch.device,
    ) -> None:
        protocol.check_settings(capacity=capacity, mem_every=mem_every)
        self.objects = objects  # N
        self.start = start  # frame index of the group's first frame
        self.capacity = capacity
        self.mem_every = mem_every
        n = objects
        shape_dims = dict(dims, N=n, K=n + 1)
        match = specs["match"]

        def alloc(spec_name: str, leading: int) -> torch.Tensor:
            spec = match.input(spec_name)
            shape = (leading,) + spec.shape(shape_dims)[1:]
            return torch.zeros(shape, dtype=TORCH_DTYPES[spec.dtype], device=device)

        self.key16 = alloc("mem_key16", capacity)  # [C, N, Ck, h, w]
        self.value16 = alloc("mem_value16", capacity)  # [C, N, Cv, h, w]
        self.tracks = alloc("tracks", capacity)  # [C, N, h, w] int32: maps of the permanent slots
        self.tracks_out = alloc("tracks", capacity)  # [C, N, h, w] int32: match writes here (never aliased)
        self.slot_age = torch.zeros(capacity, dtype=torch.int32, device=device)  # [C]
        # Fine memory, slot 0 the group's first frame, slot 1 the previous frame.
        self.fine = {name: alloc("mem_" + name, 2) for name in ("key8", "value8", "key4", "value4")}
        self.slot_frames: List[int] = []  # frame index held by each permanent slot 0..P-1
        self._ages_written: List[int] = []  # what slot_age holds now (copied only when it changes)

    # -- where this step writes and what it reads --------------------------------------------
    @property
    def permanent(self) -> int:
        return len(self.slot_frames)

    @property
    def slots_read(self) -> int:
        """T: the permanent slots plus the previous frame's slot."""
        return self.permanent + 1

    def memory_targets(self) -> Dict[str, torch.Tensor]:
        """encode_memory's outputs for the previous frame, as views into the bank (no copies)."""
        slot16 = self.permanent  # right after the permanent slots
        fine = 0 if self.permanent == 0 else 1  # the group's first call fills fine slot 0
        targets = {"key16": self.key16[slot16], "value16": self.value16[slot16]}
        targets.update({name: buf[fine] for name, buf in self.fine.items()})
        return targets

    def match_inputs(self, previous_frame: int) -> Dict[str, torch.Tensor]:
        t = self.slots_read
        ages = protocol.slot_ages(self.slot_frames + [previous_frame])
        if ages != self._ages_written:  # changes only when a slot is kept or replaced
            self.slot_age[:t].copy_(torch.tensor(ages, dtype=torch.int32))
            self._ages_written = ages
        inputs = {"mem_key16": self.key16[:t], "mem_value16": self.value16[:t], "tracks": self.tracks[:t],
                  "slot_age": self.slot_age[:t]}
        inputs.update({"mem_" + name: buf for name, buf in self.fine.items()})
        return inputs

    def match_outputs(self) -> Dict[str, torch.Tensor]:
        return {"tracks_out": self.tracks_out[: self.slots_read]}

    # -- after the frame ---------------------------------------------------------------------
    def update(self, previous_frame: int) -> None:
        """Keep or drop the previous frame's slot; carry the tracking maps forward."""
        t = self.slots_read
        slot = None
        if protocol.is_kept(previous_frame, self.start, self.mem_every):
            slot = protocol.place_kept(self.slot_frames, previous_frame, self.capacity)
        if slot is not None and slot != t - 1:  # full: the previous frame takes the oldest's slot
            self.key16[slot].copy_(self.key16[t - 1])
            self.value16[slot].copy_(self.value16[t - 1])
            self.tracks_out[slot].copy_(self.tracks_out[t - 1])
        # (slot t-1: kept where it was written. None: capacity 2, the previous frame only read.)
        # tracks_out rows 0..P-1 are the permanent slots' maps now; swap instead of copying.
        self.tracks, self.tracks_out = self.tracks_out, self.tracks

    def select_objects(self, keep: List[int]) -> None:
        """Keep only objects `keep` (indices among the group's N): one copy, on removal only."""
        index = torch.tensor(keep, dtype=torch.long, device=self.key16.device)
        self.objects = len(keep)
        if not keep:
            return
        for attr in ("key16", "value16", "tracks", "tracks_out"):
            setattr(self, attr, getattr(self, attr).index_select(1, index).contiguous())
        self.fine = {name: buf.index_select(1, index).contiguous() for name, buf in self.fine.items()}

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.buffers())

    def buffers(self) -> List[torch.Tensor]:
        return [self.key16, self.value16, self.tracks, self.tracks_out, self.slot_age, *self.fine.values()]
