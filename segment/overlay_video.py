"""hmmn-run's overlay video: H.264 in MP4 that browsers play, written with PyAV, and its poster.

PyAV's wheels (BSD-3-Clause) carry FFmpeg (LGPL-3.0+) with the x264 encoder (GPL-2.0+) and
libvpx (BSD-3-Clause); the first encoder of ENCODERS that the installed build has is used. The
file is yuv420p, +faststart (the index first, so a browser starts playing before the end
arrives); yuv420p needs an even width and height, so an odd frame gets its last row or column
repeated. OpenCV's mp4v (MPEG-4 Part 2), written before, is played by neither Chromium nor
Firefox.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Tuple

import numpy as np

ENCODERS = ("libx264", "libvpx-vp9")  # H.264 first: Chromium, Firefox and Safari play it


def available_encoder() -> str:
    """The first of ENCODERS that this PyAV build can encode with; OSError when none."""
    import av

    for name in ENCODERS:
        if name in av.codecs_available:
            return name
    raise OSError(f"the installed PyAV ({av.__version__}) has none of the encoders {list(ENCODERS)}: "
                  "reinstall it from PyPI (pip install --force-reinstall av)")


def even(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> [H + H % 2, W + W % 2, 3], the last row / column repeated."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class OverlayVideo:
    """An MP4 written frame by frame: write(rgb uint8 [H, W, 3]), then release()."""

    def __init__(self, path: str, fps: float, size: Tuple[int, int], encoder: Optional[str] = None) -> None:
        import av

        self.path = path
        width, height = size
        self._container = av.open(path, "w", format="mp4", options={"movflags": "+faststart"})
        try:
            rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(10)
            self._stream = self._container.add_stream(encoder or available_encoder(), rate=rate)
            self._stream.width, self._stream.height = width + width % 2, height + height % 2
            self._stream.pix_fmt = "yuv420p"
        except BaseException:
            self._container.close()
            raise

    def isOpened(self) -> bool:  # the name OpenCV's writer has, which the writer and its tests use
        return self._container is not None

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even(rgb)), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def release(self) -> None:
        """Flush the encoder and close the file (once)."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        finally:
            container.close()


def count_frames(path: str) -> Tuple[int, str]:
    """(frames decoded, codec name) of a video file; (0, '') when it cannot be opened or decoded."""
    import av

    count, codec = 0, ""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            for _ in container.decode(stream):
                count += 1
    except (av.FFmpegError, IndexError, OSError):
        pass
    return count, codec


def check_video(path: str, frames: int) -> None:
    """OSError unless every one of `frames` frames decodes back from `path` (a full disk cuts a
    video short without an error while it is written)."""
    count, _ = count_frames(path)
    if count != frames:
        raise OSError(f"the overlay video {path!r} holds {count} of its {frames} frames (disk full?)")


def write_poster(path: str, rgb: np.ndarray) -> None:
    """The poster: one overlay frame as a PNG, shown before the video plays."""
    from PIL import Image

    Image.fromarray(rgb).save(path, format="PNG")


def check_poster(path: str) -> None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # PIL raises several types on a damaged file
        raise OSError(f"the overlay poster {path!r} did not reach the disk intact ({exc})") from None
