"""SIGTERM and SIGHUP handled as Ctrl-C is: `kill`, `timeout`, `docker stop`, batch schedulers
and a closed terminal stop hmmn-run with a line, its clean-up, and exit status 128 + the signal
(130 SIGINT, 143 SIGTERM, 129 SIGHUP).

The handler raises `Stopped` (a KeyboardInterrupt, so every clean-up written for Ctrl-C runs)
in the main thread; a second signal during that clean-up is ignored, so that it completes.
"""

from __future__ import annotations

import contextlib
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_stopping = {"now": False}


def _handler(signum, frame) -> None:
    if _stopping["now"]:
        return  # already stopping: let the clean-up finish
    _stopping["now"] = True
    raise Stopped(signum)


def install() -> None:
    """(Again) our handler for SIGINT, SIGTERM and SIGHUP; Ray's driver sets its own for SIGTERM."""
    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            signal.signal(signum, _handler)


@contextlib.contextmanager
def handled():
    """Our handlers while the block runs, the previous ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    _stopping["now"] = False
    install()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stopping["now"] = False


def exit_code(exc: KeyboardInterrupt) -> int:
    return 128 + (exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    """'interrupted' for Ctrl-C, 'interrupted by SIGTERM' for the others."""
    return f"interrupted by {exc.args[0]}" if isinstance(exc, Stopped) and exc.signum != signal.SIGINT \
        else "interrupted"
