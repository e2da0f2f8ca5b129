"""Session (fixed at construction: graphs, backend, settings, timer) and VideoState (one per
video: buffers, bank).

    session = Session.open("hmmn_480p", backend="onnxruntime")
    state = session.start(first_frame, first_mask)        # uint8 HxWx3 RGB, integer HxW labels
    for frame in frames[1:]:
        result = session.step(state, frame)               # result.labels: HxW, the mask's ids

Per frame t (the protocol, docs/protocol.md "One frame"): for each object group, `encode_memory` of
frame t-1 (or, memory_from_query, of encode_query's outputs for it, still in the state) with the
probabilities of t-1 into the group's bank; `encode_query` of frame t;
for each group, `match` into its objects' rows of the shared readouts; `decode` of all
objects at once (soft aggregation spans every object); then each group keeps or drops the
previous frame's slot. All buffers are allocated by `start` (and when objects change).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import hmmn_ref
from hmmn_ref import protocol
from hmmn_ref.video import cells_16, crop, padding_for

from ..core import manifest as manifest_io
from ..core.contracts import GraphSpec, frame_dims, graph_specs
from ..core.layouts import tracks_to_bank
from .backends import TORCH_DTYPES, Backend, TorchBackend
from .bank import GroupBank
from .objects import ObjectTable
from .errors import RuntimeInputError
from .frames import frame_size, one_hot_labels, padded_probs, write_frame
from . import loaders
from .loaders import LoadOptions

BACKENDS = tuple(loaders.LOADERS)


@dataclasses.dataclass
class StepResult:
    frame: int  # index of the segmented frame
    object_ids: List[int]  # label of each object channel 1..N
    labels: Optional[np.ndarray] = None  # [H0, W0] the mask's ids (uint8, or int32 past 255)
    probs: Optional[np.ndarray] = None  # [N+1, H0, W0] float32, background first
    logits: Optional[np.ndarray] = None  # [N+1, H0, W0] float32, output logits L


class VideoState:
    """Everything one video owns. Shapes: H, W padded frame; N objects of all groups; K = N+1."""

    def __init__(self, session: "Session", height: int, width: int) -> None:
        self.session = session
        self.size = (height, width)  # H0, W0
        self.pad = padding_for(height, width)  # top, bottom, left, right
        self.dims = frame_dims(1, 1, height, width)
        dev, q = session.device, session.specs["encode_query"]
        self.frame_prev = self._alloc(q.input("frame"))  # [1, 3, H, W] float32, frame t-1
        self.frame_cur = self._alloc(q.input("frame"))  # [1, 3, H, W] float32, frame t
        self.query = {s.name: self._alloc(s) for s in q.outputs}  # query keys and decoder features
        self.pad_tensor = torch.tensor(self.pad, dtype=torch.int32, device=dev)  # [4]
        self.objects = ObjectTable()  # object ids <-> channels, by group
        self.groups: List[GroupBank] = []  # one memory bank per object group, in the table's group order
        self.t = 0  # index of the last frame with probabilities
        self.probs: torch.Tensor  # [K, H, W] probabilities of frame t (decode output), 0 in the padding
        self.objects_sum: torch.Tensor  # [1, H, W] their sum over the objects
        self.logits: torch.Tensor  # [K, H, W]
        self.readouts: Dict[str, torch.Tensor] = {}  # [N, ...] rows of every group's objects

    def _alloc(self, spec, n: int = 1) -> torch.Tensor:
        shape = spec.shape(dict(self.dims, N=n, K=n + 1))
        return torch.zeros(shape, dtype=TORCH_DTYPES[spec.dtype], device=self.session.device)

    @property
    def object_ids(self) -> List[int]:
        return self.objects.ids

    def allocate_objects(self, probs: torch.Tensor) -> None:
        """(Re)allocate the per-object buffers for the current groups; probs [K, H, W] padded."""
        decode = self.session.specs["decode"]
        n = len(self.object_ids)
        self.readouts = {name: self._alloc(decode.input(name), n) for name in ("readout16", "readout8", "readout4")}
        self.logits = self._alloc(decode.output("logits"), n)
        self.probs = probs.contiguous()
        self.objects_sum = self.probs[1:].sum(dim=0, keepdim=True)

    def bank_bytes(self) -> int:
        return sum(g.nbytes() for g in self.groups)

    def buffers(self) -> List[torch.Tensor]:
        """Every buffer the state holds (to check that nothing is re-allocated per frame)."""
        own = [self.frame_prev, self.frame_cur, self.pad_tensor, self.probs, self.objects_sum, self.logits]
        return own + list(self.query.values()) + list(self.readouts.values()) + [b for g in self.groups for b in g.buffers()]


class Session:
    """Graphs on a backend plus the memory policy; shared by any number of videos."""

    def __init__(
        self, backend: Backend, config: hmmn_ref.HMMNConfig, precision: str, mem_every: int = protocol.DEFAULT_MEM_EVERY,
        capacity: int = protocol.DEFAULT_CAPACITY, max_objects: Optional[int] = None, size: Optional[Tuple[int, int]] = None,
        timer=None, on_graph_inputs: Optional[Callable[[str, Dict[str, torch.Tensor]], None]] = None,
    ) -> None:
        protocol.check_settings(mem_every=mem_every, capacity=capacity)
        self.backend = backend
        self.config = config
        self.precision = precision
        self.specs: Dict[str, GraphSpec] = graph_specs(config, precision)
        self.mem_every = mem_every
        self.capacity = capacity
        self.max_objects = max_objects  # the manifest's (engines' profile) limit, None when unbounded
        self.fixed_size = size  # engines are built for one size; graphs elsewhere take any
        self.device = backend.device
        # Optional stage timer (hmmn-bench's bench.timing.StageTimer): `timer.attach(device)` once,
        # then `timer.section(name, inputs, outputs)`, a context manager around each part of a
        # step (upload, the four graphs with their tensors, bank_update, download). None: no timing.
        self.timer = timer
        if timer is not None:
            timer.attach(self.device)
        # Optional observer of every graph call's inputs, `on_graph_inputs(graph, {name: tensor})`
        # before the call (hmmn-quantize's calibration keeps copies); the tensors are the state's
        # buffers, reused next call. None: nothing is observed.
        self.on_graph_inputs = on_graph_inputs

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(
        cls, folder: str, backend: str = "onnxruntime", *, model: Optional[hmmn_ref.HMMN] = None,
        providers: Optional[Sequence[str]] = None, capacity: Optional[int] = None,
        mem_every: Optional[int] = None, threads: Optional[int] = None, stream=None, device: Optional[str] = None,
        compute: Optional[str] = None, timer=None, spin_wait: Optional[bool] = None,
        pin_threads: Optional[bool] = None, on_graph_inputs=None,
    ) -> "Session":
        """A session on an hmmn-export folder. backend 'onnxruntime' (providers: CPU by default;
        device='cuda' asks for its CUDA provider), 'tensorrt' (its engines), or 'torch' (eager
        hmmn_ref stages; pass the `model` whose weights the folder was exported from). compute: a
        backend's own compute precision where it has one (None: the graphs' own). spin_wait: whether
        ONNX Runtime's workers spin between operators; pin_threads: whether OpenVINO pins its CPU
        threads to cores (None: the project's defaults, docs/openvino.md "Threads on shared cores")."""
        record = manifest_io.read_manifest(folder)
        config = hmmn_ref.HMMNConfig.from_dict(record["model"]["config"])
        precision = record["precision"]["name"]
        memory = record["memory"]
        capacity = capacity or memory["capacity"]
        options = LoadOptions(model=model, providers=providers, threads=threads, stream=stream, device=device,
                              compute=compute, spin_wait=spin_wait, pin_threads=pin_threads)
        loaded = loaders.load(backend, folder, record, graph_specs(config, precision), options)
        if loaded.max_capacity is not None and capacity > loaded.max_capacity:
            raise RuntimeInputError(f"capacity {capacity} exceeds the engines' {loaded.max_capacity} slots; "
                                    "rebuild them with a larger hmmn-export --capacity")
        return cls(loaded.backend, config, precision, mem_every or memory["mem_every"], capacity,
                   memory["max_objects"], loaded.size, timer, on_graph_inputs)

    @classmethod
    def from_model(
        cls, model: hmmn_ref.HMMN, precision: str = "fp32", mem_every: int = protocol.DEFAULT_MEM_EVERY,
        capacity: int = protocol.DEFAULT_CAPACITY, device: str = "cpu", timer=None, on_graph_inputs=None,
    ) -> "Session":
        """The torch backend straight from a model, without an export folder."""
        specs = graph_specs(model.config, precision)
        return cls(TorchBackend(model, specs, precision, device), model.config, precision, mem_every, capacity,
                   timer=timer, on_graph_inputs=on_graph_inputs)

    # -- inputs: converted by runtime.frames, placed on the session's device -----------------
    def _labels_to_probs(self, state: VideoState, mask) -> Tuple[torch.Tensor, List[int]]:
        probs, labels = one_hot_labels(mask, state.size, state.pad)
        state.objects.check_new(labels, self.max_objects)
        return probs.to(self.device), labels

    def _teacher(self, state: VideoState, probs, k: int) -> torch.Tensor:
        return padded_probs(probs, k, state.size, state.pad).to(self.device)

    # -- the video ----------------------------------------------------------------------------
    def start(self, frame, mask, probs=None) -> VideoState:
        """A new video from its first frame and label map (0 = background, ids kept in results).
        probs: optional float32 [N+1, H0, W0] to memorise instead of the one-hot mask."""
        height, width = frame_size(frame)
        if self.fixed_size and (height, width) != self.fixed_size:
            raise RuntimeInputError(f"the engines were built for {self.fixed_size[0]}x{self.fixed_size[1]} frames, "
                                    f"this video is {height}x{width}; export for its size or use onnxruntime")
        if cells_16(height, width) < self.config.min_cells_16:
            raise RuntimeInputError(f"{height}x{width} frames are too small for this model "
                                    f"(at least {self.config.min_cells_16} cells of 16x16 pixels)")
        state = VideoState(self, height, width)
        write_frame(frame, state.frame_prev, state.size, state.pad)
        one_hot, labels = self._labels_to_probs(state, mask)
        self._add_group(state, labels, 0)
        state.allocate_objects(self._teacher(state, probs, len(labels) + 1) if probs is not None else one_hot)
        if self.config.memory_from_query:  # the first frame's query outputs, which its memory reads
            self._run("encode_query", {"frame": state.frame_prev}, state.query)
        return state

    def _add_group(self, state: VideoState, labels: List[int], start: int) -> None:
        state.objects.add_group(labels)
        state.groups.append(GroupBank(len(labels), start, self.capacity, self.mem_every, self.specs, state.dims,
                                      self.device))

    def step(self, state: VideoState, frame, *, teacher=None, teacher_tracks=None,
             outputs: Sequence[str] = ("labels",)) -> StepResult:
        """Segment the next frame. outputs: any of 'labels', 'probs', 'logits'.
        Teacher forcing (hmmn-export's video check holds the graphs to hmmn_ref frame by frame):
        teacher, optional float32 [N+1, H0, W0] probabilities of this frame to memorise instead
        of the prediction (hmmn_ref.run_video's teacher); teacher_tracks, optional integer
        [N, P, hw] tracking maps of the P kept slots to read instead of the bank's own
        (run_video's tracks_log entry for this frame; one object group only)."""
        if not isinstance(state, VideoState) or state.session is not self:
            raise RuntimeInputError("step() needs the VideoState that this session's start() returned")
        unknown = set(outputs) - {"labels", "probs", "logits"}
        if unknown:
            raise RuntimeInputError(f"unknown outputs {sorted(unknown)}; choose labels, probs, logits")
        # Check everything before the state moves on.
        teacher_probs = None if teacher is None else self._teacher(state, teacher, state.probs.shape[0])
        forced_tracks = None if teacher_tracks is None else self._teacher_tracks(state, teacher_tracks)
        section = self._section
        with section("upload"):
            write_frame(frame, state.frame_cur, state.size, state.pad)
        rows = state.objects.group_rows()  # each group's object rows (its channels are rows + 1)
        # Steps 1-6 of docs/protocol.md "One frame".
        for group, row in zip(state.groups, rows):  # 1. memorise frame t-1 for every group
            self._run("encode_memory", self._memory_feeds(state, row), group.memory_targets())
        self._run("encode_query", {"frame": state.frame_cur}, state.query)  # 2. query features of frame t
        if forced_tracks is not None:
            group = state.groups[0]
            group.tracks[: group.permanent].copy_(forced_tracks)
        for group, row in zip(state.groups, rows):  # 3. read each group's memory into its objects' readout rows
            feeds = {name: state.query[name] for name in ("query_key16", "query_key8", "query_key4")}
            feeds.update(group.match_inputs(state.t))
            out = {name: buf[row] for name, buf in state.readouts.items()}
            out.update(group.match_outputs())
            self._run("match", feeds, out)
        # 4. decode every object at once (soft aggregation spans them all)
        decode_in = dict(state.readouts, fm_query=state.query["fm_query"], fs8=state.query["fs8"],
                         fs4=state.query["fs4"], pad=state.pad_tensor)
        self._run("decode", decode_in, {"logits": state.logits, "probs": state.probs, "objects_sum": state.objects_sum})
        with section("bank_update"):
            for group in state.groups:  # 5. keep or drop the previous frame's slot
                group.update(state.t)
        state.frame_prev, state.frame_cur = state.frame_cur, state.frame_prev  # 6. swap the frames
        state.t += 1
        if teacher_probs is not None:
            state.probs.copy_(teacher_probs)
            state.objects_sum.copy_(state.probs[1:].sum(dim=0, keepdim=True))
        with section("download"):
            return self._result(state, outputs)

    def _memory_feeds(self, state: VideoState, row: slice) -> Dict[str, torch.Tensor]:
        """encode_memory's inputs for frame t-1 and one group's object rows: the frame, or with
        memory_from_query encode_query's outputs for it (state.query holds them until step 2
        runs the query of frame t), then the group's probabilities and every object's sum."""
        feeds = {"masks": state.probs[1 + row.start : 1 + row.stop], "objects_sum": state.objects_sum}
        of_the_frame = {"frame": state.frame_prev, **state.query}
        for spec in self.specs["encode_memory"].inputs:
            if spec.name not in feeds:
                feeds[spec.name] = of_the_frame[spec.name]
        return feeds

    def _teacher_tracks(self, state: VideoState, tracks) -> torch.Tensor:
        """[N, P, hw] (run_video's layout) -> [P, N, h, w] int32 (the bank's), checked."""
        if len(state.groups) != 1:
            raise RuntimeInputError("teacher_tracks forces one object group's maps; this video has "
                                    f"{len(state.groups)} groups")
        group = state.groups[0]
        n, p = group.objects, group.permanent
        h, w = group.tracks.shape[-2:]
        tracks = torch.as_tensor(np.asarray(tracks) if not isinstance(tracks, torch.Tensor) else tracks)
        if tuple(tracks.shape) != (n, p, h * w) or tracks.is_floating_point():
            raise RuntimeInputError(f"teacher_tracks must be integer [N, P, hw] = {(n, p, h * w)} (the kept slots "
                                    f"read this frame), got {tracks.dtype} {tuple(tracks.shape)}")
        return tracks_to_bank(tracks, h, w).to(self.device)

    def _section(self, name: str, inputs=None, outputs=None):
        return contextlib.nullcontext() if self.timer is None else self.timer.section(name, inputs, outputs)

    def _run(self, graph: str, inputs, outputs) -> None:
        if self.on_graph_inputs is not None:
            self.on_graph_inputs(graph, inputs)
        with self._section(graph, inputs, outputs):
            self.backend.run(graph, inputs, outputs)

    def add_objects(self, state: VideoState, mask) -> List[int]:
        """Objects that appear on the last segmented frame (YouTube-VOS): their label map for
        that frame. They form a new group with its own first frame; where the new mask has an
        object, it replaces the prediction. Returns the new labels."""
        one_hot, labels = self._labels_to_probs(state, mask)
        new_area = one_hot[1:].sum(dim=0, keepdim=True)  # [1, H, W]
        merged = torch.cat([state.probs * (1.0 - new_area), one_hot[1:]], dim=0)  # new objects win
        self._add_group(state, labels, state.t)
        state.allocate_objects(merged)
        return labels

    def remove_objects(self, state: VideoState, labels: Sequence[int]) -> None:
        """Forget objects: their memory, channels and results. Their probability goes to the background."""
        kept, dropped, per_group = state.objects.remove(labels)
        probs = state.probs[kept].clone()
        probs[0] += state.probs[dropped].sum(dim=0)
        for group, keep in zip(state.groups, per_group):
            group.select_objects(keep)
        state.groups = [g for g in state.groups if g.objects]
        state.allocate_objects(probs)

    def _result(self, state: VideoState, outputs: Sequence[str]) -> StepResult:
        self.backend.synchronize()
        logits = crop(state.logits, state.pad)
        result = StepResult(frame=state.t, object_ids=state.object_ids)
        if "labels" in outputs:
            result.labels = state.objects.label_map(channel_argmax(logits))
        if "probs" in outputs:
            result.probs = torch.softmax(logits.float(), dim=0).cpu().numpy()
        if "logits" in outputs:
            result.logits = logits.float().cpu().numpy().copy()  # the buffer is reused next frame
        return result


def channel_argmax(logits: torch.Tensor) -> np.ndarray:
    """[K, H, W] -> [H, W] channel indices (uint8, or int32 past 256 channels), the first channel of
    the largest value. On the CPU by K - 1 comparisons of whole planes: an argmax over the outer
    dimension walks it with a stride (torch took 63 ms for [3, 480, 640], numpy 11 ms; this 3 ms
    for [2, 480, 640]) on a 2-core Xeon."""
    if logits.device.type != "cpu":
        return logits.argmax(dim=0).cpu().numpy()
    planes = logits.float().numpy()
    best = planes[0].copy()  # not a view: logits is the state's buffer
    index = np.zeros(best.shape, np.uint8 if len(planes) <= 256 else np.int32)
    for c in range(1, len(planes)):
        better = planes[c] > best  # strict: ties keep the earlier channel
        index[better] = c
        np.maximum(best, planes[c], out=best)
    return index
