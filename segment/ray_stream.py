"""Live streams on Ray (a library API): one stream per actor, frames in order, a bounded number
in flight, and `StreamLost` instead of wrong masks when the actor restarted and lost the
stream's memory bank.

    import ray
    from hmmn_deploy.models import ModelChoice
    from hmmn_deploy.segment.ray_stream import LiveStream

    ray.init(...)                                    # a cluster of your choice
    stream = LiveStream(ModelChoice(backend="torch", threads=1), max_in_flight=4)
    stream.start(first_frame, first_mask)            # uint8 HxWx3 RGB; label map HxW (0 = background)
    for frame in camera:
        for labels in stream.push(frame):            # results of earlier frames, in frame order
            show(labels)
    for labels in stream.finish():                   # the rest
        show(labels)
    stream.close()

The actor keeps the video state between calls, so a restart (the worker killed, out of
memory) loses it; every call carries the stream's token and the index of its frame, and an
actor that does not hold that stream at that frame refuses the call. The caller then starts
the stream again from a new first frame and mask.
"""

from __future__ import annotations

import collections
import os
import secrets
from typing import Iterator, List, Optional

import numpy as np

from hmmn_ref.errors import HMMNError

from ..models import ModelChoice, open_session


class StreamLost(HMMNError, RuntimeError):
    """The stream's worker restarted or died: its memory bank is gone; start the stream again."""


class StreamWorker:
    """The actor: a session and at most one live stream."""

    def __init__(self, choice: ModelChoice) -> None:
        self.session, _ = open_session(choice, None, lambda message: None)
        self.token: Optional[str] = None
        self.state = None
        self.next = 0

    def pid(self) -> int:
        return os.getpid()

    def start(self, token: str, frame: np.ndarray, mask: np.ndarray) -> List[int]:
        self.token, self.next = None, 0
        self.state = self.session.start(frame, mask)
        self.token, self.next = token, 1
        return list(self.state.object_ids)

    def step(self, token: str, index: int, frame: np.ndarray) -> np.ndarray:
        if token != self.token or index != self.next:
            held = "no stream (it restarted)" if self.token is None else f"frame {self.next} of another stream"
            raise StreamLost(f"this worker (PID {os.getpid()}) expected {held}, not frame {index} of stream {token}")
        self.next += 1
        return self.session.step(self.state, frame).labels


class LiveStream:
    """The caller's side: one actor for one stream, at most `max_in_flight` frames submitted
    and not yet returned. Needs a connected Ray (`ray.init`)."""

    def __init__(self, choice: ModelChoice, max_in_flight: int = 4, num_cpus: float = 1,
                 num_gpus: float = 0) -> None:
        import ray

        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.ray = ray
        self.max_in_flight = max_in_flight
        self.actor = ray.remote(StreamWorker).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=-1,
                                                      max_task_retries=0).remote(choice)
        self.token = secrets.token_hex(8)
        self.index = 0
        self.pending: "collections.deque" = collections.deque()

    def pid(self) -> int:
        return self.ray.get(self.actor.pid.remote())

    def start(self, frame: np.ndarray, mask: np.ndarray) -> List[int]:
        """(Re)start the stream from a first frame and its label map -> the object ids."""
        self.pending.clear()
        self.token = secrets.token_hex(8)
        ids = self._get(self.actor.start.remote(self.token, frame, mask))
        self.index = 1
        return ids

    def push(self, frame: np.ndarray) -> Iterator[np.ndarray]:
        """Submit the next frame; yields the label maps that must be collected to keep at most
        `max_in_flight` frames in flight (the oldest first)."""
        if self.index == 0:
            raise StreamLost("start() the stream with a first frame and mask before pushing frames")
        self.pending.append(self.actor.step.remote(self.token, self.index, frame))
        self.index += 1
        while len(self.pending) > self.max_in_flight:
            yield self._get(self.pending.popleft())

    def finish(self) -> Iterator[np.ndarray]:
        """The label maps of every frame still in flight, in order."""
        while self.pending:
            yield self._get(self.pending.popleft())

    def close(self) -> None:
        self.pending.clear()
        self.ray.kill(self.actor, no_restart=True)

    def _get(self, call):
        from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

        try:
            return self.ray.get(call)
        except (RayActorError, ActorUnavailableError) as exc:
            self._lost()
            raise StreamLost(f"the stream's worker died ({type(exc).__name__}); its memory bank is gone: start() "
                             "the stream again from a new first frame and mask") from None
        except RayTaskError as exc:
            self._lost()
            if isinstance(exc.cause, StreamLost):
                raise StreamLost(f"{exc.cause}; start() the stream again from a new first frame and mask") from None
            raise

    def _lost(self) -> None:
        self.pending.clear()
        self.index = 0
