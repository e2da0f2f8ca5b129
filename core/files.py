"""File hashes, and a check that files are still what a manifest recorded."""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Tuple

from hmmn_ref.errors import HMMNError

# (path, size, mtime in ns) -> SHA-256: a file is hashed once per process until it changes.
_HASHED: Dict[Tuple[str, int, int], str] = {}


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: str) -> str:
    """sha256_file, remembered by (path, size, mtime): reopening a session costs a stat."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


class FileMismatch(HMMNError, ValueError):
    """A file that is missing or differs from what was recorded."""


def check_file(folder: str, entry: dict, what: str, remedy: str = "export again with hmmn-export") -> str:
    """The path of `entry` ({"file", "sha256", "bytes"}) in `folder`, after checking that it exists
    and has the recorded size and SHA-256. FileMismatch says which file, and `remedy`."""
    path = os.path.join(folder, entry["file"])
    if not os.path.isfile(path):
        raise FileMismatch(f"{what} {path!r} is missing; {remedy}")
    size = os.path.getsize(path)
    if size != entry["bytes"]:
        raise FileMismatch(f"{what} {path!r} has {size} bytes, the manifest recorded {entry['bytes']}: it was "
                           f"changed or truncated after the export; {remedy}")
    if cached_sha256(path) != entry["sha256"]:
        raise FileMismatch(f"{what} {path!r} differs from the file the export validated (SHA-256 mismatch): "
                           f"it was edited after the export; {remedy}")
    return path
