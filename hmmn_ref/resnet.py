"""ResNet trunk (stem + three bottleneck stages) with torchvision's parameter names.

Our own code, so the reference needs neither torchvision nor a download; the names match
torchvision's ResNet-50 so the published HMMN checkpoint loads as it is.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .config import HMMNConfig


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carries the stride) -> 1x1 x expansion, BN after each, projection shortcut."""

    def __init__(self, in_channels: int, planes: int, stride: int, expansion: int) -> None:
        super().__init__()
        out_channels = planes * expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def make_stage(in_channels: int, planes: int, blocks: int, stride: int, expansion: int) -> nn.Sequential:
    """One ResNet stage; the first block changes resolution and width."""
    layers = [Bottleneck(in_channels, planes, stride, expansion)]
    for _ in range(1, blocks):
        layers.append(Bottleneck(planes * expansion, planes, 1, expansion))
    return nn.Sequential(*layers)


class Trunk(nn.Module):
    """Stem and stages res2 (1/4), res3 (1/8), res4 (1/16).

    Subclasses register their own extra stem convolutions before calling `build_trunk`,
    so the parameter order of the published state dict is kept.
    """

    def build_trunk(self, cfg: HMMNConfig) -> None:
        c = cfg.stem_channels
        self.conv1 = nn.Conv2d(3, c, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=False)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        p2, p3, p4 = cfg.stage_planes
        b2, b3, b4 = cfg.stage_blocks
        e = cfg.expansion
        self.res2 = make_stage(c, p2, b2, 1, e)
        self.res3 = make_stage(p2 * e, p3, b3, 2, e)
        self.res4 = make_stage(p3 * e, p4, b4, 2, e)

    def stages(self, stem: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """stem: pre-BN output of the 7x7 stem [B, c, H/2, W/2] -> r4, r3, r2."""
        x = self.maxpool(self.relu(self.bn1(stem)))
        r2 = self.res2(x)  # [B, 256, H/4, W/4] (paper widths)
        r3 = self.res3(r2)  # [B, 512, H/8, W/8]
        r4 = self.res4(r3)  # [B, 1024, H/16, W/16]
        return r4, r3, r2
