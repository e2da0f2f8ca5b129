"""What to segment: one `Sequence` per video, found from the INPUT a user gives hmmn-run.

INPUT is a folder of frames, a video file, a DAVIS root (JPEGImages/480p/<seq>,
Annotations/480p/<seq>, ImageSets/<year>/<set>.txt) or a YouTube-VOS root (JPEGImages/<seq>,
Annotations/<seq>, optional meta.json). Only paths are collected here; nothing is decoded.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

from hmmn_ref.errors import HMMNError
from hmmn_ref.media import IMAGE_SUFFIXES, natural_key

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class InputError(HMMNError, ValueError):
    """The INPUT, its annotations or an image set cannot be used; the message says why."""


@dataclasses.dataclass
class Sequence:
    name: str  # output folder name
    frame_names: List[str]  # output PNG names, one per frame, in order ("00000", ...)
    frame_paths: Optional[List[str]] = None  # image files, or None for a video file
    video_path: Optional[str] = None
    fps: Optional[float] = None  # a video file's frame rate (for the overlay video)
    # Frame index -> annotation PNG. DAVIS: frame 0 only. YouTube-VOS: every annotated frame,
    # whose labels that are not yet tracked are new objects.
    annotations: Dict[int, str] = dataclasses.field(default_factory=dict)

    def truncate(self, count: int) -> None:
        """Keep the first `count` frames (and their annotations)."""
        self.frame_names = self.frame_names[:count]
        if self.frame_paths is not None:
            self.frame_paths = self.frame_paths[:count]
        self.annotations = {i: p for i, p in self.annotations.items() if i < count}
        if not self.annotations:
            raise InputError(f"{self.name}: no annotation in the first {count} frames")

    @property
    def num_frames(self) -> int:
        return len(self.frame_names)


@dataclasses.dataclass
class Dataset:
    kind: str  # "frames", "video", "davis" or "youtube-vos"
    sequences: List[Sequence]


def _images(folder: str) -> List[str]:
    return sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES)), key=natural_key)


def _stem(name: str) -> str:
    return os.path.splitext(name)[0]


def discover(path: str, mask: Optional[str] = None, imageset: Optional[str] = None,
             sequences: Optional[List[str]] = None) -> Dataset:
    """Sequences under `path`. `mask` is the first-frame annotation of a single video or folder;
    `imageset` ('2017/val') picks DAVIS sequences; `sequences` restricts a dataset by name."""
    if not os.path.exists(path):
        raise InputError(f"{path!r} does not exist")
    if not os.path.isfile(path) and not os.path.isdir(path):
        raise InputError(f"{path!r} is neither a regular file nor a folder (a FIFO or a device?); give a video file, "
                         "a folder of frames or a dataset root")
    if os.path.isfile(path):
        return Dataset("video", [_video_file(path, mask)])
    if os.path.isdir(os.path.join(path, "JPEGImages", "480p")):
        data = Dataset("davis", _davis(path, imageset))
    elif os.path.isdir(os.path.join(path, "JPEGImages")) and os.path.isdir(os.path.join(path, "Annotations")):
        data = Dataset("youtube-vos", _youtube_vos(path))
    else:
        return Dataset("frames", [_frame_folder(path, mask)])
    if mask:
        raise InputError(f"{path!r} is a {data.kind} dataset: its annotations give the masks; drop --mask")
    if sequences:
        known = {s.name for s in data.sequences}
        unknown = sorted(set(sequences) - known)
        if unknown:
            raise InputError(f"sequences {unknown} are not in {path!r}")
        data.sequences = [s for s in data.sequences if s.name in set(sequences)]
    return data


def input_folders(data: Dataset) -> List[str]:
    """The folders a run reads: each sequence's frame folder and, in a dataset, its annotation
    folder (a single --mask file's folder is not one: OUT/<seq> cannot reach it)."""
    folders = set()
    for s in data.sequences:
        if s.frame_paths:
            folders.add(os.path.dirname(s.frame_paths[0]))
        if data.kind in ("davis", "youtube-vos"):
            folders.update(os.path.dirname(p) for p in s.annotations.values())
    return sorted(folders)


def check_output_outside_inputs(out: str, data: Dataset) -> None:
    """InputError when OUT is an input folder, lies inside one, or contains one: outputs written
    there could replace or mix with the frames or the ground truth."""
    real_out = os.path.realpath(out)
    for folder in input_folders(data):
        real = os.path.realpath(folder)
        if real_out == real:
            where = "is the input folder"
        elif os.path.commonpath([real_out, real]) == real:
            where = "is inside the input folder"
        elif os.path.commonpath([real_out, real]) == real_out:
            where = "contains the input folder"
        else:
            continue
        raise InputError(f"-o {out!r} {where} {folder!r}; give an output folder outside the inputs (nothing was "
                         "written)")


def _need_mask(path: str, mask: Optional[str]) -> str:
    if not mask:
        raise InputError(f"give the first frame's label PNG for {path!r} with --mask FIRST.png")
    if not os.path.isfile(mask):
        raise InputError(f"mask {mask!r} is not a file")
    return mask


def _video_file(path: str, mask: Optional[str]) -> Sequence:
    if not path.lower().endswith(VIDEO_SUFFIXES):
        raise InputError(f"{path!r} is a file but not a video ({', '.join(VIDEO_SUFFIXES)}); give a video, "
                         "a folder of frames or a dataset root")
    import cv2

    image = _image_kind(path)
    if image:
        raise InputError(f"{path!r} is a {image} image, not a video (only its name ends in "
                         f"{os.path.splitext(path)[1]}); give a video file, or a folder of frames")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise InputError(f"OpenCV cannot open the video {path!r}")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
    capture.release()
    if count < 0:
        raise InputError(f"OpenCV opens {path!r} but cannot tell how many frames it holds; is it a video file? "
                         "Give a video, or a folder of frames")
    if count <= 1:
        raise InputError(f"the video {path!r} declares {count} frames; it needs at least two")
    name = _stem(os.path.basename(path))
    return Sequence(name, [f"{i:05d}" for i in range(count)], video_path=path, fps=fps,
                    annotations={0: _need_mask(path, mask)})


_IMAGE_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))


