"""Reading frames and masks, writing masks: video files, frame folders, palette PNGs."""

from __future__ import annotations

import os
import re
import stat
from typing import List, Optional, Tuple

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def davis_palette() -> List[int]:
    """The DAVIS colour palette (black background, then red, green, yellow, blue, ...)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def natural_key(name: str):
    """Sort key that orders frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: str) -> List[str]:
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES)), key=natural_key)
    if not names:
        raise ValueError(f"{folder!r} holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    return [os.path.join(folder, n) for n in names]


def check_regular(path: str, what: str) -> None:
    """ValueError unless `path` is a regular file: opening a FIFO named like a frame would wait
    for a writer for ever (a folder or a device would fail later, less clearly)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path!r}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValueError(f"{what} {path!r} is {kind}, not an image file")


# PIL's modes of 16-bit (and 32-bit integer) greyscale images: PNG's 16-bit grey opens as one of these.
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_image(path: str) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3]; names the file when it cannot be read. 16-bit grey
    frames are scaled to 8 bits (v * 255 / 65535), not clipped."""
    from PIL import Image, UnidentifiedImageError

    check_regular(path, "frame")
    try:
        with Image.open(path) as image:
            if image.mode in _WIDE_GREY:
                wide = np.asarray(image).astype(np.int64)
                grey = ((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read frame {path!r}: {exc}") from None


def read_frames(source: str, max_frames: Optional[int] = None) -> np.ndarray:
    """Frames of a video file or a folder of images: uint8 [T, H, W, 3] RGB."""
    if os.path.isdir(source):
        paths = list_frames(source)[:max_frames]
        frames = [read_image(p) for p in paths]
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise ValueError(f"frames in {source!r} differ in size: {sorted(sizes)}")
        return np.stack(frames)
    if not os.path.isfile(source):
        raise ValueError(f"{source!r} is neither a video file nor a folder of frames")
    import cv2

    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot open the video {source!r}")
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise ValueError(f"the video {source!r} has no frame OpenCV can decode")
    return np.stack(frames)


LOSSY_FORMATS = ("JPEG", "MPO", "JPEG2000")  # compression noise would become phantom objects


def read_mask(path: str) -> Tuple[np.ndarray, List[int]]:
    """A label PNG (palette, greyscale 8 or 16 bits, or 1-bit) -> (labels uint8 [H, W], palette
    of 768 ints). Labels must lie in 0..255; a lossy (JPEG) file is refused."""
    from PIL import Image, UnidentifiedImageError

    check_regular(path, "mask")
    try:
        with Image.open(path) as image:
            if image.format in LOSSY_FORMATS:
                raise ValueError(f"mask {path!r} is a {image.format} file: its compression noise would become "
                                 "phantom objects; save the mask as a PNG (palette or greyscale)")
            if image.mode == "P":
                return np.asarray(image), list(image.getpalette() or davis_palette())
            if image.mode in ("L", "1"):
                return np.asarray(image).astype(np.uint8), davis_palette()
            if image.mode in _WIDE_GREY:
                return _labels_0_255(np.asarray(image), path), davis_palette()
            raise ValueError(f"mask {path!r} is a {image.mode} image; give a palette or greyscale label PNG")
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read mask {path!r}: {exc}") from None


def _labels_0_255(labels: np.ndarray, path: str) -> np.ndarray:
    """A 16-bit label map as uint8, ValueError naming the labels outside 0..255."""
    values = np.unique(labels)
    outside = [int(v) for v in values if v < 0 or v > 255]
    if outside:
        shown = ", ".join(map(str, outside[:8])) + (", ..." if len(outside) > 8 else "")
        raise ValueError(f"mask {path!r} holds labels {shown}, outside 0..255; a label PNG holds 0 (background) to "
                         "255: renumber its objects")
    return labels.astype(np.uint8)


def write_mask(path: str, labels: np.ndarray, palette: List[int]) -> None:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))  # mode L
    image.putpalette(palette)  # turns it into a palette (P) image
    image.save(path)
