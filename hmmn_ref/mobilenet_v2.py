"""MobileNetV2 (Sandler et al., CVPR 2018) with torchvision's parameter names.

Written here from the paper's description (torchvision's wheel does not load its compiled ops
against this torch), so that torchvision's ImageNet file (`mobilenet_v2-b0353104.pth`, found by
hmmn_ref.imagenet_weights) loads with every key matched:

    features.0          3x3 conv, stride 2, 32 channels            ("features.0.0", BN "features.0.1")
    features.1 .. 17    inverted residual blocks, table below      ("features.i.conv.*")
    features.18         1x1 conv to 1280 channels                  ("features.18.0", BN "features.18.1")
    classifier          dropout, linear 1280 -> 1000               ("classifier.1")

`trunk` returns the maps at strides 4, 8, 16 (and 32): what a segmentation model reads.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn

# The paper's table: expansion t, output channels c, repeats n, stride s of the first repeat.
BLOCK_TABLE: Tuple[Tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
IMAGENET_CLASSES = 1000

# Index in `features` of the last layer at each stride (input 1/1): where `trunk` taps.
# features.3 ends the 24-channel stage (1/4), features.6 the 32-channel (1/8), features.13 the
# 96-channel (1/16), features.18 the 1280-channel 1x1 conv (1/32).
TAPS: Dict[int, int] = {4: 3, 8: 6, 16: 13, 32: 18}
TAP_CHANNELS: Dict[int, int] = {4: 24, 8: 32, 16: 96, 32: LAST_CHANNELS}


def conv_bn_relu6(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                  groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BN -> ReLU6; children "0", "1", "2" as torchvision names them."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding=(kernel - 1) // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=False),
    )


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when t = 1) -> 3x3 depthwise (carries the stride) -> 1x1 linear projection.

    The input is added back when the block keeps both resolution and width."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: List[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu6(in_channels, hidden, 1))
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


def feature_layers(last: int = TAPS[32]) -> List[nn.Module]:
    """features.0 .. features.`last` (18: the whole; TAPS[16] = 13: up to 1/16), torchvision's order."""
    layers: List[nn.Module] = [conv_bn_relu6(3, STEM_CHANNELS, 3, stride=2)]
    channels = STEM_CHANNELS
    for expansion, out_channels, repeats, stride in BLOCK_TABLE:
        for i in range(repeats):
            layers.append(InvertedResidual(channels, out_channels, stride if i == 0 else 1, expansion))
            channels = out_channels
    layers.append(conv_bn_relu6(channels, LAST_CHANNELS, 1))
    return layers[: last + 1]


class MobileNetV2(nn.Module):
    """ImageNet classifier (width 1.0). Input: float [B, 3, H, W], ImageNet-normalised RGB."""

    def __init__(self, num_classes: int = IMAGENET_CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(*feature_layers())
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(LAST_CHANNELS, num_classes))

    def trunk(self, x: torch.Tensor, strides: Tuple[int, ...] = (4, 8, 16)) -> Dict[int, torch.Tensor]:
        """{stride: feature map [B, TAP_CHANNELS[stride], ~H/stride, ~W/stride]}; runs only as deep as the
        deepest stride asked (a 1/16 trunk never pays for the 1/32 layers)."""
        unknown = sorted(set(strides) - set(TAPS))
        if unknown:
            raise ValueError(f"MobileNetV2 taps strides {sorted(TAPS)}, not {unknown}")
        wanted = {TAPS[s]: s for s in strides}
        maps: Dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if index in wanted:
                maps[wanted[index]] = x
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [B, num_classes]."""
        pooled = self.trunk(x, (32,))[32].mean(dim=(2, 3))  # global average pool: [B, 1280]
        return self.classifier(pooled)
