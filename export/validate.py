"""Validation of exported graphs against hmmn_ref: names, then shapes, then values per output.

Each graph runs on inputs made by hmmn_ref's own stages (a generated clip at the export size),
and every output is compared with what hmmn_ref computes for it, with the contract's
tolerance. Then the four graphs, chained by the runtime's own Session (teacher-forced), are
compared with `hmmn_ref.run_video`. Graphs run on a runtime backend (ONNX Runtime here).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

import hmmn_ref
from hmmn_ref import protocol
from hmmn_ref.errors import HMMNError
from hmmn_ref.sample_video import make_sample_video
from hmmn_ref.video import grid_16, one_hot, object_labels, pad, padding_for, stack_slots

from ..core.contracts import GraphSpec, frame_dims
from ..core.layouts import fine_cells, tracks_to_bank
from ..runtime.backends import TORCH_DTYPES, Backend
from ..runtime.session import Session


class ValidationError(HMMNError, ValueError):
    """Base of the typed validation failures."""


class NameMismatch(ValidationError):
    """The graph's inputs or outputs are not the contract's names."""


@dataclasses.dataclass
class OutputCheck:
    graph: str
    output: str
    measured: float
    tolerance: str
    passed: bool
    problem: str = ""

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        return f"{status}  {self.graph:<14} {self.output:<12} {self.measured:.3g} ({self.tolerance}) {self.problem}"


# The rounding floor: how far hmmn_ref moves from itself when every frame value moves by at most
# this much (1/4000 of a grey level, an invisible change). No FP32 implementation that is not
# bit-identical can be held closer to the reference than the reference is to itself.
FLOOR_NOISE = 1e-6


@dataclasses.dataclass
class VideoCheck:
    """Chained graphs against run_video. Masks are compared where the reference decides: where
    its best probability beats the second by more than `margin`. With random weights large
    regions are near-ties (two objects at p = 0.5 each), whose argmax any rounding flips.

    When the agreement is below `min_agreement`, `floor_agreement` (if measured) is the same
    figure for hmmn_ref against itself on frames moved by +-FLOOR_NOISE: its hard top-k and
    flow decisions can sit on near-ties that any rounding flips (spec 7, "Conditioning"). The
    check then passes only if the graphs agree at least as well as that floor."""

    frames: int
    agreement: float  # over all pixels
    decided_fraction: float  # pixels whose reference margin exceeds `margin`
    decided_agreement: float  # agreement on those pixels: the gate
    max_dp: float
    max_rel_dl: float
    margin: float = 1e-3
    min_agreement: float = 0.999
    frame_agreement: List[float] = dataclasses.field(default_factory=list)  # decided pixels, frames 1..T-1
    floor_agreement: Optional[float] = None

    @property
    def at_floor(self) -> bool:
        """Below min_agreement, but no further from hmmn_ref than hmmn_ref is from itself."""
        return (self.decided_agreement < self.min_agreement and self.floor_agreement is not None
                and self.decided_agreement >= self.floor_agreement)

    @property
    def passed(self) -> bool:
        return self.decided_agreement >= self.min_agreement or self.at_floor

    def line(self, label: str = "chained graphs vs hmmn_ref.run_video") -> str:
        status = "PASS" if self.passed else "FAIL"
        text = (f"{status}  {label}: {self.frames} frames, mask agreement {self.decided_agreement * 100:.3f}% "
                f"(>= {self.min_agreement * 100:.1f}%) on the {self.decided_fraction * 100:.1f}% of pixels decided "
                f"by > {self.margin:g}, {self.agreement * 100:.3f}% on all; max |dP| {self.max_dp:.2e}, "
                f"max |dL|/(1+|L|) {self.max_rel_dl:.2e}")
        if self.floor_agreement is not None:
            verdict = ("at or above it: PASS at the rounding floor" if self.at_floor
                       else "the graphs are further off than that")
            text += (f"; below {self.min_agreement * 100:.1f}%, so hmmn_ref was run against itself on frames "
                     f"moved by +-{FLOOR_NOISE:g}: {self.floor_agreement * 100:.3f}% ({verdict}); per frame "
                     + " ".join(f"{a * 100:.2f}" for a in self.frame_agreement))
        return text


def compare_outputs(
    spec: GraphSpec, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], dims: Mapping[str, int]
) -> List[OutputCheck]:
    """One check per output: contract shape and dtype first, then the tolerance."""
    checks = []
    for s in spec.outputs:
        got, want = actual[s.name], expected[s.name]
        tol = f"{s.tolerance.kind} {'>=' if s.tolerance.kind == 'equal' else '<='} {s.tolerance.value:g}"
        shape = s.shape(dims)
        if tuple(got.shape) != shape or got.dtype.name != s.dtype:
            problem = f"shape {tuple(got.shape)} {got.dtype.name}, contract {shape} {s.dtype}"
            checks.append(OutputCheck(spec.name, s.name, float("nan"), tol, False, problem))
            continue
        measured = s.tolerance.measure(got, want.astype(got.dtype) if s.tolerance.kind == "equal" else want)
        checks.append(OutputCheck(spec.name, s.name, measured, tol, s.tolerance.passes(measured)))
    return checks


# -- reference cases ------------------------------------------------------------------------


def sample_clip(height: int, width: int, num_frames: int, num_objects: int = 2, seed: int = 0):
    """(frames float32 [T,3,H,W], labels int64 [T,H,W]) of the built-in generated video."""
    frames, labels = make_sample_video(num_frames=num_frames, height=height, width=width,
                                       num_objects=num_objects, seed=seed)
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(labels).long()


@torch.no_grad()
def reference_cases(model: hmmn_ref.HMMN, frames: torch.Tensor, first_mask: torch.Tensor) -> Tuple[Dict, Dict]:
    """Inputs and hmmn_ref's outputs for each graph, from the first three frames of a clip.

    encode_memory: frame 0 with its annotation; encode_query: frame 2; match: frame 2 reading
    frames 0 and 1 (T = 2, so the tracking maps of an older slot are exercised); decode: the
    readouts of that match. Returns (inputs by graph, expected outputs by graph), numpy.
    """
    labels = object_labels(first_mask.numpy())
    p = padding_for(*first_mask.shape)
    h, w = grid_16(*first_mask.shape)
    n = len(labels)
    cv = model.config.value_dim_16
    f = [pad(frames[i : i + 1], p) for i in range(3)]
    probs0 = pad(one_hot(first_mask, labels), p)

    def read(query, slots, tracks):  # one frame's reads and decoder (hmmn_ref.HMMN.segment, its parts kept)
        m4, weights, new_tracks = model.read_16(slots.key16, slots.value16, query, tracks)
        m3, m2 = model.read_fine(*slots[2:], query, weights)
        return (m4[:, :cv], m3, m2), new_tracks, model.aggregate(model.decode(m4, m3, m2, query))

    e0 = model.encode_memory(f[0], probs0)
    _, tracks1, logits1 = read(model.encode_query(f[1]), stack_slots([e0]), torch.zeros(n, 0, h * w, dtype=torch.int64))
    e1 = model.encode_memory(f[1], torch.softmax(logits1, 0))
    q2 = model.encode_query(f[2])
    slots = stack_slots([e0, e1])
    readouts, tracks2, logits2 = read(q2, slots, tracks1)  # T = 2: the maps of slot 0 are read
    height, width = logits2.shape[-2:]
    inside = torch.zeros(height, width)
    inside[p[0] : height - p[1], p[2] : width - p[3]] = 1.0
    probs2 = torch.softmax(logits2, 0) * inside

    fm_query = model.Decoder.convFM(torch.cat([torch.zeros_like(q2.value16), q2.value16], 1))  # linearity
    fs8, fs4 = model.Decoder.RF3.convFS(q2.r3), model.Decoder.RF2.convFS(q2.r2)
    fine = (("key8", 2), ("value8", 2), ("key4", 4), ("value4", 4))  # fine memory and its cells' side
    decoder_query = {"fm_query": fm_query, "fs8": fs8, "fs4": fs4}
    readout = dict(zip(("readout16", "readout8", "readout4"), readouts))
    if model.config.memory_from_query:  # encode_memory reads encode_query's outputs for frame 0
        q0 = model.encode_query(f[0])
        memorised = {"query_key16": q0.key16, "query_key8": q0.key8, "query_key4": q0.key4, **frame_values(model, f[0])}
    else:
        memorised = {"frame": f[0]}
    inputs = {
        "encode_query": {"frame": f[2]},
        "encode_memory": {**memorised, "masks": probs0[1:], "objects_sum": probs0[1:].sum(0, keepdim=True)},
        "match": {
            "query_key16": q2.key16, "query_key8": q2.key8, "query_key4": q2.key4,
            "mem_key16": slots.key16, "mem_value16": slots.value16,
            "tracks": torch.cat([tracks_to_bank(tracks1, h, w), torch.zeros(1, n, h, w, dtype=torch.int32)]),
            "slot_age": torch.tensor([1, 0], dtype=torch.int32),
            **{f"mem_{name}": torch.stack([fine_cells(getattr(e, name), r, h, w) for e in (e0, e1)])
               for name, r in fine},
        },
        "decode": {**readout, **decoder_query, "pad": torch.tensor(p, dtype=torch.int32)},
    }
    expected = {
        "encode_query": {"query_key16": q2.key16, "query_key8": q2.key8, "query_key4": q2.key4, **decoder_query,
                         **(frame_values(model, f[2]) if model.config.memory_from_query else {})},
        "encode_memory": {"key16": e0.key16, "value16": e0.value16,
                          **{name: fine_cells(getattr(e0, name), r, h, w) for name, r in fine}},
        "match": {**readout, "tracks_out": tracks_to_bank(tracks2, h, w)},
        "decode": {"logits": logits2, "probs": probs2, "objects_sum": probs2[1:].sum(0, keepdim=True)},
    }  # fmt: skip
    as_numpy = lambda d: {g: {k: v.numpy() for k, v in io.items()} for g, io in d.items()}
    return as_numpy(inputs), as_numpy(expected)


def frame_values(model: hmmn_ref.HMMN, frame: torch.Tensor) -> Dict[str, torch.Tensor]:
    """memory_from_query: the frame's share of its memory values, by linearity the value
    projections of its trunk maps with zero masks appended (the bias included)."""
    maps = model.Encoder_Q(frame)  # r4, r3, r2
    projections = (model.KV_M_r4, model.KV_M_r3, model.KV_M_r2)
    return {f"frame_value{s}": kv.Value(torch.cat([x, torch.zeros_like(x[:, :2])], dim=1))
            for s, kv, x in zip((16, 8, 4), projections, maps)}


def validate_graph(
    spec: GraphSpec, backend: Backend, inputs: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray],
    dims: Mapping[str, int],
) -> List[OutputCheck]:
    """Run one graph on the reference inputs (cast to the contract's dtypes) and compare. The
    backend writes into buffers of the contract's shapes; a graph that cannot fails every output."""
    feeds = {s.name: torch.from_numpy(np.ascontiguousarray(inputs[s.name].astype(s.dtype))) for s in spec.inputs}
    outputs = {s.name: torch.zeros(s.shape(dims), dtype=TORCH_DTYPES[s.dtype]) for s in spec.outputs}
    try:
        backend.run(spec.name, feeds, outputs)
    except Exception as exc:  # ONNX Runtime's errors have no common base; the message is the finding
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [OutputCheck(spec.name, s.name, float("nan"), "runs", False, problem) for s in spec.outputs]
    return compare_outputs(spec, {k: v.numpy() for k, v in outputs.items()}, expected, dims)


def case_dims(first_mask: torch.Tensor, num_objects: int, slots: int = 2) -> Dict[str, int]:
    return frame_dims(num_objects, slots, *first_mask.shape)


def validate_video(
    model: hmmn_ref.HMMN, backend: Backend, frames: torch.Tensor, first_mask: torch.Tensor,
    mem_every: int = protocol.DEFAULT_MEM_EVERY, min_agreement: float = 0.999, margin: float = 1e-3, measure_floor: bool = True,
    precision: str = "fp32",
) -> VideoCheck:
    """Teacher-forced comparison of the runtime (a Session on `backend`) with run_video: frame
    t-1 is memorised with hmmn_ref's own probabilities and read with hmmn_ref's own tracking
    maps, so a rounding difference on one frame (a near-tie of the flow argmax, say) does not
    compound (spec 7). With `measure_floor`, an agreement below `min_agreement` is set beside
    hmmn_ref's own agreement with itself on invisibly perturbed frames (one more reference run)."""
    tracks_log: List[torch.Tensor] = []
    reference = hmmn_ref.run_video(model, frames, first_mask, mem_every, tracks_log=tracks_log)
    labels = object_labels(first_mask.numpy())
    first = one_hot(first_mask, labels)
    teacher = torch.cat([first[None], torch.softmax(reference, 1)])
    session = Session(backend, model.config, precision, mem_every, capacity=int(frames.shape[0]) + 1)
    state = session.start(frames[0], first_mask, probs=teacher[0])
    got = np.stack([session.step(state, frames[t], teacher=teacher[t], teacher_tracks=tracks_log[t - 1],
                                 outputs=("logits",)).logits for t in range(1, frames.shape[0])])
    ref = reference.numpy()
    p_got = torch.softmax(torch.from_numpy(got), 1).numpy()
    p_ref = teacher[1:].numpy()
    top2 = np.sort(p_ref, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > margin  # [T-1, H, W]
    same = got.argmax(1) == ref.argmax(1)
    check = VideoCheck(
        frames=int(frames.shape[0]),
        agreement=float(same.mean()),
        decided_fraction=float(decided.mean()),
        decided_agreement=decided_agreement(same, decided),
        max_dp=float(np.abs(p_got - p_ref).max()),
        max_rel_dl=float((np.abs(got - ref) / (1.0 + np.abs(ref))).max()),
        margin=margin,
        min_agreement=min_agreement,
        frame_agreement=[decided_agreement(s, d) for s, d in zip(same, decided)],
    )
    if measure_floor and check.decided_agreement < min_agreement:
        generator = torch.Generator().manual_seed(0)
        moved = frames + (torch.rand(frames.shape, generator=generator) * 2 - 1) * FLOOR_NOISE
        itself = hmmn_ref.run_video(model, moved, first_mask, mem_every, teacher).numpy()
        check.floor_agreement = decided_agreement(itself.argmax(1) == ref.argmax(1), decided)
    return check


def decided_agreement(same: np.ndarray, decided: np.ndarray) -> float:
    """Fraction of the decided pixels whose argmax agrees (1.0 when none is decided)."""
    return float(same[decided].mean()) if decided.any() else 1.0
