"""Generated videos with ground truth, for the demo model's training, validation and the demo.

Each video: a textured background seen by a drifting, slowly zooming camera; 1..3 tracked
objects and up to 2 look-alike distractors (unlabelled), each a textured blob with its own
shape, moving, turning and scaling, drawn in depth order (so they occlude one another), and
free to enter or leave the frame. Everything follows from one seed.

    frames, labels = make_video(seed=7, num_frames=24, height=96, width=128)
    # frames uint8 [T, H, W, 3] RGB; labels uint8 [T, H, W], 0 = background, 1..N objects
    frames, labels = make_video(7, 24, 96, 128, variety=VARIED)  # + blur, moving light, leave and return
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

import numpy as np


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1], [H, W]: a random grid every `cell` pixels, bilinearly upsampled."""
    gh, gw = int(height / cell) + 2, int(width / cell) + 2
    grid = rng.random((gh, gw))
    ys, xs = np.arange(height) / cell, np.arange(width) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def texture(rng: np.random.Generator, size: int, base: np.ndarray, contrast: float) -> np.ndarray:
    """A square RGB texture [S, S, 3] in [0, 1] around colour `base`: noise, stripes or checks."""
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == 0:
        pattern = smooth_noise(rng, size, size, rng.uniform(3, 10))
    elif kind == 1:
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 9)
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    else:
        freq = rng.integers(2, 6)
        pattern = ((np.floor(xx * freq * 2) + np.floor(yy * freq * 2)) % 2).astype(float)
    second = np.clip(base + rng.uniform(-0.35, 0.35, 3), 0, 1)
    mix = contrast * pattern[..., None]
    return np.clip(base * (1 - mix) + second * mix, 0, 1)


