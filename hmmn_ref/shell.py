"""The shell every command runs in (hmmn-ref, hmmn-export, hmmn-quantize, hmmn-run, hmmn-eval,
hmmn-bench): its name before each line it logs, its parser's opening, and one line and the exit
status (hmmn_ref/errors.py) for the error that ends it.

    log = shell.Logger("hmmn-bench")            # log("x") -> "hmmn-bench: x" on standard error
    def build_parser(): return shell.parser("hmmn-bench", __doc__) ...
    def main(argv=None) -> int:
        return shell.main(build_parser, bench, log, argv)   # bench(args) -> exit status

It stands on the ground floor so that hmmn-ref, the lowest command, uses it as the others do.
Library code logs bare messages through the `log` it is given, so that a line says which
command printed it (an export on the fly says "hmmn-run: ...").
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Union

from .config import CONFIGS
from .errors import exit_code

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Logger:
    """log(message) writes "prog: message" as one line; log.detail(text) writes a table row or an
    indented step as it is. Both go to standard error unless `write` says otherwise."""

    def __init__(self, prog: str, write: Log = _stderr) -> None:
        self.prog, self.write = prog, write

    def __call__(self, message: str) -> None:
        self.write(f"{self.prog}: {message}")

    def detail(self, text: str) -> None:
        self.write(text)


def detail(log: Log, text: str) -> None:
    """A detail line through whatever `log` a library function was given: a Logger's own, or a
    plain function's (print, list.append)."""
    getattr(log, "detail", log)(text)


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The command's parser; its description is the first line of the module's docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc.strip().split("\n")[0])


def parse_size(text: str):
    """--size HxW -> (H, W); argparse reports the reason (exit 2)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, for example 480x854, got {text!r}") from None
    if h < 16 or w < 16:
        needs = ", ".join(f"{c.min_cells_16} for {name}" for name, c in sorted(CONFIGS.items()))
        raise argparse.ArgumentTypeError(f"size {text!r} is too small: each side needs at least 16 pixels, and the "
                                         f"frame at least as many 16x16 cells as the model reads ({needs}), "
                                         "for example 96x96")
    return h, w


def describe(exc: BaseException) -> str:
    """An error's message; an OSError's reason and file rather than its '[Errno N]' form."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)


def run(body: Callable[[], int], log: Log, interrupted: Union[str, Callable[[], str]] = "interrupted") -> int:
    """body()'s exit status; an error that ends it: "error: <message>" and its status from
    errors.exit_code (a bug's traceback is not hidden); Ctrl-C: `interrupted` and 130."""
    try:
        return body()
    except KeyboardInterrupt as exc:
        log(interrupted() if callable(interrupted) else interrupted)
        return exit_code(exc)
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        log(f"error: {describe(exc)}")
        return code


def main(build_parser: Callable[[], argparse.ArgumentParser], body: Callable[[argparse.Namespace], int], log: Log,
         argv=None, **options) -> int:
    """A command's main: its arguments parsed (argparse exits 2 on bad ones), then `run` of body(args)."""
    args = build_parser().parse_args(argv)
    return run(lambda: body(args), log, **options)
