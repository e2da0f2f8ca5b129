"""A sequence's outputs, written on a background thread into a work folder, published when complete.

Work folder layout (OUT/.partial/<seq>/): masks/<frame>.png (palette PNGs, the annotation's ids
and palette), probs/<frame>.npz (optional), overlay.mp4 and its poster overlay.png (optional,
segment/overlay_video.py). `check_outputs` reads every file back before outdir.publish moves
them to OUT/<seq>/, OUT/probs/<seq>/ and OUT/overlays/<seq>.mp4 / .png: a file cut short by a
full disk (a video writer can drop frames silently) fails the sequence instead of being published.
"""

from __future__ import annotations

import os
import queue
import threading
import zipfile
from typing import List, Optional

import numpy as np

from hmmn_ref.media import write_mask

from ..core.drawing import overlay, palette_colours
from .overlay_video import OverlayVideo, check_poster, check_video, write_poster

_END = object()


class SequenceWriter:
    """Queue-fed writer for one sequence. Errors on the writer thread re-raise in the caller."""

    def __init__(self, work: str, palette: List[int], *, save_probs: bool = False, overlay: bool = False,
                 fps: float = 10.0, capacity: int = 16) -> None:
        self.work = work
        self.palette = palette
        self.colours = palette_colours(palette)
        self.save_probs = save_probs
        self.overlay = overlay
        self.fps = fps
        os.makedirs(os.path.join(work, "masks"), exist_ok=True)
        if save_probs:
            os.makedirs(os.path.join(work, "probs"), exist_ok=True)
        self._video = None
        self._last_drawn: Optional[np.ndarray] = None  # the poster: the last overlay frame
        self.written: List[str] = []  # frame names, in order, once their files are written
        self._queue: "queue.Queue" = queue.Queue(maxsize=capacity)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._drain, name="write", daemon=True)
        self._thread.start()

    def put(self, name: str, labels: np.ndarray, frame: Optional[np.ndarray] = None,
            probs: Optional[np.ndarray] = None, object_ids: Optional[List[int]] = None) -> None:
        """labels uint8 [H, W]; frame uint8 RGB [H, W, 3] for the overlay; probs float32 [N+1, H, W]."""
        self._raise()
        self._queue.put((name, labels, frame, probs, object_ids))

    def close(self) -> None:
        """Wait until everything is on disk; re-raise a writer error."""
        self._queue.put(_END)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                if self._error is None:
                    self._write(*item)
            if self._video is not None:  # the encoder's last frames reach the file here
                video, self._video = self._video, None
                video.release()
            if self._last_drawn is not None:
                write_poster(os.path.join(self.work, "overlay.png"), self._last_drawn)
        except BaseException as exc:
            self._error = exc
            while self._queue.get() is not _END:  # keep the producer from blocking
                pass
        finally:
            if self._video is not None:
                try:
                    self._video.release()
                except Exception:  # already failing: the first error is the one reported
                    pass

    def _write(self, name, labels, frame, probs, object_ids) -> None:
        write_mask(os.path.join(self.work, "masks", name + ".png"), labels, self.palette)
        if probs is not None and self.save_probs:
            quantised = np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8)  # p = value / 255
            np.savez_compressed(os.path.join(self.work, "probs", name + ".npz"), probs=quantised,
                                object_ids=np.asarray([0] + list(object_ids or []), dtype=np.int32))
        if frame is not None and self.overlay:
            if self._video is None:
                path = os.path.join(self.work, "overlay.mp4")
                self._video = open_video(path, self.fps, (frame.shape[1], frame.shape[0]))
                if not self._video.isOpened():
                    raise OSError(f"cannot write the overlay video {path!r}")
            drawn = overlay(frame, labels, self.colours, index=len(self.written))
            self._video.write(drawn)
            self._last_drawn = drawn
        self.written.append(name)

    def check_outputs(self) -> None:
        """Read back every file of the work folder (after `close`); OSError naming the first one
        that is missing, cut short or unreadable."""
        from PIL import Image

        for name in self.written:
            path = os.path.join(self.work, "masks", name + ".png")
            try:
                with Image.open(path) as image:
                    image.verify()  # every chunk's checksum, without decoding
            except Exception as exc:  # PIL raises several types on a damaged file
                raise OSError(f"the mask {path!r} did not reach the disk intact ({exc})") from None
            if self.save_probs:
                _check_npz(os.path.join(self.work, "probs", name + ".npz"))
        if self.overlay:
            check_video(os.path.join(self.work, "overlay.mp4"), len(self.written))
            check_poster(os.path.join(self.work, "overlay.png"))


def open_video(path: str, fps: float, size):
    """The overlay video of (width, height) RGB frames (overlay_video.OverlayVideo: H.264 MP4)."""
    return OverlayVideo(path, fps, size)


def _check_npz(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # decompresses every member and checks its CRC
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise OSError(f"the probabilities {path!r} did not reach the disk intact ({exc})") from None
    if bad is not None or not {"probs.npy", "object_ids.npy"} <= names:
        raise OSError(f"the probabilities {path!r} did not reach the disk intact")
