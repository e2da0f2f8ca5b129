"""The Ray actor of `hmmn-run --ray`: one model session per worker, one whole video per call.

A call (`process_video`) segments a sequence from its first frame with a fresh state and
publishes it exactly as a single-process run does (segment.sequence.SequenceRun: written to
OUT/.partial/<seq>/, read back, moved into place). The unit of work and of retry is the whole
video: a worker restarted after a crash has an empty memory bank, so the driver resubmits the
video from the start; nothing here retries a frame.

`process_video` is a generator (a Ray streaming call). It yields, in order:
    ("start", (pid, host))  the worker began the video
    ("frames", n)           n more frames written (sent at most every PROGRESS_SECONDS)
    ("done", record)        the summary.json record; the sequence is published
 or ("failed", message)     the sequence cannot be segmented (a corrupt frame, a full disk)
This module does not import ray: the driver wraps VideoWorker with ray.remote.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import resource
import socket
import threading
import time
from typing import Iterator, List, Optional, Tuple

from ..runtime.errors import RuntimeInputError
from ..models import ModelChoice, ModelError, open_session
from .outdir import OutputError
from .sequence import SequenceError, SequenceOptions, SequenceRun
from .sources import Sequence

PROGRESS_SECONDS = 0.2


def worker_choice(choice: ModelChoice, graphs: Optional[str]) -> ModelChoice:
    """What a worker opens: the graphs folder the driver exported (or found in its cache), so
    no worker exports; the torch backend, which has no graphs, loads the same weights."""
    if graphs and not choice.artifacts:
        return dataclasses.replace(choice, artifacts=graphs, weights=None, random_weights=False)
    return choice


class VideoWorker:
    """Opens the session once (again after a restart); the constructor never raises, so a
    worker that cannot serve says why from `ready()` instead of being restarted forever."""

    def __init__(self, choice: ModelChoice, engine_size: Optional[Tuple[int, int]], out: str,
                 options: SequenceOptions) -> None:
        self.out = out
        self.options = options
        self.choice = choice
        self.session = None
        self.error: Optional[str] = None
        try:
            self.session, _ = open_session(choice, engine_size, lambda message: None)
        except (ModelError, OSError) as exc:
            self.error = f"cannot open the model: {exc}"

    def ready(self, marker: str, inputs: List[str]) -> dict:
        """The worker's PID and node, and what it cannot see: OUT's marker file (written by the
        driver), the inputs, the graphs folder. An empty `problems` means it can serve."""
        problems = [self.error] if self.error else []
        if not os.path.isfile(marker):
            problems.append(f"the output folder {self.out!r} is not the driver's: its marker file {marker!r} is "
                            "missing here; put OUT on storage every node mounts at the same path")
        for path in inputs:
            if path and not os.path.exists(path):
                problems.append(f"{path!r} does not exist here; put the inputs on storage every node mounts at the "
                                "same path")
        return {"pid": os.getpid(), "host": socket.gethostname(), "problems": problems}

    def pid(self) -> int:
        return os.getpid()

    def process_video(self, sequence: Sequence) -> Iterator[tuple]:
        if self.session is None:
            yield ("failed", self.error)
            return
        yield ("start", (os.getpid(), socket.gethostname()))
        events: "queue.Queue[tuple]" = queue.Queue()
        thread = threading.Thread(target=self._segment, args=(sequence, events), daemon=True)
        thread.start()
        pending, last = 0, time.monotonic()
        while True:
            try:
                kind, value = events.get(timeout=PROGRESS_SECONDS)
            except queue.Empty:
                kind, value = "tick", 0
            if kind == "frames":
                pending += value
            if pending and (kind != "frames" or time.monotonic() - last >= PROGRESS_SECONDS):
                yield ("frames", pending)
                pending, last = 0, time.monotonic()
            if kind in ("done", "failed"):
                thread.join()
                yield (kind, value)
                return

    def _segment(self, sequence: Sequence, events: "queue.Queue[tuple]") -> None:
        """Runs in a thread of the worker: SequenceRun with a fresh state, outcome to `events`."""
        try:
            run = SequenceRun(self.session, sequence, self.out, self.options, lambda n: events.put(("frames", n)))
            record = run.run()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the worker's so far
            record["worker"] = {"pid": os.getpid(), "host": socket.gethostname(), "peak_host_memory_mb": round(peak, 1)}
            events.put(("done", record))
        except (SequenceError, RuntimeInputError, OutputError, OSError) as exc:
            events.put(("failed", str(exc)))
        except Exception as exc:  # an unexpected error fails this video alone, named with its type
            events.put(("failed", f"{sequence.name}: {type(exc).__name__}: {exc}"))
