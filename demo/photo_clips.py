"""Generated videos made of real photos, for training the mobile model (issue 38).

The blob generator (demo/synthetic.py) paints noise, stripes and checks: a trunk that sees only
those learns nothing of real things. Here every surface is a photo: the background is a photo seen
by a drifting, zooming, turning camera; each object is a cut-out of another photo (a random smooth
outline over a random crop), moving, turning, scaling and shearing, drawn in depth order so that
objects occlude one another and leave the frame; look-alikes (unlabelled cut-outs of the same photo
as a tracked object) cross the scene; light changes over the whole frame and in a moving band; some
frames are blurred by motion; sensor noise on all. Everything follows from one seed.

    photos = photo_library()                      # the licensed photos found in installed packages
    frames, labels = make_photo_video(7, photos, 8, 192, 256)
    # frames uint8 [T, H, W, 3] RGB; labels uint8 [T, H, W], 0 = background, 1..N tracked objects

The photos come from packages the project installs (scikit-image's bundled data, scikit-learn's two
sample images, matplotlib's sample data); `PHOTO_SOURCES` records each one's licence.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Tuple

import cv2
import numpy as np

from hmmn_ref.errors import HMMNError

# name -> (package, path inside the package, licence as the package states it)
PHOTO_SOURCES: Dict[str, Tuple[str, str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png", "public domain (NASA), scikit-image data"),
    "chelsea": ("skimage", "data/chelsea.png", "CC0 (Stefan van der Walt), scikit-image data"),
    "coffee": ("skimage", "data/coffee.png", "CC0 (Rachel Michetti), scikit-image data"),
    "rocket": ("skimage", "data/rocket.jpg", "public domain (SpaceX), scikit-image data"),
    "camera": ("skimage", "data/camera.png", "CC0 (Lav Varshney), scikit-image data"),
    "coins": ("skimage", "data/coins.png", "no known copyright restrictions, scikit-image data"),
    "brick": ("skimage", "data/brick.png", "CC0 (CC0Textures), scikit-image data"),
    "grass": ("skimage", "data/grass.png", "CC0 (CC0Textures), scikit-image data"),
    "gravel": ("skimage", "data/gravel.png", "CC0 (CC0Textures), scikit-image data"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg", "public domain (NASA), scikit-image data"),
    "immunohistochemistry": ("skimage", "data/ihc.png", "no known copyright restrictions, scikit-image data"),
    "retina": ("skimage", "data/retina.jpg", "CC0 1.0 (Häggström), scikit-image data"),
    "china": ("sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr), scikit-learn sample image"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr), scikit-learn sample image"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                     "public domain (US Navy), matplotlib sample data"),
}


class PhotoLibraryError(HMMNError, RuntimeError):
    """A photo source is missing: the message names the package to install."""


def photo_path(name: str) -> str:
    package, relative, _ = PHOTO_SOURCES[name]
    try:
        module = __import__(package)
    except ImportError:
        raise PhotoLibraryError(f"photo {name!r} comes with the package {package}: pip install "
                                f"{'scikit-image' if package == 'skimage' else 'scikit-learn' if package == 'sklearn' else package}"
                                ) from None
    return os.path.join(os.path.dirname(module.__file__), relative)


def photo_library(names=None, longest: int = 640) -> Dict[str, np.ndarray]:
    """{name: uint8 RGB [H, W, 3]}, each scaled so that its longer side is at most `longest`;
    grey photos are given three equal channels (their colour comes from the clip's tint)."""
    photos = {}
    for name in names or PHOTO_SOURCES:
        path = photo_path(name)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise PhotoLibraryError(f"photo {name!r}: cannot read {path}; reinstall its package")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        scale = longest / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photos[name] = image
    return photos


@dataclasses.dataclass
class Layer:
    """A cut-out: its RGBA patch and its pose over time (centre, angle, scale, shear per frame)."""

    patch: np.ndarray  # float32 [S, S, 3] in [0, 1]
    alpha: np.ndarray  # float32 [S, S]: 1 inside the outline
    centre: np.ndarray  # [2] x, y in pixels at frame 0
    velocity: np.ndarray  # [2] pixels per frame
    acceleration: np.ndarray  # [2] pixels per frame^2
    angle: float
    spin: float  # degrees per frame
    scale: float
    growth: float  # scale factor per frame
    shear: float  # amplitude of a slow shear (a cheap deformation)
    label: int  # 0: a look-alike, not tracked

    def matrix(self, t: int) -> np.ndarray:
        """2x3 affine from patch pixels to frame pixels at frame t."""
        size = self.patch.shape[0]
        centre = self.centre + self.velocity * t + 0.5 * self.acceleration * t * t
        rotation = cv2.getRotationMatrix2D((size / 2, size / 2), self.angle + self.spin * t,
                                           self.scale * self.growth ** t)
        rotation[0, 1] += self.shear * np.sin(0.3 * t)
        rotation[:, 2] += centre - np.array([size / 2, size / 2])
        return rotation


def _outline(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 [S, S]: a smooth random closed outline (radius a sum of a few harmonics), filled."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    theta, radius = np.arctan2(yy, xx), np.hypot(yy, xx)
    edge = np.ones_like(theta)
    for k in range(2, 6):
        edge += rng.uniform(0, 0.35 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    inside = (radius <= 0.42 * size * edge / edge.max()).astype(np.float32)
    return cv2.GaussianBlur(inside, (0, 0), 0.6)  # anti-aliased edge


def _crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    """float32 [S, S, 3] in [0, 1]: a random square crop of `photo`, resized to S, colour-jittered."""
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.25, 0.8) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
    return _jitter(rng, crop.astype(np.float32) / 255.0)


def _jitter(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Per-channel gain and offset, and a flip: a photo seen in other light."""
    image = image * rng.uniform(0.7, 1.25, 3).astype(np.float32) + rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return np.clip(image, 0, 1)


def _layer(rng: np.random.Generator, photo: np.ndarray, height: int, width: int, label: int) -> Layer:
    size = int(rng.uniform(0.25, 0.6) * min(height, width))
    speed = rng.uniform(0, 0.05) * min(height, width)  # pixels per frame
    heading = rng.uniform(0, 2 * np.pi)
    margin = 0.15
    centre = np.array([rng.uniform(margin, 1 - margin) * width, rng.uniform(margin, 1 - margin) * height])
    return Layer(
        patch=_crop(rng, photo, size), alpha=_outline(rng, size), centre=centre,
        velocity=speed * np.array([np.cos(heading), np.sin(heading)]),
        acceleration=rng.normal(0, 0.004 * min(height, width), 2),
        angle=rng.uniform(0, 360), spin=rng.normal(0, 3.0), scale=rng.uniform(0.8, 1.2),
        growth=rng.uniform(0.985, 1.015), shear=rng.uniform(0, 0.15), label=label,
    )


def _camera(rng: np.random.Generator, photo: np.ndarray, height: int, width: int):
    """-> function t -> 2x3 affine from photo pixels to frame pixels: a drifting, zooming, turning view
    that keeps the frame inside the photo (the photo is scaled up until it is large enough)."""
    h, w = photo.shape[:2]
    cover = 1.6 * max(height / h, width / w) * rng.uniform(1.0, 1.5)  # photo pixels -> frame pixels
    drift = rng.normal(0, 0.01, 2) * np.array([width, height])
    zoom, turn = rng.uniform(0.99, 1.01), rng.normal(0, 0.4)

    def matrix(t: int) -> np.ndarray:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), turn * t, cover * zoom ** t)
        m[:, 2] += np.array([width / 2, height / 2]) - np.array([w / 2, h / 2]) + drift * t
        return m

    return matrix


def _tint(rng: np.random.Generator, photo: np.ndarray) -> np.ndarray:
    """Grey photos (three equal channels) get a random colour; others stay as they are."""
    if np.ptp(photo.astype(np.int16), axis=2).max() > 8:
        return photo
    colour = rng.uniform(0.4, 1.0, 3)
    return np.clip(photo.astype(np.float32) * colour, 0, 255).astype(np.uint8)


def make_photo_video(seed: int, photos: Dict[str, np.ndarray], num_frames: int = 8, height: int = 192,
                     width: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """frames uint8 [T, H, W, 3] RGB, labels uint8 [T, H, W] (0 background, 1..N the tracked cut-outs,
    each visible in frame 0)."""
    rng = np.random.default_rng(seed)
    names = sorted(photos)
    pick = lambda: _tint(rng, photos[names[int(rng.integers(len(names)))]])  # noqa: E731
    background = pick()
    camera = _camera(rng, background, height, width)
    tracked = int(rng.integers(1, 4))
    layers = []
    for label in range(1, tracked + 1):
        source = pick()
        layers.append(_layer(rng, source, height, width, label))
        if rng.random() < 0.3:  # a look-alike: another cut-out of the same photo
            layers.append(_layer(rng, source, height, width, 0))
    rng.shuffle(layers)  # depth order: later layers in front
    light = rng.uniform(-0.12, 0.12, 2)  # gain change per frame, start offset
    band = (rng.random() < 0.4, rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.3), rng.uniform(0.1, 0.4))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.zeros((num_frames, height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for t in range(num_frames):
        image = cv2.warpAffine(background, camera(t), (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255.0
        for layer in layers:
            m = layer.matrix(t)
            alpha = cv2.warpAffine(layer.alpha, m, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            patch = cv2.warpAffine(layer.patch, m, (width, height), flags=cv2.INTER_LINEAR)
            image = image * (1 - alpha) + patch * alpha
            inside = alpha[..., 0] > 0.5
            labels[t][inside] = layer.label
        image = image * (1 + light[0] * np.sin(0.2 * t + light[1]))
        if band[0]:  # a band of light or shadow sweeping across
            angle, strength, width_frac = band[1], band[2], band[3]
            position = (xx * np.cos(angle) + yy * np.sin(angle)) / max(height, width)
            centre = -0.5 + t / max(1, num_frames - 1) * 2.0
            image = image * (1 + strength * np.exp(-((position - centre) / width_frac) ** 2))[..., None]
        if rng.random() < 0.2:  # motion blur along a random direction
            length = int(rng.integers(3, 9))
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2] = 1.0 / length
            kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5),
                                                                    rng.uniform(0, 180), 1.0), (length, length))
            image = cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
        image = image + rng.normal(0, 0.015, image.shape).astype(np.float32)
        frames[t] = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return frames, _drop_unseen(labels)


def _drop_unseen(labels: np.ndarray) -> np.ndarray:
    """Tracked objects hidden in frame 0 cannot be followed: they become background; the others are
    numbered 1..K in their order."""
    seen = [v for v in np.unique(labels[0]) if v and (labels[0] == v).sum() >= 0.002 * labels[0].size]
    table = np.zeros(256, np.uint8)
    table[np.array(seen, dtype=np.int64)] = np.arange(1, len(seen) + 1, dtype=np.uint8)
    return table[labels]