@dataclasses.dataclass
class Blob:
    """A textured shape: radius(theta) = size * (1 + sum_k a_k cos(k theta + phi_k))."""

    texture: np.ndarray  # [S, S, 3]
    size: float
    harmonics: np.ndarray  # [K, 3]: k, a_k, phi_k
    centre: np.ndarray  # [2] y, x in pixels
    velocity: np.ndarray  # [2] pixels per frame
    angle: float
    spin: float  # radians per frame
    scale: float
    growth: float  # scale factor per frame
    label: int  # 0 for distractors
    turn_at: int = -1  # the frame after which the motion reverses (-1: never): leave, then come back
    age: int = 0  # frames advanced

    def coverage(self, yy: np.ndarray, xx: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inside [H, W] bool, texture coordinates u, v in [0, 1))."""
        dy, dx = (yy - self.centre[0]) / self.scale, (xx - self.centre[1]) / self.scale
        c, s = np.cos(-self.angle), np.sin(-self.angle)
        ly, lx = c * dy - s * dx, s * dy + c * dx  # object-local coordinates
        radius = np.hypot(ly, lx)
        theta = np.arctan2(ly, lx)
        edge = np.ones_like(theta)
        for k, a, phi in self.harmonics:
            edge += a * np.cos(k * theta + phi)
        inside = radius <= self.size * edge
        u = (lx / (2.6 * self.size) + 0.5) % 1.0
        v = (ly / (2.6 * self.size) + 0.5) % 1.0
        return inside, u, v

    def advance(self) -> None:
        self.centre = self.centre + self.velocity
        self.angle += self.spin
        self.scale *= self.growth
        self.age += 1
        if self.age == self.turn_at:
            self.velocity = -self.velocity

    def reach(self) -> float:
        """The farthest the outline gets from the centre, in pixels (at scale 1)."""
        return self.size * (1 + float(np.abs(self.harmonics[:, 1]).sum()))


@dataclasses.dataclass(frozen=True)
class Variety:
    """What makes videos harder than the plain generator. Its draws come from a second rng, so a
    seed's plain video (Variety() or PLAIN) stays what it always was.
    motion_blur: the chance that a frame is smeared by camera motion (3 px to 1/16 of the short side);
    lighting: the strength of a band of light and shadow sweeping across the scene (0.3: +-30 %);
    leave_return: the chance that one tracked object leaves the frame and comes back later."""

    motion_blur: float = 0.0
    lighting: float = 0.0
    leave_return: float = 0.0

    def __post_init__(self) -> None:
        for name in ("motion_blur", "lighting", "leave_return"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Variety.{name} = {getattr(self, name)}: give a value in [0, 1]")


PLAIN = Variety()
VARIED = Variety(motion_blur=0.3, lighting=0.3, leave_return=0.5)
VARIETIES = {"plain": PLAIN, "varied": VARIED}  # names for the command lines


def _blob(rng: np.random.Generator, height: int, width: int, label: int, like: "Blob | None") -> Blob:
    small = min(height, width)
    if like is not None:  # a distractor that looks like a tracked object
        tex = np.clip(like.texture[::-1] * rng.uniform(0.9, 1.1), 0, 1)
        harmonics = like.harmonics.copy()
        size = like.size * rng.uniform(0.8, 1.2)
    else:
        tex = texture(rng, 48, rng.uniform(0.05, 0.95, 3), rng.uniform(0.3, 0.8))
        harmonics = np.stack([rng.integers(2, 6, 3), rng.uniform(0.0, 0.3, 3), rng.uniform(0, 2 * np.pi, 3)], 1)
        size = rng.uniform(0.1, 0.22) * small
    speed = rng.uniform(0.3, 3.0) * small / 96
    heading = rng.uniform(0, 2 * np.pi)
    return Blob(
        texture=tex, size=size, harmonics=harmonics,
        centre=np.array([rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width]),
        velocity=speed * np.array([np.sin(heading), np.cos(heading)]),
        angle=rng.uniform(0, 2 * np.pi), spin=rng.uniform(-0.08, 0.08), scale=1.0,
        growth=float(np.exp(rng.uniform(-0.015, 0.015))), label=label,
    )


def make_video(seed: int, num_frames: int = 24, height: int = 96, width: int = 128,
               max_objects: int = 3, max_distractors: int = 2,
               variety: Variety = PLAIN) -> Tuple[np.ndarray, np.ndarray]:
    """frames uint8 [T, H, W, 3] RGB, labels uint8 [T, H, W]; every object visible on frame 0."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 1])  # the variety's draws; `rng` draws what it always did
    # Background: a larger canvas the camera pans over and zooms into.
    margin = 4 * num_frames + 16
    canvas_h, canvas_w = height + 2 * margin, width + 2 * margin
    canvas = np.stack([smooth_noise(rng, canvas_h, canvas_w, rng.uniform(6, 30)) for _ in range(3)], -1)
    canvas = 0.2 + 0.6 * (0.6 * canvas + 0.4 * texture(rng, max(canvas_h, canvas_w), rng.uniform(0.2, 0.8, 3),
                                                       0.5)[:canvas_h, :canvas_w])
    pan = rng.uniform(-1.5, 1.5, 2) * min(height, width) / 96
    zoom = float(np.exp(rng.uniform(-0.004, 0.004)))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)  # [H, W] pixel coordinates, every frame's
    while True:
        objects = [_blob(rng, height, width, i + 1, None) for i in range(rng.integers(1, max_objects + 1))]
        distractors = [_blob(rng, height, width, 0, objects[rng.integers(len(objects))])
                       for _ in range(rng.integers(0, max_distractors + 1))]
        layers: List[Blob] = objects + distractors
        rng.shuffle(layers)  # depth order: later layers occlude earlier ones
        first = _render_labels(layers, yy, xx)
        if all((first == o.label).sum() >= 0.01 * height * width for o in objects):
            break
    if extra.random() < variety.leave_return:
        _plan_leave_and_return(extra, objects[extra.integers(len(objects))], height, width, num_frames)
    light = _light(extra, variety.lighting, yy, xx) if variety.lighting > 0 else None
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        scale = zoom ** t
        cy, cx = canvas_h / 2 + pan[0] * t, canvas_w / 2 + pan[1] * t
        sy = np.clip((cy + (yy - height / 2) / scale).astype(int), 0, canvas_h - 1)
        sx = np.clip((cx + (xx - width / 2) / scale).astype(int), 0, canvas_w - 1)
        image = canvas[sy, sx]
        label = np.zeros((height, width), np.uint8)
        for blob in layers:
            inside, u, v = blob.coverage(yy, xx)
            size = blob.texture.shape[0]
            image[inside] = blob.texture[(v[inside] * size).astype(int), (u[inside] * size).astype(int)]
            label[inside] = blob.label
            blob.advance()
        if light is not None:
            image = image * light(t)[..., None]
        if extra.random() < variety.motion_blur:
            image = _motion_blur(extra, image)
        shade = 1.0 + 0.08 * np.sin(0.3 * t + seed)  # global illumination flicker
        frames[t] = np.clip(image * shade * 255.0 + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
        labels[t] = label
    return frames, labels


def _plan_leave_and_return(rng: np.random.Generator, blob: Blob, height: int, width: int, num_frames: int) -> None:
    """Send `blob` out through its nearest border, keep it out for a few frames, bring it back on
    the reversed path. Left as it was when the video is too short for the trip at a sane speed."""
    reach = blob.reach() * max(1.0, blob.growth) ** num_frames
    y, x = blob.centre
    exits = {(-1, 0): y + reach, (1, 0): height - y + reach, (0, -1): x + reach, (0, 1): width - x + reach}
    direction, distance = min(exits.items(), key=lambda item: item[1])
    speed = rng.uniform(2.0, 5.0) * min(height, width) / 96
    out_at = int(np.ceil(distance / speed))  # first frame fully outside
    away = max(1, int(round(num_frames * rng.uniform(0.04, 0.12))))  # frames out on each side of the turn
    if out_at + 2 * away + 2 > num_frames:
        return
    blob.velocity = speed * np.array(direction, dtype=np.float64)
    blob.turn_at = out_at + away


def _light(rng: np.random.Generator, strength: float, yy: np.ndarray, xx: np.ndarray):
    """yy, xx [H, W] pixel coordinates -> light(t): gain [H, W] of a band of light and shadow
    sweeping across the frame."""
    height, width = yy.shape
    angle = rng.uniform(0, 2 * np.pi)
    wavelength = rng.uniform(0.8, 2.0) * max(height, width)
    phase = 2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / wavelength + rng.uniform(0, 2 * np.pi)
    amplitude, sweep = strength * rng.uniform(0.5, 1.0), rng.uniform(0.05, 0.2)  # radians per frame
    return lambda t: 1.0 + amplitude * np.cos(phase - sweep * t)


def _motion_blur(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """image [H, W, 3] -> the mean of copies shifted along a random line (camera shake)."""
    height, width = image.shape[:2]
    length = int(rng.integers(3, max(3, min(height, width) // 16) + 1))
    angle = rng.uniform(0, np.pi)
    padded = np.pad(image, ((length, length), (length, length), (0, 0)), mode="edge")
    out = np.zeros_like(image)
    for step in np.linspace(-(length - 1) / 2, (length - 1) / 2, length):
        dy, dx = int(round(step * np.sin(angle))), int(round(step * np.cos(angle)))
        out += padded[length + dy:length + dy + height, length + dx:length + dx + width]
    return out / length


def _render_labels(layers: List[Blob], yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """yy, xx [H, W] pixel coordinates -> labels uint8 [H, W] of the layers as they stand."""
    label = np.zeros(yy.shape, np.uint8)
    for blob in layers:
        inside, _, _ = blob.coverage(yy, xx)
        label[inside] = blob.label
    return label


def write_davis(root: str, names_and_seeds, num_frames: int, height: int, width: int, split: str,
                variety: Variety = PLAIN) -> None:
    """Write videos in the DAVIS layout: JPEGImages/480p/<name>/, Annotations/480p/<name>/
    (palette PNGs, every frame), ImageSets/2017/<split>.txt."""
    import os

    from PIL import Image

    from hmmn_ref.media import davis_palette

    palette = davis_palette()
    names = []
    for name, seed in names_and_seeds:
        frames, labels = make_video(seed, num_frames, height, width, variety=variety)
        image_dir = os.path.join(root, "JPEGImages", "480p", name)
        mask_dir = os.path.join(root, "Annotations", "480p", name)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(mask_dir, exist_ok=True)
        for t in range(num_frames):
            Image.fromarray(frames[t]).save(os.path.join(image_dir, f"{t:05d}.jpg"), quality=95)
            mask = Image.fromarray(labels[t])
            mask.putpalette(palette)
            mask.save(os.path.join(mask_dir, f"{t:05d}.png"))
        names.append(name)
    sets = os.path.join(root, "ImageSets", "2017")
    os.makedirs(sets, exist_ok=True)
    with open(os.path.join(sets, f"{split}.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
