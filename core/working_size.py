"""The size a model processes frames at: a size it was trained at, read from its weights' record.

A model segments objects at the scale it learnt them at. A model trained on 96x128 frames only
(the built-in model up to its stage 8) sees objects 2.5 times larger than any it learnt in
240x320 frames, and scores below copying the first mask. So, unless told otherwise, frames are
processed at a size the model knows and the masks are resized back to the frames' own size.

Where the trained sizes come from: the weights' record, the JSON file beside the checkpoint
with the same name (`W.pth` -> `W.json`; `tools/train_demo.py --export` and
`tools/average_weights.py --export` write it there), with the field

    "trained_sizes": [[96, 128]]        # [height, width] of the training frames, one pair each

Any weights can carry one: write (or add the field to) `W.json` beside `W.pth`. A checkpoint
without a record, or a record without the field, gives no rule: frames are processed at their
own size, as before.

The rule (`WorkingSize.size_for`): the trained sizes span a range of areas, from the smallest
to the largest. Frames whose area lies in that range are processed as they are. Other frames are
scaled, keeping their aspect ratio, to the nearest end of the range (the largest trained area for
larger frames, the smallest for smaller ones); each side rounded to a multiple of 16 (the model's
1/16 grid: the training frames needed no padding, so the processing size needs none either), at
least 16, and grown until it has the model's fewest 1/16 cells. With one trained size, 96x128:
240x320, 480x640 and 576x768 frames (4:3) go to 96x128, 480x854 (16:9) to 80x144. With trained
sizes from 96x128 to 480x640: 240x320 and 480x640 frames stay as they are, 576x768 go to 480x640.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional, Tuple

from hmmn_ref.errors import HMMNError
from hmmn_ref.video import cells_16

FIELD = "trained_sizes"
MULTIPLE = 16  # the model's coarsest grid; hmmn_ref.video pads frames to it

Size = Tuple[int, int]


class WorkingSizeError(HMMNError, ValueError):
    """A weights' record whose trained sizes cannot be read; the message names the file."""


def record_path(weights: str) -> str:
    """The record beside a checkpoint: W.pth -> W.json."""
    return os.path.splitext(weights)[0] + ".json"


def parse_trained_sizes(value, where: str = "the record") -> Tuple[Size, ...]:
    """[[H, W], ...] -> ((H, W), ...); WorkingSizeError on anything else."""
    if not isinstance(value, list) or not value:
        raise WorkingSizeError(f"{where}: {FIELD!r} must be a non-empty list of [height, width] pairs, got {value!r}")
    sizes = []
    for pair in value:
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= MULTIPLE for v in pair)):
            raise WorkingSizeError(f"{where}: {FIELD!r} holds {pair!r}; each entry must be [height, width], "
                                   f"integers of at least {MULTIPLE}")
        sizes.append((pair[0], pair[1]))
    return tuple(sizes)


def _round_side(value: float) -> int:
    return max(MULTIPLE, int(round(value / MULTIPLE)) * MULTIPLE)


@dataclasses.dataclass(frozen=True)
class WorkingSize:
    """The trained sizes of one model's weights and where they were read."""

    trained_sizes: Tuple[Size, ...]
    record: Optional[str] = None  # the JSON file they came from
    min_cells: int = 0  # the model's fewest 1/16 cells (config.min_cells_16)

    @classmethod
    def from_record(cls, path: str, min_cells: int = 0) -> Optional["WorkingSize"]:
        """The rule of the record at `path`; None when there is no such file or it has no
        trained sizes. WorkingSizeError when the file or the field cannot be read."""
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError) as exc:
            raise WorkingSizeError(f"the weights' record {path!r} cannot be read: {exc}") from None
        if not isinstance(record, dict) or FIELD not in record:
            return None
        return cls(parse_trained_sizes(record[FIELD], repr(path)), path, min_cells)

    @classmethod
    def for_weights(cls, weights: str, min_cells: int = 0) -> Optional["WorkingSize"]:
        """The rule of a checkpoint's record (W.pth -> W.json), or None without one."""
        return cls.from_record(record_path(weights), min_cells)

    def area_range(self) -> Tuple[int, int]:
        """(smallest, largest) area of the trained sizes, in pixels."""
        areas = [h * w for h, w in self.trained_sizes]
        return min(areas), max(areas)

    def size_for(self, frame_size: Size) -> Optional[Size]:
        """The processing size of HxW frames, or None when that is their own size."""
        height, width = frame_size
        smallest, largest = self.area_range()
        area = height * width
        if smallest <= area <= largest:
            return None
        scale = math.sqrt((smallest if area < smallest else largest) / area)
        size = (_round_side(height * scale), _round_side(width * scale))
        while cells_16(*size) < self.min_cells:
            scale *= 1.25
            size = (_round_side(height * scale), _round_side(width * scale))
        return None if size == (height, width) else size

    def describe(self) -> dict:
        """For summary.json."""
        return {"source": "weights' record", "record": self.record,
                FIELD: [list(s) for s in self.trained_sizes],
                "rule": "frames with an area within the trained sizes' areas as they are; others at the nearest "
                        "end of that range with the frames' aspect ratio, sides rounded to multiples of 16; masks "
                        "resized back to the frames' size (probabilities bilinear, then the argmax)"}

    def rule_sentence(self) -> str:
        """What the rule does, for a log line after 'trained at {sentence()}'."""
        if len(self.trained_sizes) == 1:
            return "only: each video is processed at a size of that area with its own aspect ratio"
        return "(by area): a video of an area outside that range is processed at the nearest end of it with its " \
               "own aspect ratio"

    def sentence(self) -> str:
        """The trained sizes, for a log line: '96x128', or '96x128 to 480x640 (9 sizes)' (by area)."""
        if len(self.trained_sizes) == 1:
            return "{}x{}".format(*self.trained_sizes[0])
        ordered = sorted(self.trained_sizes, key=lambda s: s[0] * s[1])
        return "{}x{} to {}x{} ({} sizes)".format(*ordered[0], *ordered[-1], len(ordered))
