"""hmmn-run's progress (segment/progress.py): bars only on a terminal; in a file, plain lines at a
sensible rate and no escape codes; a log line never glued onto a bar."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from hmmn_ref.shell import Logger

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.segment import progress

RUN = ["--backend", "torch", "--random-weights", "--config", "small", "--threads", "1"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_at_most_every_interval_and_not_at_the_end():
    lines, clock = [], Clock()
    plain = progress.Lines(100, "bear", "frame", Logger("hmmn-run", lines.append), every=10.0, clock=clock)
    for _ in range(100):
        clock.now += 0.5  # 2 frames a second: 50 s in all
        plain.update(1)
    plain.close()
    assert len(lines) == 4  # at 10, 20, 30 and 40 s; the 100th frame is told by the closing line
    assert lines[0] == "hmmn-run: bear: 20/100 frames (2.0 frames/s)"


def test_off_a_terminal_or_under_ci_there_is_no_bar(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert isinstance(progress.bar(10, "x", "frame", True, print), progress.Lines)  # pytest's stderr: no tty
    assert isinstance(progress.bar(10, "x", "frame", True, print, plain=False), progress.Quiet)
    assert isinstance(progress.bar(10, "x", "frame", False, print), progress.Quiet)

    class Terminal:
        def isatty(self):
            return True

    assert progress.interactive(Terminal())
    monkeypatch.setenv("CI", "true")
    assert not progress.interactive(Terminal())


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress") / "davis"
    write_davis(str(root), [("one", 21), ("two", 22)], 6, 64, 96, "val")
    return root


def hmmn_run(davis, out) -> list:
    return [sys.executable, "-m", "hmmn_deploy.segment.cli", str(davis), "-o", str(out)] + RUN


def test_written_to_a_file_the_log_is_plain_lines(davis, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    with open(tmp_path / "log.txt", "wb") as log:
        code = subprocess.run(hmmn_run(davis, tmp_path / "out"), stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    text = (tmp_path / "log.txt").read_text()
    assert code == 0, text
    assert "\r" not in text and "\x1b" not in text, text
    lines = text.splitlines()
    assert all(line.startswith("hmmn-run: ") for line in lines), text
    assert lines[-1].startswith("hmmn-run: 2 of 2 sequences done")


def test_on_a_terminal_bars_are_drawn_and_no_line_lands_on_one(davis, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    # hmmn-run on a 24x100 pseudo-terminal (tqdm draws nothing 0 columns wide). Started by
    # subprocess (fork and exec in C): a pty.fork() child runs Python in a copy of this
    # many-threaded process, and died with SIGSEGV before its exec in whole-suite runs.
    fd, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen(hmmn_run(davis, tmp_path / "out"), stdin=terminal, stdout=terminal, stderr=terminal,
                             env=env, start_new_session=True)
    os.close(terminal)  # the child holds it; its end of the terminal closes when it exits
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    status = child.wait()
    text = b"".join(chunks).decode(errors="replace")
    assert status == 0, text
    assert "one:" in text and "/6 [" in text, text  # the frames bar of sequence one was drawn
    shown = screen(text)
    logged = [line for line in shown if "hmmn-run: " in line]
    assert len(logged) == 5, shown  # two at the start, one per sequence, the closing line
    assert all(line.startswith("hmmn-run: ") and "|" not in line for line in logged), shown
    assert logged[-1].startswith("hmmn-run: 2 of 2 sequences done")


def screen(text: str) -> list:
    """The lines a terminal shows after `text`: carriage return, line feed, cursor up (ESC [ A),
    other escape sequences ignored, printable characters written over what is there."""
    import re

    rows, row, col = [[]], 0, 0
    for token in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|.", text, flags=re.S):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
        elif token == "\x1b[A":
            row = max(0, row - 1)
        elif token.startswith("\x1b"):
            continue
        else:
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = token
            col += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]
