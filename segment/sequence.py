"""Segment one sequence with a Session: read frames ahead, step the model, write outputs behind.

Frames before the first annotation (YouTube-VOS) get empty masks; the first annotated frame
starts the video and its annotation is written as its mask; a later annotation (YouTube-VOS)
adds the objects not yet tracked, which then win over the prediction on that frame.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from hmmn_ref.errors import HMMNError
from hmmn_ref.media import read_mask

from ..core.resize import resize_labels, resize_probs
from ..core.working_size import WorkingSize
from ..runtime import Session
from .outdir import JOURNAL, WORK, publish, recover
from .ownership import FOREIGN, inspect, write_marker
from .reader import FrameReader
from .sources import Sequence
from .writer import SequenceWriter


class SequenceError(HMMNError, ValueError):
    """A frame or an annotation of this sequence cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True)
class SequenceOptions:
    size: Optional[Tuple[int, int]] = None  # processing size HxW (--size); None: working_size's pick, or the frames'
    working_size: Optional[WorkingSize] = None  # the weights' trained sizes: a size picked per video when size is None
    skip_bad_frames: bool = False  # repeat the last mask for an unreadable frame instead of failing
    save_probs: bool = False
    overlay: bool = False
    overlay_fps: float = 10.0  # for frame folders; a video file's overlay keeps its frame rate
    strict: bool = False  # a warning (a video file shorter than it declares) fails the sequence


def _os_reason(exc: OSError) -> str:
    if exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)


