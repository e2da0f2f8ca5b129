"""hmmn-run's output folder: one run at a time, work in progress out of sight, sequences
published whole by a journaled swap, and only what hmmn-run wrote ever replaced (ownership).

    OUT/.hmmn-run.lock     held (flock) by the run writing OUT, with its PID; removed at its end
    OUT/.partial/<seq>/    a sequence being written (masks/, probs/, overlay.mp4, overlay.png); while it is
                           published also journal.json and replaced/ (the outputs it replaces)
    OUT/<seq>/             the masks and hmmn-run's record (.hmmn-run.json): done when complete
    OUT/probs/<seq>/, OUT/overlays/<seq>.mp4 (.png: its poster)   optional outputs, published before the masks

A lock held by a process that died is released by the kernel with it; its file is reused. A
publish interrupted by a crash is finished or rolled back by the next run that opens OUT.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from typing import Callable, Optional

from hmmn_ref.errors import HMMNError

from .ownership import EXTRAS, places, read_marker

LOCK = ".hmmn-run.lock"
WORK = ".partial"
JOURNAL = "journal.json"
REPLACED = "replaced"


class OutputError(HMMNError):
    """OUT cannot be used: not creatable, not writable, or locked by another run."""


class OutputLocked(OutputError):
    def __init__(self, out: str, pid: str) -> None:
        super().__init__(f"another hmmn-run (PID {pid}) is writing to {out}; wait for it to end, or give another -o")


class OutputFolder:
    """`open()` creates OUT, locks it, and finishes or rolls back a killed run's publish; `close()`
    does the same for this run's, removes the work folder and the lock (and OUT itself when this
    run created it and left nothing in it)."""

    def __init__(self, path: str, log: Optional[Callable[[str], None]] = None) -> None:
        self.path = os.path.abspath(path)
        self.created = False
        self.log = log
        self._fd: Optional[int] = None

    def open(self) -> "OutputFolder":
        try:
            if not os.path.isdir(self.path):
                os.makedirs(self.path)
                self.created = True
            self._lock()
            recover_all(self.path, self.log)  # a killed run's leftovers: its publish finished or rolled back
        except OutputError:
            self._release()
            raise
        except OSError as exc:
            self._release()
            raise OutputError(f"cannot write to {self.path!r}: {exc.strerror or exc}; give -o a folder you can "
                              "write") from None
        return self

    @property
    def is_open(self) -> bool:
        return self._fd is not None

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
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: no empty lock file left behind
            os.unlink(path)
            os.close(fd)
            raise
        self._fd = fd

    def work(self, name: str) -> str:
        return os.path.join(self.path, WORK, name)

    def close(self) -> None:
        if self._fd is not None:
            try:
                recover_all(self.path, self.log)
            except (OutputError, OSError) as exc:  # kept for the next run, which says so again
                if self.log:
                    self.log(f"error: {exc}")
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
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


def _crash_point() -> None:
    """Tests only (tests/segment/test_reliability_publish.py): with HMMN_RUN_TEST_CRASH_AT=k in the
    environment, the process ends at once (os._exit, as SIGKILL would) before its k-th publishing
    step, counted over the process."""
    global _steps
    at = os.environ.get(CRASH_ENV)
    if at:
        _steps += 1
        if _steps == int(at):
            os._exit(CRASH_EXIT)


CRASH_ENV, CRASH_EXIT = "HMMN_RUN_TEST_CRASH_AT", 99
_steps = 0


def _write_journal(work: str, journal: dict) -> None:
    """Atomically: the journal is either absent (no move made) or whole."""
    tmp = os.path.join(work, JOURNAL + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(journal))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(work, JOURNAL))


def publish(work: str, out: str, name: str, run_id: str) -> str:
    """Move a finished, checked work folder (with its record, ownership.write_marker) into place as a
    journaled swap; returns the mask folder OUT/<name>.

    1. the journal (work/journal.json): the run id of the new masks, the old and new outputs;
    2. each old output (hmmn-run's, see ownership) into work/replaced/, the masks first: from
       then the sequence is not done;
    3. each new output into place, the masks last: their arrival commits the swap;
    4. work/replaced/, the journal, the work folder removed.
    A crash at any step leaves the old or the new outputs whole: `recover` (at the next start, or
    here on an error) rolls back before the commit and finishes after it."""
    targets = places(out, name)
    old = [key for key in ("masks",) + EXTRAS if os.path.lexists(targets[key])]
    new = [key for key in EXTRAS + ("masks",) if os.path.lexists(os.path.join(work, key))]
    _crash_point()
    _write_journal(work, {"sequence": name, "run_id": run_id, "old": old, "new": new})
    try:
        replaced = os.path.join(work, REPLACED)
        for key in old:
            os.makedirs(replaced, exist_ok=True)
            _crash_point()
            os.replace(targets[key], os.path.join(replaced, key))
        for key in new:
            os.makedirs(os.path.dirname(targets[key]), exist_ok=True)
            _crash_point()
            os.replace(os.path.join(work, key), targets[key])
        _crash_point()
    except BaseException:  # an error, Ctrl-C or SIGTERM: the old outputs back
        recover(work, out)
        raise
    _finish(work)
    return targets["masks"]


def _finish(work: str) -> None:
    """After the commit: the old outputs, then the journal, then the folder."""
    shutil.rmtree(os.path.join(work, REPLACED), ignore_errors=True)
    try:
        os.unlink(os.path.join(work, JOURNAL))
    except FileNotFoundError:
        pass
    shutil.rmtree(work, ignore_errors=True)


def recover(work: str, out: str) -> Optional[str]:
    """Finish or roll back the publish journaled in `work`, then remove `work`.
    -> 'finished', 'rolled back', or None when there was no journal (nothing was moved: the work
    folder holds only unpublished outputs). OutputError, with `work` kept, when a move fails."""
    try:
        with open(os.path.join(work, JOURNAL)) as f:
            journal = json.load(f)
    except FileNotFoundError:
        shutil.rmtree(work, ignore_errors=True)
        return None
    name = journal["sequence"]
    targets = places(out, name)
    marker = read_marker(targets["masks"], name) if os.path.isdir(targets["masks"]) else None
    if marker is not None and marker.get("run_id") == journal["run_id"]:  # the new masks arrived: committed
        _finish(work)
        return "finished"
    replaced = os.path.join(work, REPLACED)
    try:
        for key in journal["new"]:  # new outputs already placed go back (only old ones were moved aside first)
            if not os.path.lexists(os.path.join(work, key)) and os.path.lexists(targets[key]):
                os.replace(targets[key], os.path.join(work, key))
        for key in journal["old"]:
            if os.path.lexists(os.path.join(replaced, key)):
                os.makedirs(os.path.dirname(targets[key]), exist_ok=True)
                os.replace(os.path.join(replaced, key), targets[key])
    except OSError as exc:
        raise OutputError(f"cannot roll back the interrupted publish of {name} ({exc.strerror or exc}); its old "
                          f"outputs are kept in {replaced}") from None
    shutil.rmtree(work, ignore_errors=True)
    return "rolled back"


def recover_all(out: str, log: Optional[Callable[[str], None]] = None) -> None:
    """Every work folder of OUT/.partial/: journaled publishes finished or rolled back, the rest
    (unpublished work, a Ray driver's marker file) removed; OUT/.partial/ itself removed."""
    root = os.path.join(out, WORK)
    if not os.path.isdir(root):
        return
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            outcome = recover(path, out)
            if outcome and log:
                side = "new" if outcome == "finished" else "previous"
                log(f"{entry}: an interrupted publish was {outcome} (its {side} outputs are in place)")
        else:
            os.unlink(path)
    try:
        os.rmdir(root)
    except OSError:  # something could not be removed: the next run tries again
        pass
