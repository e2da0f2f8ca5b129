"""hmmn-run's progress: tqdm bars on a terminal; in a file, a pipe or under CI, a plain line now
and then instead (no carriage returns, no escape codes); and log lines that never land on a bar.

A plain line is written at most every PLAIN_EVERY seconds, the first after PLAIN_EVERY, so a
short sequence adds none: its closing line (summary.record_done) says it is done.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

PLAIN_EVERY = 10.0  # seconds between plain progress lines


def interactive(stream=None) -> bool:
    """True on a terminal outside CI (where bars redraw in place)."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("CI")


def say(message: str) -> None:
    """One line on standard error; a live bar is cleared first and redrawn under it."""
    if interactive():  # only there are bars drawn that the line could land on
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
        sys.stderr.flush()
    else:
        print(message, file=sys.stderr, flush=True)


class Quiet:
    """No progress at all (--no-progress), with a bar's interface."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Lines:
    """Progress as an occasional plain line, e.g. `hmmn-run: bear: 40/82 frames (4.1 frames/s)`."""

    def __init__(self, total: int, desc: str, unit: str, log: Callable[[str], None],
                 every: float = PLAIN_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.log, self.every, self.clock = total, desc, unit, log, every, clock
        self.n = 0
        self.started = self.last = clock()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every and self.n < self.total:
            self.last = now
            rate = self.n / max(now - self.started, 1e-9)
            self.log(f"{self.desc}: {self.n}/{self.total} {self.unit}s ({rate:.1f} {self.unit}s/s)")

    def close(self) -> None:
        pass


def bar(total: int, desc: str, unit: str, enabled: bool, log: Callable[[str], None] = say,
        plain: bool = True, **tqdm_options):
    """A tqdm bar on a terminal; else `Lines` (or nothing when `plain` is False: the caller's
    own log lines already tell the progress); `Quiet` when not `enabled`."""
    if not enabled:
        return Quiet()
    if interactive():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, **tqdm_options)
    return Lines(total, desc, unit, log) if plain else Quiet()

