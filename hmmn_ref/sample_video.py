"""A small built-in video: textured objects moving over a textured background.

Deterministic (seeded) and generated on the fly, so the demo and the tests need no data files.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid, bilinearly upsampled. [H, W]."""
    gh, gw = height // cell + 2, width // cell + 2
    grid = rng.random((gh, gw))
    ys = np.arange(height) / cell
    xs = np.arange(width) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def make_sample_video(
    num_frames: int = 12, height: int = 240, width: int = 432, num_objects: int = 2, seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Returns (frames uint8 [T, H, W, 3] RGB, labels uint8 [T, H, W] with 0 = background).

    Objects are discs and boxes with their own colour and texture, moving on straight lines
    and bouncing off the borders; the background pans slowly.
    """
    if num_objects < 1:
        raise ValueError("num_objects must be >= 1")
    rng = np.random.default_rng(seed)
    bg_height, bg_width = height + 2 * num_frames + 8, width + 4 * num_frames + 8
    background = np.stack([_smooth_noise(rng, bg_height, bg_width, 24) for _ in range(3)], axis=-1)
    background = 0.25 + 0.5 * background
    yy, xx = np.mgrid[0:height, 0:width]
    radius = rng.uniform(0.12, 0.2, num_objects) * min(height, width)
    centre = np.stack([rng.uniform(r, s - r, num_objects) for r, s in ((radius, height), (radius, width))], 1)
    velocity = rng.uniform(-0.025, 0.025, (num_objects, 2)) * np.array([height, width])
    colour = rng.uniform(0.0, 1.0, (num_objects, 3))
    texture = [0.7 + 0.3 * _smooth_noise(rng, height, width, 8) for _ in range(num_objects)]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        image = background[t * 2 : t * 2 + height, t * 4 : t * 4 + width].copy()
        label = np.zeros((height, width), np.uint8)
        for o in range(num_objects):
            dy, dx = yy - centre[o, 0], xx - centre[o, 1]
            if o % 2 == 0:
                inside = dy * dy + dx * dx <= radius[o] ** 2
            else:
                inside = (np.abs(dy) <= radius[o] * 0.8) & (np.abs(dx) <= radius[o])
            image[inside] = colour[o] * texture[o][inside, None]
            label[inside] = o + 1
        frames[t] = np.clip(image * 255.0, 0, 255).astype(np.uint8)
        labels[t] = label
        centre += velocity
        for axis, size in ((0, height), (1, width)):
            out = (centre[:, axis] < radius) | (centre[:, axis] > size - radius)
            velocity[out, axis] *= -1
    return frames, labels
