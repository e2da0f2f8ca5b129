"""The four graphs chained over a video with the public protocol, for validation.

A plain loop over host arrays: it checks that the graphs, wired as the manifest describes,
reproduce `hmmn_ref.run_video`. (The runtime does the same with a preallocated device bank.)
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from hmmn_ref import protocol
from hmmn_ref.video import padding_for

# run(graph_name, feeds) -> outputs by name
GraphRunner = Callable[[str, Dict[str, np.ndarray]], Dict[str, np.ndarray]]


def pad_hw(x: np.ndarray, pad) -> np.ndarray:
    top, bottom, left, right = pad
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)])


def run_graphs(
    run: GraphRunner,
    frames: np.ndarray,
    first_probs: np.ndarray,
    mem_every: int = 5,
    teacher: Optional[np.ndarray] = None,
    teacher_tracks: Optional[Sequence[np.ndarray]] = None,
) -> np.ndarray:
    """frames float32 [T, 3, H0, W0]; first_probs [K, H0, W0] one-hot; teacher [T, K, H0, W0] or None.
    teacher_tracks: per frame t (from 1), the tracking maps [N, P, hw] to read instead of the
    graphs' own (hmmn_ref.run_video's tracks_log). Returns logits [T-1, K, H0, W0]."""
    num_frames, _, height, width = frames.shape
    k = first_probs.shape[0]
    pad = padding_for(height, width)
    top, bottom, left, right = pad
    pad_arr = np.array(pad, np.int32)
    probs = pad_hw(first_probs if teacher is None else teacher[0], pad).astype(np.float32)
    objects_sum = probs[1:].sum(axis=0, keepdims=True)
    out = np.zeros((max(num_frames - 1, 0), k, height, width), np.float32)
    permanent: List[Dict[str, np.ndarray]] = []
    first = None
    tracks = None  # [P, N, h, w] int32 maps of the permanent slots
    for t in range(1, num_frames):
        entry = run("encode_memory", {"frame": pad_hw(frames[t - 1 : t], pad), "masks": probs[1:],
                                      "objects_sum": objects_sum})
        if first is None:
            first = entry
            tracks = np.zeros((0,) + entry["key16"].shape[:1] + entry["key16"].shape[2:], np.int32)
        slots = permanent + [entry]
        if teacher_tracks is not None:  # [N, P, hw] -> [P, N, h, w]
            forced = np.asarray(teacher_tracks[t - 1]).transpose(1, 0, 2)
            tracks = forced.reshape(forced.shape[:2] + entry["key16"].shape[2:]).astype(np.int32)
        query = run("encode_query", {"frame": pad_hw(frames[t : t + 1], pad)})
        fine = [first, entry]  # on the first call both are frame 0; the graph ignores slot 1
        feeds = {
            "query_key16": query["query_key16"],
            "query_key8": query["query_key8"],
            "query_key4": query["query_key4"],
            "mem_key16": np.stack([s["key16"] for s in slots]),
            "mem_value16": np.stack([s["value16"] for s in slots]),
            "tracks": np.concatenate([tracks, np.zeros((1,) + tracks.shape[1:], np.int32)]),  # row T-1 unused
            "slot_age": np.arange(len(slots) - 1, -1, -1, dtype=np.int32),
        }
        for name in ("key8", "value8", "key4", "value4"):
            feeds["mem_" + name] = np.stack([f[name] for f in fine])
        matched = run("match", feeds)
        decoded = run("decode", {
            "readout16": matched["readout16"], "readout8": matched["readout8"], "readout4": matched["readout4"],
            "fm_query": query["fm_query"], "fs8": query["fs8"], "fs4": query["fs4"], "pad": pad_arr,
        })  # fmt: skip
        logits = decoded["logits"]
        out[t - 1] = logits[:, top : logits.shape[1] - bottom, left : logits.shape[2] - right]
        if protocol.is_kept(t - 1, 0, mem_every):
            permanent.append(entry)
            tracks = matched["tracks_out"]
        else:
            tracks = matched["tracks_out"][:-1]
        if teacher is None:
            probs, objects_sum = decoded["probs"], decoded["objects_sum"]
        else:
            probs = pad_hw(teacher[t], pad).astype(np.float32)
            objects_sum = probs[1:].sum(axis=0, keepdims=True)
    return out
