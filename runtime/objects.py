"""The object table of one video: which object id sits in which channel, and in which group.

Channel 0 is the background; object channels follow in the order objects entered the video,
group after group (a group: the objects that entered on the same frame; each has its own bank).
The table is the only place that maps between ids and channels; the session's buffers, the
results' label maps and object removal all go through it.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import RuntimeInputError


class ObjectTable:
    def __init__(self) -> None:
        self.groups: List[List[int]] = []  # object ids per group, in channel order

    @property
    def ids(self) -> List[int]:
        """Object ids in channel order (channel i + 1 holds ids[i])."""
        return [label for group in self.groups for label in group]

    def group_rows(self) -> List[slice]:
        """Each group's rows among the N object rows (object channel c is row c - 1)."""
        rows, offset = [], 0
        for group in self.groups:
            rows.append(slice(offset, offset + len(group)))
            offset += len(group)
        return rows

    def check_new(self, labels: Sequence[int], max_objects: Optional[int]) -> None:
        """RuntimeInputError unless `labels` can join: not yet objects, within the manifest's max_objects."""
        clash = sorted(set(labels) & set(self.ids))
        if clash:
            raise RuntimeInputError(f"labels {clash} are already objects of this video; new objects need new labels")
        total = len(self.ids) + len(labels)
        if max_objects is not None and total > max_objects:
            raise RuntimeInputError(f"{total} objects exceed the export's limit of {max_objects} (memory.max_objects, "
                                    "its engines' profile); rebuild with hmmn-export --max-objects")

    def add_group(self, labels: Sequence[int]) -> None:
        self.groups.append(list(labels))

    def remove(self, labels: Sequence[int]) -> Tuple[List[int], List[int], List[List[int]]]:
        """Drop objects. -> (channels kept, background first; channels dropped; per group, the
        indices of its objects kept, one list per group before the removal). Empty groups go."""
        unknown = sorted(set(labels) - set(self.ids))
        if unknown:
            raise RuntimeInputError(f"objects {unknown} are not in this video (it has {self.ids})")
        drop = set(labels)
        if not set(self.ids) - drop:
            raise RuntimeInputError("that would remove every object; start a new video instead")
        kept = [0] + [1 + i for i, label in enumerate(self.ids) if label not in drop]
        dropped = [1 + i for i, label in enumerate(self.ids) if label in drop]
        per_group = [[i for i, label in enumerate(group) if label not in drop] for group in self.groups]
        self.groups = [[g[i] for i in keep] for g, keep in zip(self.groups, per_group) if keep]
        return kept, dropped, per_group

    def label_map(self, channels: np.ndarray) -> np.ndarray:
        """Channel indices (an argmax over K channels) -> object ids; uint8, or int32 past 255."""
        ids = np.array([0] + self.ids)
        return ids.astype(np.uint8 if ids.max() < 256 else np.int32)[channels]  # a lookup in the small table