class SequenceRun:
    """State of one sequence's run; `run()` returns its record for summary.json."""

    def __init__(self, session: Session, sequence: Sequence, out: str, options: SequenceOptions,
                 progress: Optional[Callable[[int], None]] = None) -> None:
        self.session = session
        self.sequence = sequence
        self.out = out
        self.options = options
        self.progress = progress or (lambda n: None)
        self.work = os.path.join(out, WORK, sequence.name)
        self.model_seconds = 0.0
        self.model_frames = 0  # frames through the model: the first annotated one and each one stepped
        self.skipped: List[str] = []
        self.warnings: List[str] = []
        self.size_source = "frames"  # what set the processing size: '--size', 'trained sizes' or 'frames'

    def run(self) -> dict:
        recover(self.work, self.out)  # a previous run's leftovers (a worker killed while publishing, say)
        seq, opts = self.sequence, self.options
        first = min(seq.annotations)
        first_mask, palette = self._annotation(first, None)
        writer = SequenceWriter(self.work, palette, save_probs=opts.save_probs, overlay=opts.overlay,
                                fps=seq.fps or opts.overlay_fps)
        started = time.perf_counter()
        try:
            frames = self._segment(writer, first)
            if opts.strict and self.warnings:
                raise SequenceError(f"{seq.name}: {self.warnings[0]} (an error with --strict)")
            writer.close()
            writer.check_outputs()
            record = self._record(frames, time.perf_counter() - started)
            found = inspect(self.out, seq.name)  # again: something may have appeared there during the run
            if found.kind == FOREIGN:
                raise SequenceError(f"{seq.name}: {found.reason}; nothing of it was touched and nothing published "
                                    "(move it away, or give another -o)")
            record["run_id"] = write_marker(self.work, seq.name, record)
            publish(self.work, self.out, seq.name, record["run_id"])
        except BaseException as exc:  # nothing of this sequence is published
            writer.abort()
            if not os.path.exists(os.path.join(self.work, JOURNAL)):  # a failed roll-back keeps its folder
                shutil.rmtree(self.work, ignore_errors=True)
            if isinstance(exc, OSError):  # a full disk, say
                raise SequenceError(f"{seq.name}: writing its outputs failed: {_os_reason(exc)}; nothing of it was "
                                    "published (a rerun redoes it)") from None
            raise
        return record

    def _record(self, frames: int, wall: float) -> dict:
        return {"status": "done", "frames": frames, "objects": self.object_ids,
                "size": list(self.original_size), "processing_size": list(self.processing_size),
                "size_source": self.size_source,
                "model_frames": self.model_frames,
                # Microseconds: fps (and summary.json's totals, from these seconds) stay consistent
                # to 1e-4 on short sequences, where milliseconds moved them by over 1 %.
                "model_seconds": round(self.model_seconds, 6), "wall_seconds": round(wall, 6),
                # Frames the model processed per second of model time: not the frames before the first
                # annotation, not skipped ones (they are written without the model).
                "fps": round(self.model_frames / self.model_seconds, 4) if self.model_seconds else None,
                "skipped_frames": self.skipped, "warnings": self.warnings}

    def _annotation(self, index: int, size: Optional[Tuple[int, int]]) -> Tuple[np.ndarray, List[int]]:
        path = self.sequence.annotations[index]
        try:
            labels, palette = read_mask(path)
        except ValueError as exc:
            raise SequenceError(str(exc)) from None
        if size is not None and labels.shape != tuple(size):
            raise SequenceError(f"mask {path!r} is {labels.shape[0]}x{labels.shape[1]} but the frames are "
                                f"{size[0]}x{size[1]}; give a mask of the frames' size")
        return labels, palette

    def _segment(self, writer: SequenceWriter, first: int) -> int:
        session, seq, opts = self.session, self.sequence, self.options
        state = None
        last = None  # (labels, probs, original frame) of the last written frame
        self.object_ids: List[int] = []
        self.original_size = self.processing_size = (0, 0)
        want = ("labels",)
        frames = 0
        if opts.size is not None:
            size, self.size_source = opts.size, "--size"
        elif opts.working_size is not None:
            size, self.size_source = opts.working_size.size_for, "trained sizes"
        else:
            size, self.size_source = None, "frames"
        with FrameReader(seq, size) as reader:
            for item in reader:
                name = seq.frame_names[item.index]
                if item.truncated:
                    self.warnings.append(item.error)
                    break
                if item.error is not None:
                    if not opts.skip_bad_frames or state is None:
                        hint = "" if opts.skip_bad_frames else "; pass --skip-bad-frames to repeat the last mask"
                        raise SequenceError(f"{seq.name}: {item.error}{hint}")
                    self.skipped.append(name)
                    writer.put(name, last[0], last[2], last[1], self.object_ids)
                    frames += 1
                    self.progress(1)
                    continue
                if state is None:
                    self.original_size, self.processing_size = item.original_size, item.frame.shape[:2]
                    # Resized frames: the probabilities come back, are resized to the frames' size, then
                    # the argmax (smoother edges than resizing the labels).
                    if opts.save_probs or self.processing_size != self.original_size:
                        want = ("probs",)
                if item.index < first:  # before any object appears (YouTube-VOS)
                    labels = np.zeros(item.original_size, dtype=np.uint8)
                    writer.put(name, labels, item.original)
                elif state is None:
                    mask, _ = self._annotation(first, item.original_size)
                    t0 = time.perf_counter()
                    state = session.start(item.frame, resize_labels(mask, self.processing_size))
                    self.model_seconds += time.perf_counter() - t0
                    self.model_frames += 1
                    self.object_ids = list(state.object_ids)
                    probs = self._one_hot(mask) if opts.save_probs else None
                    last = (mask, probs, item.original)
                    writer.put(name, mask, item.original, probs, self.object_ids)
                else:
                    last = self._step(state, item, want)
                    writer.put(name, last[0], item.original, last[1], self.object_ids)
                frames += 1
                self.progress(1)
        if state is None:
            raise SequenceError(f"{seq.name}: frame {seq.frame_names[first]} (the first annotated one) was not read")
        return frames

    def _step(self, state, item, want) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
        t0 = time.perf_counter()
        result = self.session.step(state, item.frame, outputs=want)
        self.model_seconds += time.perf_counter() - t0
        self.model_frames += 1
        probs = None
        if result.labels is not None:
            labels = result.labels
        else:
            probs = resize_probs(result.probs, self.original_size)
            labels = state.objects.label_map(probs.argmax(axis=0))
        if item.index in self.sequence.annotations:  # new objects on this frame (YouTube-VOS)
            mask, _ = self._annotation(item.index, self.original_size)
            new = sorted(set(np.unique(mask).tolist()) - {0} - set(result.object_ids))
            if new:
                only_new = np.where(np.isin(mask, new), mask, 0).astype(mask.dtype)
                t0 = time.perf_counter()
                self.session.add_objects(state, resize_labels(only_new, self.processing_size))
                self.model_seconds += time.perf_counter() - t0
                self.object_ids = list(state.object_ids)
                labels = np.where(only_new > 0, only_new, labels).astype(np.uint8)
                if probs is not None:
                    probs = self._one_hot_over(probs, only_new)
        return labels, (probs if self.options.save_probs else None), item.original

    def _one_hot(self, mask: np.ndarray) -> np.ndarray:
        ids = [0] + self.object_ids
        return np.stack([(mask == i) for i in ids]).astype(np.float32)

    def _one_hot_over(self, probs: np.ndarray, only_new: np.ndarray) -> np.ndarray:
        """Probabilities after new objects joined: theirs are 1 where their mask is. [K', H, W]"""
        new_ids = self.object_ids[probs.shape[0] - 1:]
        covered = only_new > 0
        kept = probs * ~covered
        added = np.stack([(only_new == i) for i in new_ids]).astype(np.float32)
        return np.concatenate([kept, added])
