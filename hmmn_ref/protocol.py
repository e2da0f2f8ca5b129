"""The memory protocol, written once: which frames a video keeps in its 1/16 memory, where a
kept frame goes in a bank of `capacity` slots, and the temporal ranks the 1/16 read uses.

`hmmn_ref.run_video(capacity=...)`, the runtime's `GroupBank` and libhmmn (C++) follow these
rules; docs/protocol.md states them in words. Slots: the group's first frame in slot 0, then
the kept frames; every frame also reads the previous frame in the slot after them. With a
capacity, a kept frame that finds the bank full takes the place of the oldest kept frame after
the first one (in place: slot order is then not temporal order, hence the ranks).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from .errors import HMMNError

# The settings of the rule, their defaults and limits. The manifest records an export's values
# (export/manifest.py, `memory`); libhmmn's copies of the limits (cpp/src/protocol.hpp) are held
# to these by tests/data/protocol_cases.json.
DEFAULT_MEM_EVERY = 5  # the public code's: the first frame and every 5th frame after it are kept
DEFAULT_CAPACITY = 48  # 1/16 slots per group: with mem_every 5 nothing is evicted on videos of up to 237 frames
DEFAULT_MAX_OBJECTS = 8  # objects of a video in an engine's profile (TensorRT builds for 1..max_objects)
MINIMUM = {
    "capacity": (2, " (the first and the previous frame)"),  # slots read: the first frame and the previous one
    "mem_every": (1, ""),
    "max_objects": (1, ""),
}


class SettingsError(HMMNError, ValueError):
    """A protocol setting below its limit."""


def settings_problem(options: bool = False, **settings: Optional[int]) -> str:
    """What is wrong with `settings` (capacity, mem_every, max_objects; None: not given), '' when
    nothing. options: name them as command-line options (--mem-every) instead of arguments."""
    for name, value in settings.items():
        minimum, why = MINIMUM[name]
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
            continue
        if options:
            return f"--{name.replace('_', '-')} {value}: give a whole number >= {minimum}{why}"
        return f"{name} must be a whole number >= {minimum}{why}, got {value!r}"
    return ""


def check_settings(options: bool = False, **settings: Optional[int]) -> None:
    """SettingsError naming the first setting below its limit (see `settings_problem`)."""
    problem = settings_problem(options, **settings)
    if problem:
        raise SettingsError(problem)


def is_kept(frame: int, start: int, mem_every: int) -> bool:
    """Whether `frame` stays in the 1/16 memory of a group whose first frame is `start`."""
    return (frame - start) % mem_every == 0


def slot_ages(slot_frames: Sequence[int]) -> List[int]:
    """For each slot (its frame index), how many slots hold a newer frame: the previous frame,
    read last, is 0; in temporal order the ranks are T-1, ..., 1, 0."""
    return [sum(other > frame for other in slot_frames) for frame in slot_frames]


def place_kept(slot_frames: List[int], frame: int, capacity: Optional[int]) -> Optional[int]:
    """Keep `frame`, the previous frame, which was just read in slot len(slot_frames): returns
    the slot it holds from now on and records it in `slot_frames`, or None when it cannot be
    kept (capacity 2: the first frame and the previous frame only). capacity None: unbounded."""
    read = len(slot_frames) + 1  # slots read this frame, the previous frame's last
    if capacity is None or read < capacity:
        slot_frames.append(frame)  # already in place, right after the kept frames
        return read - 1
    if len(slot_frames) > 1:  # full: the oldest kept frame after the first one makes way
        oldest = min(range(1, len(slot_frames)), key=lambda s: slot_frames[s])
        slot_frames[oldest] = frame
        return oldest
    return None