def _image_kind(path: str) -> Optional[str]:
    """'JPEG', 'PNG', ... when the file's first bytes are an image's (a picture renamed .mp4)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)


def _frame_folder(path: str, mask: Optional[str]) -> Sequence:
    names = _images(path)
    if len(names) < 2:
        raise InputError(f"{path!r} holds {len(names)} frames ({', '.join(IMAGE_SUFFIXES)}); it needs at least two, "
                         "or give a video file or a DAVIS / YouTube-VOS root")
    name = os.path.basename(os.path.normpath(path))
    return Sequence(name, [_stem(n) for n in names], [os.path.join(path, n) for n in names],
                    annotations={0: _need_mask(path, mask)})


def _sequence_images(frames_root: str, name: str) -> Tuple[str, List[str]]:
    """(frame folder, its image names) of a dataset sequence; InputError when the folder is missing."""
    folder = os.path.join(frames_root, name)
    if not os.path.isdir(folder):
        raise InputError(f"sequence {name!r} has no frame folder {folder!r}")
    return folder, _images(folder)


def _dataset_sequence(name: str, folder: str, images: List[str], annotations: Dict[int, str]) -> Sequence:
    return Sequence(name, [_stem(n) for n in images], [os.path.join(folder, n) for n in images],
                    annotations=annotations)


def _davis(root: str, imageset: Optional[str]) -> List[Sequence]:
    frames_root = os.path.join(root, "JPEGImages", "480p")
    annotations_root = os.path.join(root, "Annotations", "480p")
    if imageset:
        listing = os.path.join(root, "ImageSets", *imageset.split("/"))
        listing += "" if listing.endswith(".txt") else ".txt"
        if not os.path.isfile(listing):
            raise InputError(f"image set {imageset!r}: {listing!r} does not exist")
        with open(listing) as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = sorted(os.listdir(frames_root), key=natural_key)
    result = []
    for name in names:
        folder, images = _sequence_images(frames_root, name)
        first = os.path.join(annotations_root, name, _stem(images[0]) + ".png") if images else ""
        if not os.path.isfile(first):
            raise InputError(f"sequence {name!r}: no first-frame annotation {first!r}")
        result.append(_dataset_sequence(name, folder, images, {0: first}))
    return result


def _youtube_vos(root: str) -> List[Sequence]:
    frames_root = os.path.join(root, "JPEGImages")
    annotations_root = os.path.join(root, "Annotations")
    meta_path = os.path.join(root, "meta.json")
    if os.path.isfile(meta_path):
        try:
            with open(meta_path) as f:
                names = list(json.load(f)["videos"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{meta_path!r} is not a YouTube-VOS meta.json ({exc})") from None
    else:
        names = sorted(os.listdir(frames_root), key=natural_key)
    result = []
    for name in names:
        folder, images = _sequence_images(frames_root, name)
        index = {_stem(n): i for i, n in enumerate(images)}
        marks = os.path.join(annotations_root, name)
        annotations = {index[_stem(n)]: os.path.join(marks, n)
                       for n in (_images(marks) if os.path.isdir(marks) else []) if _stem(n) in index}
        if not annotations:
            raise InputError(f"sequence {name!r}: no annotation PNG in {marks!r} matches a frame")
        result.append(_dataset_sequence(name, folder, images, dict(sorted(annotations.items()))))
    return result
