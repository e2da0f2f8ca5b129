"""The trainable modules of HMMN: encoders, key/value projections, decoder (spec section 2)."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import HMMNConfig
from .mobilenet_v2 import TAPS, feature_layers
from .resnet import Trunk

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _NormalisedTrunk(Trunk):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, frame: torch.Tensor) -> torch.Tensor:
        return (frame - self.mean) / self.std


class EncoderQ(_NormalisedTrunk):
    """Query encoder: frame [B, 3, H, W] in [0, 1] -> r4, r3, r2."""

    def __init__(self, cfg: HMMNConfig) -> None:
        super().__init__()
        self.build_trunk(cfg)

    def forward(self, frame: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.stages(self.conv1(self.normalise(frame)))


class EncoderM(_NormalisedTrunk):
    """Memory encoder: frame [1, 3, H, W] (the frame of all B objects), mask and others
    [B, 1, H, W] -> r4, r3, r2 [B, ...]. The mask enters at the stem: one trunk pass per object."""

    def __init__(self, cfg: HMMNConfig) -> None:
        super().__init__()
        c = cfg.stem_channels
        # Registered before the trunk: the published state dict lists them first.
        self.conv1_m = nn.Conv2d(1, c, 7, stride=2, padding=3, bias=False)
        self.conv1_o = nn.Conv2d(1, c, 7, stride=2, padding=3, bias=False)
        self.build_trunk(cfg)

    def forward(
        self, frame: torch.Tensor, mask: torch.Tensor, others: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = frame.expand(mask.shape[0], -1, -1, -1)
        stem = self.conv1(self.normalise(frames)) + self.conv1_m(mask) + self.conv1_o(others)
        return self.stages(stem)


class MobileEncoderQ(nn.Module):
    """Query encoder over MobileNetV2 (features.0-13, torchvision's names): frame [B, 3, H, W] in
    [0, 1] -> r4 [B, 96, H/16, W/16], r3 [B, 32, H/8, W/8], r2 [B, 24, H/4, W/4]."""

    def __init__(self, cfg: HMMNConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.features = nn.Sequential(*feature_layers(TAPS[16]))

    def forward(self, frame: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = (frame - self.mean) / self.std
        taps = {}  # only the three tapped maps are kept
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in (TAPS[4], TAPS[8], TAPS[16]):
                taps[index] = x
        return taps[TAPS[16]], taps[TAPS[8]], taps[TAPS[4]]


class MobileEncoderM(MobileEncoderQ):
    """Memory encoder over MobileNetV2: the query encoder's trunk (HMMN shares the module: one set of
    ImageNet weights), then the object's mask and the other objects, averaged over each map's cells,
    appended to each map for the value projections. frame [1, 3, H, W], mask and others
    [B, 1, H, W] -> r4 [B, 96 + 2, H/16, W/16], r3 [B, 32 + 2, H/8, W/8], r2 [B, 24 + 2, H/4, W/4].
    The mask does not enter the trunk, so the frame's maps are computed once for all B objects."""

    def forward(
        self, frame: torch.Tensor, mask: torch.Tensor, others: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return with_masks(super().forward(frame), mask, others)


def with_masks(maps, mask: torch.Tensor, others: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The frame's trunk maps (r4, r3, r2: [1, C, h, w] at 1/16, 1/8, 1/4) with the object's mask
    and the other objects [B, 1, H, W] averaged to each map's cells and appended: [B, C + 2, h, w]."""
    masks = torch.cat([mask, others], dim=1)
    b = masks.shape[0]
    return tuple(torch.cat([x.expand(b, -1, -1, -1), F.avg_pool2d(masks, s)], dim=1) for x, s in zip(maps, (16, 8, 4)))


def query_encoder(cfg: HMMNConfig) -> nn.Module:
    return MobileEncoderQ(cfg) if cfg.trunk == "mobilenet_v2" else EncoderQ(cfg)


def memory_encoder(cfg: HMMNConfig) -> nn.Module:
    return MobileEncoderM(cfg) if cfg.trunk == "mobilenet_v2" else EncoderM(cfg)


class UnitKey(nn.Module):
    """A parameter-free key: the map itself, L2-normalised per position and scaled by
    sqrt(sqrt(C) / temperature), so that matching's affinity q.k / sqrt(C) is cos(q, k) / temperature.
    [B, C, H, W] -> [B, C, H, W]."""

    def __init__(self, channels: int, temperature: float) -> None:
        super().__init__()
        self.scale = math.sqrt(math.sqrt(channels) / temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=1, eps=1e-6)


class KeyValue(nn.Module):
    """A key and, unless key-only, a 3x3 value projection. The key is a 3x3 projection or, with a
    key_temperature, a UnitKey (key_dim must then be its input's width). key_in: the key reads only
    the first key_in channels (the mobile memory maps: the trunk's, not the appended masks).
    mask_value: the value's last channel is input channel key_in (the mobile memory maps' object
    mask) as it is, the projection giving the other value_dim - 1."""

    def __init__(self, in_dim: int, key_dim: int, value_dim: Optional[int], key_in: Optional[int] = None,
                 key_temperature: Optional[float] = None, mask_value: bool = False) -> None:
        super().__init__()
        if mask_value and (key_in is None or not value_dim):
            raise ValueError("mask_value needs key_in (the mask's channel) and a value")
        self.key_in = key_in
        self.mask_value = mask_value
        if key_temperature is None:
            self.Key = nn.Conv2d(key_in or in_dim, key_dim, 3, padding=1)
        else:
            self.Key = UnitKey(key_dim, key_temperature)
        projected = value_dim - 1 if mask_value else value_dim
        self.Value = nn.Conv2d(in_dim, projected, 3, padding=1) if value_dim else None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        value = self.Value(x) if self.Value is not None else None
        if self.mask_value:
            value = torch.cat([value, x[:, self.key_in : self.key_in + 1]], dim=1)
        return self.Key(x if self.key_in is None else x[:, : self.key_in]), value


class ResBlock(nn.Module):
    """Pre-activation residual block without BN: x + conv2(relu(conv1(relu(x))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def upsample_by_products(x: torch.Tensor, factor: int) -> torch.Tensor:
    """upsample(x[:, None], factor)[:, 0] for x [N, h, w], as two matrix products: rows
    [factor*h, h] @ x @ columns [w, factor*w]. Each output is the same two-term sum as the
    bilinear resize's, plus exact zeros. OpenVINO's CPU plugin resized [1, 120, 160] to 480x640
    in 4.6 ms and multiplies in 1.1."""
    rows = _bilinear_matrix(x.shape[-2], factor)
    columns = _bilinear_matrix(x.shape[-1], factor).transpose(0, 1)
    return torch.matmul(torch.matmul(rows, x), columns)


def plane_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.softmax(x, dim) written out (max, exp, sum, divide) for a dimension of a few planes
    (classes, objects) over a full-size image: ONNX Runtime runs a Softmax on any axis but the
    last by transposing, 10-17 ms for [2, 480, 640]; these element-wise ops over whole planes
    take about 1."""
    shifted = torch.exp(x - torch.amax(x, dim=dim, keepdim=True))
    return shifted / shifted.sum(dim=dim, keepdim=True)


def _bilinear_matrix(size: int, factor: int) -> torch.Tensor:
    """[factor*size, size]: output row factor*i + r reads input i + offset_r, offset_r = (2r + 1 -
    factor) / (2 factor) (align_corners=False), clamped to the edges, with the tent weights
    max(0, 1 - |j - position|). Built so that a graph run in BF16 computes it exactly: the cell
    distances j - i are integers (only 0 and +-1 weigh), the offsets are k / (2 factor)."""
    cells = torch.arange(size)
    phase = torch.arange(factor)
    offset = (2 * phase + 1 - factor).to(torch.float32) / float(2 * factor)  # [factor]
    below_first = (cells == 0)[:, None] & (2 * phase + 1 < factor)[None, :]  # [size, factor]
    past_last = (cells == size - 1)[:, None] & (2 * phase + 1 > factor)[None, :]
    offset = offset[None, :] * (1.0 - (below_first | past_last).to(torch.float32))  # edge: the cell itself
    distance = (cells[None, :] - cells[:, None]).to(torch.float32)  # [size i, size j]: j - i
    weight = torch.relu(1.0 - torch.abs(distance[:, None, :] - offset[:, :, None]))  # [size, factor, size]
    return weight.reshape(size * factor, size)


class Refine(nn.Module):
    """refine(f, pm, mem) = ResMM(ResFS(convFS(f) + convMemory(mem)) + up2(pm))."""

    def __init__(self, skip_dim: int, memory_dim: int, planes: int) -> None:
        super().__init__()
        self.convFS = nn.Conv2d(skip_dim, planes, 3, padding=1)
        self.convMemory = nn.Conv2d(memory_dim, planes, 3, padding=1, bias=False)
        self.ResFS = ResBlock(planes)
        self.ResMM = ResBlock(planes)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.from_skip_features(self.convFS(skip), coarse, memory)

    def from_skip_features(self, fs: torch.Tensor, coarse: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The same with convFS(skip) computed beforehand (it does not depend on the object)."""
        s = self.ResFS(fs + self.convMemory(memory))
        return self.ResMM(s + upsample(coarse, 2))


PRIOR_CLAMP = 1e-4  # the prior's share is kept inside [1e-4, 1 - 1e-4]: logits within +-9.2


def prior_logits(propagated: torch.Tensor) -> torch.Tensor:
    """The mask read at 1/4 [N, 1, H/4, W/4] (a foreground share in [0, 1]) -> two-class logits
    [N, 2, H, W] whose softmax is that share upsampled bilinearly: (0, logit(p))."""
    return share_logits(upsample(propagated, 4))


def share_logits(p: torch.Tensor) -> torch.Tensor:
    """A foreground share at full size [N, 1, H, W] -> two-class logits [N, 2, H, W], (0, logit(p)),
    with p kept inside PRIOR_CLAMP."""
    p = p.clamp(PRIOR_CLAMP, 1.0 - PRIOR_CLAMP)
    return torch.cat([torch.zeros_like(p), torch.log(p / (1.0 - p))], dim=1)


class Decoder(nn.Module):
    """m4 [N, 2*Cv16, h, w], r3, r2 (query skips, expanded to N), m3, m2 -> logits [N, 2, H, W].
    With cfg.mask_prior, m2's last channel is the object's mask read at 1/4, and the logits are its
    prior_logits plus the decoder's output (a correction to label propagation)."""

    def __init__(self, cfg: HMMNConfig) -> None:
        super().__init__()
        self.mask_prior = cfg.mask_prior
        d = cfg.decoder_dim
        c2, c3, _ = cfg.stage_channels
        self.convFM = nn.Conv2d(2 * cfg.value_dim_16, d, 3, padding=1)
        self.ResMM = ResBlock(d)
        self.RF3 = Refine(c3, cfg.value_dim_8, d)
        self.RF2 = Refine(c2, cfg.value_dim_4, d)
        self.pred2 = nn.Conv2d(d, 2, 3, padding=1)

    def forward(
        self, m4: torch.Tensor, r3: torch.Tensor, r2: torch.Tensor, m3: torch.Tensor, m2: torch.Tensor
    ) -> torch.Tensor:
        return self.from_parts(self.convFM(m4), self.RF3.convFS(r3), self.RF2.convFS(r2), m3, m2)

    def from_parts(
        self, fm: torch.Tensor, fs3: torch.Tensor, fs2: torch.Tensor, m3: torch.Tensor, m2: torch.Tensor
    ) -> torch.Tensor:
        """Decode from convFM(m4) and the refine stages' convFS(skip) outputs -> logits [N, 2, H, W]."""
        logits = upsample(self._two_class(fm, fs3, fs2, m3, m2), 4)
        return logits + prior_logits(m2[:, -1:]) if self.mask_prior else logits

    def foreground(
        self, fm: torch.Tensor, fs3: torch.Tensor, fs2: torch.Tensor, m3: torch.Tensor, m2: torch.Tensor
    ) -> torch.Tensor:
        """softmax(from_parts(...), dim=1)[:, 1], the object's probability [N, H, W], with the x4
        upsampling done by matrix products (the exported decode graph's form; hmmn_ref's loop
        keeps from_parts). The same arithmetic otherwise: where the probability is within 1e-6 of
        0 or 1, its logit has only a few significant bits in float32, and another formula (a
        sigmoid of the margin) moved the aggregate's logits there by 0.7 at 15."""
        two = self._two_class(fm, fs3, fs2, m3, m2).float()
        n, _, h, w = two.shape
        logits = upsample_by_products(two.reshape(n * 2, h, w), 4).reshape(n, 2, 4 * h, 4 * w)
        if self.mask_prior:
            logits = logits + share_logits(upsample_by_products(m2[:, -1].float(), 4)[:, None])
        return plane_softmax(logits, dim=1)[:, 1]

    def _two_class(
        self, fm: torch.Tensor, fs3: torch.Tensor, fs2: torch.Tensor, m3: torch.Tensor, m2: torch.Tensor
    ) -> torch.Tensor:
        """The decoder's two-class logits at 1/4 [N, 2, H/4, W/4] (before the prior)."""
        x = self.ResMM(fm)
        x = self.RF3.from_skip_features(fs3, x, m3)
        x = self.RF2.from_skip_features(fs2, x, m2)
        return self.pred2(F.relu(x))
