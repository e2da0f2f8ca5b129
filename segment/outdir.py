"""hmmn-run's output folder: one run at a time, work in progress out of sight, sequences
published whole.

    OUT/.hmmn-run.lock     held (flock) by the run writing OUT, with its PID; removed at its end
    OUT/.partial/<seq>/    a sequence being written; the folder is removed when the run ends
    OUT/<seq>/             the masks: a sequence is done when this folder exists
    OUT/probs/<seq>/, OUT/overlays/<seq>.mp4 (.png: its poster)   optional outputs, published before the masks

A lock held by a process that died is released by the kernel with it; its file is reused.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from typing import Optional

from hmmn_ref.errors import HMMNError

LOCK = ".hmmn-run.lock"
WORK = ".partial"


class OutputError(HMMNError):
    """OUT cannot be used: not creatable, not writable, or locked by another run."""


class OutputLocked(OutputError):
    def __init__(self, out: str, pid: str) -> None:
        super().__init__(f"another hmmn-run (PID {pid}) is writing to {out}; wait for it to end, or give another -o")


class OutputFolder:
    """`open()` creates OUT and locks it; `close()` removes the work folder and the lock (and OUT
    itself when this run created it and left nothing in it)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.created = False
        self._fd: Optional[int] = None

    def open(self) -> "OutputFolder":
        try:
            if not os.path.isdir(self.path):
                os.makedirs(self.path)
                self.created = True
            self._lock()
            shutil.rmtree(os.path.join(self.path, WORK), ignore_errors=True)  # a killed run's leftovers
        except OutputError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise OutputError(f"cannot write to {self.path!r}: {exc.strerror or exc}; give -o a folder you can "
                              "write") from None
        return self

    def _lock(self) -> None:
        path = os.path.join(self.path, LOCK)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise OutputLocked(self.path, holder) from None
            try:  # the holder removes the file as it ends: lock the file that is there now
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def work(self, name: str) -> str:
        return os.path.join(self.path, WORK, name)

    def close(self) -> None:
        if self._fd is not None:
            shutil.rmtree(os.path.join(self.path, WORK), ignore_errors=True)
            try:
                os.unlink(os.path.join(self.path, LOCK))
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        if self.created:
            try:
                os.rmdir(self.path)  # only when empty: nothing left behind by a run that wrote nothing
            except OSError:
                pass
            self.created = False


def is_done(out: str, name: str) -> bool:
    return os.path.isdir(os.path.join(out, name))


def publish(work: str, out: str, name: str) -> str:
    """Move a finished, checked work folder into place; returns the mask folder OUT/<name>.

    Whatever OUT holds of the sequence (a forced redo, or the extras of an interrupted publish)
    is first moved into the work folder, masks first: from then the sequence is not done, and
    from the new masks' arrival (last) it is done with every output new. If a move fails, the
    old outputs are put back and the error raised."""
    places = {"probs": os.path.join(out, "probs", name), "overlay.mp4": os.path.join(out, "overlays", name + ".mp4"),
              "overlay.png": os.path.join(out, "overlays", name + ".png"),  # the video's poster
              "masks": os.path.join(out, name)}  # the masks last
    replaced = os.path.join(work, "replaced")
    retired, placed = [], []
    try:
        for key in ("masks", "probs", "overlay.mp4", "overlay.png"):
            if os.path.lexists(places[key]):
                os.makedirs(replaced, exist_ok=True)
                os.replace(places[key], os.path.join(replaced, key))
                retired.append(key)
        for key, target in places.items():
            if os.path.lexists(os.path.join(work, key)):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(os.path.join(work, key), target)
                placed.append(key)
    except OSError:
        _undo(work, places, retired, placed)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return places["masks"]


def _undo(work: str, places: dict, retired: list, placed: list) -> None:
    """Best effort: the new outputs back into the work folder, the old ones back into place."""
    for key in reversed(placed):
        try:
            os.replace(places[key], os.path.join(work, key))
        except OSError:
            pass
    for key in retired:
        try:
            os.replace(os.path.join(work, "replaced", key), places[key])
        except OSError:
            pass
