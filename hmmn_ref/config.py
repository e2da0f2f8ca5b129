"""Model configuration: the paper's HMMN, and a small version of the same code.

Every width, depth and matching constant of the model lives here, so that one set of
modules builds both the published network and a fast one for tests and demos.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Optional, Tuple


TRUNKS = ("resnet", "mobilenet_v2")
READ_16_SLOTS = ("all", "guide")  # HMMNConfig.read_16_slots
# MobileNetV2's widths at strides 4, 8, 16 (features.3, .6, .13; hmmn_ref/mobilenet_v2.py TAPS).
MOBILENET_V2_CHANNELS = (24, 32, 96)


@dataclasses.dataclass(frozen=True)
class HMMNConfig:
    """Shapes and constants of an HMMN model.

    The defaults are the published network (ResNet-50 trunk up to layer3, ICCV 2021).
    """

    name: str = "paper"
    # The image trunk: "resnet" (the paper's; the widths below) or "mobilenet_v2" (torchvision's
    # ImageNet MobileNetV2 up to 1/16, hmmn_ref/mobilenet_v2.py; its widths are fixed and the
    # ResNet fields below are not used).
    trunk: str = "resnet"
    # ResNet trunk: stem width, bottleneck widths and depths of res2 (1/4), res3 (1/8), res4 (1/16).
    stem_channels: int = 64
    stage_planes: Tuple[int, int, int] = (64, 128, 256)
    stage_blocks: Tuple[int, int, int] = (3, 4, 6)
    expansion: int = 4
    # Key / value projections per scale.
    key_dim_16: int = 128
    value_dim_16: int = 512
    key_dim_8: int = 128
    value_dim_8: int = 256
    key_dim_4: int = 64
    value_dim_4: int = 128
    # Decoder width.
    decoder_dim: int = 256
    # Matching constants (spec sections 4 and 5).
    flow_window: int = 7  # the previous frame's local flow looks in a 7x7 window
    gaussian_sigma: float = 3.0  # sigma of the previous-frame kernel
    top_k: int = 32  # memory cells read per query cell at 1/8
    top_k_fine: int = 8  # the first of those read at 1/4
    # Keys: None, HMMN's learned 3x3 projections; a number t, the trunk's own maps at each scale,
    # L2-normalised per position and scaled so that the matching's affinity (dot product over
    # sqrt(C)) is their cosine over t: no learned key, so matching keeps what the trunk's training
    # taught it (the key widths must then be the trunk's).
    key_temperature: Optional[float] = None
    # Label propagation inside HMMN (the mobile configuration's): each memory value's last channel is
    # the object's mask averaged to its scale, so the reads carry the propagated mask, and the
    # decoder's logits are the 1/4 read's mask (upsampled, as a logit) plus the decoder's own
    # correction. Needs the memory encoder to hand the mask to its value projections (mobilenet_v2).
    mask_prior: bool = False
    # Which memory slots the 1/16 read covers: "all" (HMMN's: every slot of the bank) or "guide"
    # (the first and the previous frame only, the slots whose weights pick the top-k cells of the
    # 1/8 and 1/4 reads). "guide" is for a model whose decoder does not use the 1/16 readout (the
    # built-in mobile model: its correction is zero), whose masks are then the same as with "all"
    # while match no longer grows with the bank; every slot's track is still carried forward.
    read_16_slots: str = "all"

    def __post_init__(self) -> None:
        if self.top_k_fine > self.top_k:
            raise ValueError(f"top_k_fine ({self.top_k_fine}) must not exceed top_k ({self.top_k})")
        if self.trunk not in TRUNKS:
            raise ValueError(f"unknown trunk {self.trunk!r}; choose one of {', '.join(TRUNKS)}")
        if self.flow_window % 2 != 1:
            raise ValueError(f"flow_window must be odd, got {self.flow_window}")
        if self.key_temperature is not None:
            if not self.key_temperature > 0:
                raise ValueError(f"key_temperature must be positive, got {self.key_temperature}")
            keys = (self.key_dim_4, self.key_dim_8, self.key_dim_16)
            if keys != tuple(self.stage_channels):
                raise ValueError(f"with key_temperature the key widths at 1/4, 1/8, 1/16 must be the trunk's "
                                 f"{tuple(self.stage_channels)}, got {keys}")

        if self.read_16_slots not in READ_16_SLOTS:
            raise ValueError(f"read_16_slots must be one of {', '.join(READ_16_SLOTS)}, got {self.read_16_slots!r}")
        if self.mask_prior and self.trunk != "mobilenet_v2":
            raise ValueError("mask_prior needs the mobilenet_v2 trunk (its memory maps carry the mask)")

    @property
    def stage_channels(self) -> Tuple[int, int, int]:
        """Channels of the trunk's maps at 1/4, 1/8, 1/16 (the paper's res2, res3, res4: 256, 512, 1024)."""
        if self.trunk == "mobilenet_v2":
            return MOBILENET_V2_CHANNELS
        return tuple(p * self.expansion for p in self.stage_planes)  # type: ignore[return-value]

    @property
    def memory_channels(self) -> Tuple[int, int, int]:
        """Channels of the memory encoder's maps at 1/4, 1/8, 1/16: the trunk's, and for MobileNetV2
        two more (the object's mask and the other objects, averaged over each cell)."""
        extra = 2 if self.trunk == "mobilenet_v2" else 0
        return tuple(c + extra for c in self.stage_channels)  # type: ignore[return-value]

    @property
    def memory_from_query(self) -> bool:
        """One trunk pass a frame: the memory encoder's maps are the query encoder's of the same
        frame (MobileNetV2's: the mask does not enter the trunk) and its keys are the query's (unit
        keys), so the exported encode_memory takes encode_query's outputs for the frame instead of
        the frame (core/graphs.py). The model itself is the same either way."""
        return self.trunk == "mobilenet_v2" and self.key_temperature is not None

    @property
    def memory_value_widths(self) -> Tuple[int, int, int]:
        """Channels the memory's value projections give at 1/16, 1/8, 1/4: the value widths, less
        the mask's channel that mask_prior appends as it is."""
        own = 1 if self.mask_prior else 0
        return (self.value_dim_16 - own, self.value_dim_8 - own, self.value_dim_4 - own)

    @property
    def min_cells_16(self) -> int:
        """The fewest 1/16-grid positions a frame must have: the top-k read needs k cells."""
        return self.top_k

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "HMMNConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown HMMNConfig fields: {', '.join(unknown)}")
        values = dict(data)
        for key in ("stage_planes", "stage_blocks"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PAPER = HMMNConfig()

# Same modules and stages, about 1/40 of the parameters: fast on a CPU, for tests and the demo
# model. Needs at least 8 cells on the 1/16 grid (for instance a 64x32 frame).
SMALL = HMMNConfig(
    name="small",
    stem_channels=16,
    stage_planes=(16, 32, 64),
    stage_blocks=(1, 1, 1),
    key_dim_16=32,
    value_dim_16=64,
    key_dim_8=32,
    value_dim_8=32,
    key_dim_4=16,
    value_dim_4=16,
    decoder_dim=32,
    top_k=8,
    top_k_fine=2,
)

# HMMN's memory, matching and decoder over torchvision's ImageNet MobileNetV2 (issue 38): features
# that know real things, at a cost meant for real time on a CPU. Memory and query frames share one
# trunk (module and, in the exported graphs, pass: memory_from_query); the memory's values add the
# mask and the other objects (hmmn_ref/modules.py). Keys
# are the trunk's own unit-length maps at temperature 0.1 (docs/mobile_model.md: learned keys
# scored 66 on box, the same weights with these keys 80). Needs 32 cells on the 1/16 grid (for
# instance 96x128).
# MOBILE is the built-in model's: label propagation, its decoder's correction at zero, so the value
# projections, the decoder and the 1/16 readout do not reach its output: the projections and the
# decoder are at their narrowest (one projected channel beside the mask's, a decoder 8 wide; at
# 480x640 MOBILE_WIDE's widths cost 15-25 % more a frame) and the 1/16 read covers the first and
# the previous frame only (read_16_slots "guide": match does not grow with the bank). MOBILE_WIDE
# has the room a trained correction needs (tools/train_mobile.py --config mobile-wide).
MOBILE_WIDE = HMMNConfig(
    name="mobile-wide",
    trunk="mobilenet_v2",
    key_dim_16=MOBILENET_V2_CHANNELS[2],
    value_dim_16=128,
    key_dim_8=MOBILENET_V2_CHANNELS[1],
    value_dim_8=32,
    key_dim_4=MOBILENET_V2_CHANNELS[0],
    value_dim_4=16,
    key_temperature=0.1,
    mask_prior=True,
    decoder_dim=32,  # the decoder's 1/4 stage dominates its cost: 4 convolutions of d x d at 1/4 per object
    top_k=32,
    top_k_fine=8,
)
MOBILE = dataclasses.replace(MOBILE_WIDE, name="mobile", value_dim_16=2, value_dim_8=2, value_dim_4=2, decoder_dim=8,
                             read_16_slots="guide")

CONFIGS = {"paper": PAPER, "small": SMALL, "mobile": MOBILE, "mobile-wide": MOBILE_WIDE}


def get_config(name: str) -> HMMNConfig:
    """Look up a named configuration ('paper', 'small', 'mobile' or 'mobile-wide')."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown configuration {name!r}; choose one of {sorted(CONFIGS)}") from None
