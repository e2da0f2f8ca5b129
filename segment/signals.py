"""SIGTERM and SIGHUP handled as Ctrl-C is: `kill`, `timeout`, `docker stop`, batch schedulers
and a closed terminal stop hmmn-run with a line, its clean-up, and exit status 128 + the signal
(130 SIGINT, 143 SIGTERM, 129 SIGHUP).

The handler raises KeyboardInterrupt (so every clean-up written for Ctrl-C runs, and no
`except Exception` swallows it) in the main thread and notes the signal; a second signal during
that clean-up is ignored, so that it completes.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from hmmn_ref import errors

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_stopping = {"now": False, "signum": signal.SIGINT}


def _handler(signum, frame) -> None:
    if _stopping["now"]:
        return  # already stopping: let the clean-up finish
    _stopping.update(now=True, signum=signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
    _stopping.update(now=False, signum=signal.SIGINT)
    install()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stopping.update(now=False, signum=signal.SIGINT)


def exit_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal that stopped the run (a KeyboardInterrupt raised otherwise: SIGINT's 130)."""
    return errors.exit_code(exc, _stopping["signum"] if _stopping["now"] else signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    """'interrupted' for Ctrl-C, 'interrupted by SIGTERM' for the others."""
    signum = _stopping["signum"] if _stopping["now"] else signal.SIGINT
    return "interrupted" if signum == signal.SIGINT else f"interrupted by {signal.Signals(signum).name}"
