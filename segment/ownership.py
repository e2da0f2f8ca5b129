"""Which outputs hmmn-run wrote: a record in each published sequence folder, with file hashes.

    OUT/<seq>/.hmmn-run.json   {"format": MARKER_FORMAT, "sequence": <seq>, "run_id": ...,
                                "files": {path under OUT: SHA-256}, "record": <summary.json record>}

Only a folder whose record accounts for every file in it (same names, same hashes), and for
the sequence's OUT/probs/<seq>/ and OUT/overlays/<seq>.mp4 when they exist, is hmmn-run's: it
may be skipped as done or replaced by --force. Anything else at those paths is the user's and
is never touched (`inspect` says why). An empty folder holds nothing to lose: it is treated as
absent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import stat
from typing import Dict, List, Optional

from ..core.files import sha256_file

MARKER = ".hmmn-run.json"
MARKER_FORMAT = "hmmn-run sequence"

ABSENT, DONE, INCOMPLETE, FOREIGN = "absent", "done", "incomplete", "foreign"


# The optional outputs that are one file each (the overlay video and its poster), as named in the
# work folder; OUT/overlays/<seq><suffix>.
SINGLE_FILES = {"overlay.mp4": ".mp4", "overlay.png": ".png"}
EXTRAS = ("probs",) + tuple(SINGLE_FILES)  # every output but the masks


def places(out: str, name: str) -> Dict[str, str]:
    """A sequence's outputs in OUT, keyed as in its work folder; the masks last (the commit)."""
    return {"probs": os.path.join(out, "probs", name),
            **{key: os.path.join(out, "overlays", name + suffix) for key, suffix in SINGLE_FILES.items()},
            "masks": os.path.join(out, name)}


def _under_out(key: str, name: str, file: Optional[str] = None) -> str:
    """A file's key in the record: its path under OUT, '/'-separated."""
    base = {"masks": name, "probs": f"probs/{name}",
            **{k: f"overlays/{name}{suffix}" for k, suffix in SINGLE_FILES.items()}}[key]
    return base if file is None else f"{base}/{file}"


def write_marker(work: str, name: str, record: dict) -> str:
    """Hash the finished work folder's files and write the record into its masks folder.
    -> the run id (it tells this publish's masks from any other's)."""
    files = {}
    for key in ("masks", "probs"):
        folder = os.path.join(work, key)
        if os.path.isdir(folder):
            for file in sorted(os.listdir(folder)):
                files[_under_out(key, name, file)] = sha256_file(os.path.join(folder, file))
    for key in SINGLE_FILES:
        if os.path.isfile(os.path.join(work, key)):
            files[_under_out(key, name)] = sha256_file(os.path.join(work, key))
    run_id = secrets.token_hex(8)
    marker = {"format": MARKER_FORMAT, "version": 1, "sequence": name, "run_id": run_id, "files": files,
              "record": record}
    with open(os.path.join(work, "masks", MARKER), "w") as f:
        f.write(json.dumps(marker, indent=1))
        f.flush()
        os.fsync(f.fileno())
    return run_id


def read_marker(folder: str, name: str) -> Optional[dict]:
    """The record in a mask folder, or None when there is none of ours (for this sequence)."""
    try:
        with open(os.path.join(folder, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    if (not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT or marker.get("sequence") != name
            or not isinstance(marker.get("files"), dict)):
        return None
    return marker


@dataclasses.dataclass
class Found:
    """What OUT holds of a sequence: ABSENT (nothing, or an empty folder), DONE (ours, every mask
    there), INCOMPLETE (ours, masks missing: redone), FOREIGN (not ours: never touched)."""
    kind: str
    reason: str = ""
    marker: Optional[dict] = None

    @property
    def ours(self) -> bool:
        return self.kind in (DONE, INCOMPLETE)


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def inspect(out: str, name: str, hashes: bool = True) -> Found:
    """Whether hmmn-run wrote what OUT holds of sequence `name`. hashes=False trusts the record
    without reading the files (summary.json's reconciliation after each sequence)."""
    where = places(out, name)
    masks = where["masks"]
    extras = [key for key in EXTRAS if os.path.lexists(where[key])]
    if not os.path.lexists(masks):
        if extras:
            return Found(FOREIGN, f"{where[extras[0]]} exists but {masks} does not: no record of hmmn-run accounts "
                                  "for it")
        return Found(ABSENT)
    if os.path.islink(masks) or not os.path.isdir(masks):
        return Found(FOREIGN, f"{masks} is not a folder hmmn-run wrote")
    entries = os.listdir(masks)
    if not entries and not extras:
        return Found(ABSENT)
    marker = read_marker(masks, name)
    if marker is None:
        return Found(FOREIGN, f"{masks} holds no record of hmmn-run ({MARKER}): hmmn-run did not write it")
    listed: Dict[str, str] = marker["files"]
    present: List[str] = [_under_out("masks", name, e) for e in entries if e != MARKER]
    if extras and "probs" in extras:
        folder = where["probs"]
        if os.path.islink(folder) or not os.path.isdir(folder):
            return Found(FOREIGN, f"{folder} is not a folder hmmn-run wrote")
        present += [_under_out("probs", name, e) for e in os.listdir(folder)]
    present += [_under_out(key, name) for key in SINGLE_FILES if key in extras]
    for key in present:
        path = os.path.join(out, *key.split("/"))
        if key not in listed or not _regular(path):
            return Found(FOREIGN, f"{path} is not in hmmn-run's record of {name} ({masks}/{MARKER})")
        if hashes and sha256_file(path) != listed[key]:
            return Found(FOREIGN, f"{path} was changed since hmmn-run wrote it (its SHA-256 differs from the record "
                                  f"in {masks}/{MARKER})")
    missing = [k for k in listed if k.startswith(name + "/") and k not in present]
    if missing:
        return Found(INCOMPLETE, f"{len(missing)} of its masks are missing", marker)
    return Found(DONE, "", marker)


def owned_sequences(out: str) -> Dict[str, dict]:
    """name -> marker of every sequence folder of OUT whose record is ours and complete (no hashes read)."""
    found = {}
    for name in os.listdir(out):
        if name.startswith(".") or not os.path.isdir(os.path.join(out, name)):
            continue
        result = inspect(out, name, hashes=False)
        if result.kind == DONE:
            found[name] = result.marker
    return found
