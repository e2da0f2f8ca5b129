"""Frames decoded on a background thread, a few ahead of the model, so decoding costs no frame time.

    with FrameReader(sequence, size=(480, 854)) as reader:   # or size=callable: (H, W) of frame 0 -> size
        for item in reader:            # FrameItem, in frame order
            item.frame                 # uint8 [H, W, 3] RGB at the processing size, or None
            item.error                 # why the frame could not be used (then frame is None)
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Callable, Iterator, Optional, Tuple, Union

import numpy as np

from hmmn_ref.media import read_image

from ..core.resize import resize_frame
from .sources import Sequence

_END = object()


@dataclasses.dataclass
class FrameItem:
    index: int
    frame: Optional[np.ndarray]  # uint8 [H, W, 3] RGB, resized to the processing size
    original_size: Optional[Tuple[int, int]] = None  # H, W as stored
    original: Optional[np.ndarray] = None  # the frame as stored (for overlays at the output size)
    error: Optional[str] = None
    truncated: bool = False  # a video file ended before the frame count its container declares


class FrameReader:
    """Iterates a sequence's frames; a daemon thread decodes up to `prefetch` frames ahead."""

    def __init__(self, sequence: Sequence, size: Union[None, Tuple[int, int], Callable] = None,
                 prefetch: int = 8) -> None:
        """size: the processing size, None for the frames' own, or a function of the first frame's
        (H, W) that returns one of those (the working size picked per video)."""
        self.sequence = sequence
        self.size = size
        self.target: Optional[Tuple[int, int]] = None if callable(size) else size  # once frame 0 is read
        self._queue: "queue.Queue" = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode_all, name=f"read-{sequence.name}", daemon=True)
        self.first_size: Optional[Tuple[int, int]] = None  # H, W of frame 0 as stored

    def __enter__(self) -> "FrameReader":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def __iter__(self) -> Iterator[FrameItem]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode_all(self) -> None:
        try:
            frames = self._video_frames() if self.sequence.video_path else self._image_frames()
            for item in frames:
                if item.frame is not None:
                    if self.first_size is None:
                        self.first_size = item.original_size
                        if callable(self.size):
                            self.target = self.size(self.first_size)
                    if item.original_size != self.first_size:
                        item = FrameItem(item.index, None, item.original_size, error=
                                         f"frame {self._name(item.index)} is {item.original_size[0]}x"
                                         f"{item.original_size[1]}, the video's first frame "
                                         f"{self.first_size[0]}x{self.first_size[1]}")
                    else:
                        item.original = item.frame
                        item.frame = resize_frame(item.frame, self.target)
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # surfaces in the consumer, not lost on this thread
            self._put(exc)

    def _name(self, index: int) -> str:
        paths = self.sequence.frame_paths
        return repr(paths[index]) if paths else f"{index} of {self.sequence.video_path!r}"

    def _image_frames(self) -> Iterator[FrameItem]:
        for index, path in enumerate(self.sequence.frame_paths or []):
            try:
                frame = read_image(path)
            except ValueError as exc:
                yield FrameItem(index, None, error=str(exc))
                continue
            yield FrameItem(index, frame, frame.shape[:2])

    def _video_frames(self) -> Iterator[FrameItem]:
        import cv2

        capture = cv2.VideoCapture(self.sequence.video_path)
        try:
            for index in range(self.sequence.num_frames):
                ok, bgr = capture.read()
                if not ok:
                    yield FrameItem(index, None, error=
                                    f"OpenCV decoded {index} of the {self.sequence.num_frames} frames that "
                                    f"{self.sequence.video_path!r} declares (a truncated file?); the masks cover "
                                    f"those {index}", truncated=True)
                    return
                yield FrameItem(index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), bgr.shape[:2])
        finally:
            capture.release()
