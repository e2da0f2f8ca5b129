"""The common base of every error this project raises on purpose, and the exit status of each.

It lives on the ground floor (hmmn_ref) so that every package, hmmn_ref's checkpoint loader
included, can derive from it; `except hmmn_ref.HMMNError` catches any of them. Each subclass
keeps its standard base too (ValueError for bad input, RuntimeError for what the machine
lacks), so existing `except ValueError` code still works.

The exit statuses of all seven commands are decided here (`Exit`, `exit_code`); the shell that
every command runs in (hmmn_ref/shell.py) applies them, and docs/reliability.md has the table.
"""

from __future__ import annotations

import enum
import signal
from typing import Optional


class Exit(enum.IntEnum):
    """What a command's exit status says, the same for every command."""

    DONE = 0  # everything asked for was done
    FAILED = 1  # the work ran and part of it failed: a sequence, a gate, a validation, a graph's export
    REFUSED = 2  # bad arguments, input, weights, model or output folder: the message says which
    ENGINES_NOT_BUILT = 3  # hmmn-export: graphs and manifest written, the TensorRT engines asked for not
    INTERRUPTED = 128  # + the signal: 130 Ctrl-C (SIGINT); hmmn-run also 143 SIGTERM, 129 SIGHUP


class HMMNError(Exception):
    """An error whose message says what is wrong and what to do."""

    exit_code = Exit.REFUSED  # a subclass whose error is a failure of the work says so (ExportError)


class UsageError(HMMNError, ValueError):
    """Options that cannot go together, or values out of range (argparse checks the rest)."""


def exit_code(exc: BaseException, signum: int = signal.SIGINT) -> Optional[int]:
    """The exit status of a command that `exc` ended; None for an error that is a bug (its
    traceback is shown). A KeyboardInterrupt stands for `signum` (hmmn-run's handlers tell
    SIGTERM and SIGHUP apart: segment/signals.py). ValueError and OSError are refusals: the
    reference's own checks of frames and masks raise ValueError, and a file that cannot be read
    or written is the user's to fix."""
    if isinstance(exc, KeyboardInterrupt):
        return Exit.INTERRUPTED + int(signum)
    if isinstance(exc, HMMNError):
        return exc.exit_code
    if isinstance(exc, (ValueError, OSError)):
        return Exit.REFUSED
    return None
