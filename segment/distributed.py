"""`hmmn-run --ray`: the driver. Videos go to a pool of Ray actors (segment.ray_worker), one
whole video per call, at most IN_FLIGHT per worker; one progress bar counts the frames of all
videos; summary.json is written by the driver after each video, as in a single-process run.

Faults: a worker that dies mid-video (killed, out of memory, its node lost) is restarted by
Ray (max_restarts=-1) and the video is submitted again from its first frame (Ray's per-call
retries are off: a restarted actor has an empty bank); a video whose worker died
MAX_DEATHS times fails alone. A video that fails for a reason of its own fails alone. Ctrl-C
kills the workers, keeps the finished videos and exits 130.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import secrets
import socket
import time
from typing import Dict, List, Optional

from hmmn_ref import shell
from hmmn_ref.errors import Exit

from . import signals
from .outdir import WORK
from .progress import say
from .ray_cluster import Cluster, ClusterError, check_resources
from .ray_worker import VideoWorker, worker_choice
from .summary import closing_line, record_done, record_failed, save_summary

IN_FLIGHT = 2  # videos queued per worker: the next one starts as soon as the last is published
MAX_DEATHS = 3  # a video during which its worker died this often fails (it likely kills workers)
READY_SECONDS = 600  # workers must have started and opened the model by then
WAIT_SECONDS = 1.0


log = shell.Logger("hmmn-run", say)  # never onto the progress bar


@dataclasses.dataclass
class Job:
    sequence: object
    worker: int
    started: bool = False
    frames: int = 0


class Pool:
    """The driver's queue over the workers' streaming calls."""

    def __init__(self, ray, actors: list, pids: List[int], local: List[bool], todo: list, bar) -> None:
        self.ray, self.actors, self.pids, self.local, self.bar = ray, actors, pids, local, bar
        self.queue = collections.deque(todo)
        self.jobs: Dict[object, Job] = {}
        self.deaths: Dict[str, int] = collections.Counter()

    def fill(self) -> None:
        for level in range(1, IN_FLIGHT + 1):  # one video per worker first, then a queued one each
            for index, actor in enumerate(self.actors):
                if self.queue and sum(j.worker == index for j in self.jobs.values()) < level:
                    sequence = self.queue.popleft()
                    call = actor.process_video.options(num_returns="streaming").remote(sequence)
                    self.jobs[call] = Job(sequence, index)

    def events(self):
        """Yields (sequence, kind, value) as the workers report; 'done' and 'failed' end a video."""
        from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

        while self.queue or self.jobs:
            self.fill()
            ready, _ = self.ray.wait(list(self.jobs), num_returns=1, timeout=WAIT_SECONDS)
            for call in ready:
                job = self.jobs[call]
                try:
                    kind, value = self.ray.get(next(call))
                except StopIteration:  # a call ends right after its last event: not reached
                    del self.jobs[call]
                    continue
                except (RayActorError, ActorUnavailableError) as exc:
                    del self.jobs[call]
                    yield from self._lost(job, exc)
                    continue
                except RayTaskError as exc:
                    del self.jobs[call]
                    yield job.sequence, "failed", f"{job.sequence.name}: {exc.cause or exc}"
                    continue
                if kind == "start":
                    job.started = True
                    self.pids[job.worker] = value[0]  # a restarted worker: a new process, maybe on another node
                    self.local[job.worker] = value[1] == socket.gethostname()
                elif kind == "frames":
                    job.frames += value
                    self.bar.update(value)
                else:
                    del self.jobs[call]
                yield job.sequence, kind, value

    def _lost(self, job: Job, exc: Exception):
        """The worker died (or is restarting): its video goes back to the front of the queue."""
        self.bar.update(-job.frames)
        name = job.sequence.name
        if job.started:
            self.deaths[name] += 1
            if self.deaths[name] >= MAX_DEATHS:
                yield job.sequence, "failed", (f"{name}: its worker died {MAX_DEATHS} times while segmenting it "
                                               f"(last: {type(exc).__name__}); out of memory? give it a larger node")
                return
            log(f"{name}: worker {job.worker + 1} (PID {self.pids[job.worker]}) died after "
                f"{job.frames} frames; redoing the video from its first frame on the restarted worker")
        else:
            time.sleep(0.1)  # queued behind the lost video: the worker is still restarting
        self.queue.appendleft(job.sequence)


def check_ray_arguments(args) -> None:
    """--workers, --threads and --gpus-per-worker of a --ray run (InputError, exit 2); --threads defaults to 1
    per worker, so that workers sharing a machine do not each take every core."""
    from .sources import InputError

    args.workers = 1 if args.workers is None else args.workers
    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    if args.threads is None:
        args.threads = 1
    if args.gpus_per_worker is not None and args.gpus_per_worker < 0:
        raise InputError("--gpus-per-worker must be 0 or more")
    if args.gpus_per_worker and args.device != "cuda" and args.backend != "tensorrt":
        raise InputError(f"--gpus-per-worker reserves GPUs, but --backend {args.backend} runs on the CPU here; add "
                         "--device cuda")
    if args.ray != "local" and not args.ray.strip():
        raise InputError("--ray ADDRESS is empty; give 'auto', HOST:PORT or ray://HOST:10001, or --ray alone for a "
                         "local cluster")


def start_workers(ray, args, choice, engine_size, out: str, options, graphs: Optional[str]):
    """The actors, each with the model open and OUT, the inputs and the graphs visible.
    -> (actors, their PIDs, whether each runs on this machine)"""
    marker = os.path.join(out, WORK, f".ray-{secrets.token_hex(8)}")
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w") as f:
        f.write("written by the hmmn-run driver; a worker that cannot see it does not share OUT\n")
    remote = ray.remote(VideoWorker).options(num_cpus=args.threads or 1, num_gpus=args.gpus_per_worker or 0,
                                             max_restarts=-1, max_task_retries=0)
    wchoice = worker_choice(choice, graphs)
    actors = [remote.remote(wchoice, engine_size, out, options) for _ in range(args.workers)]
    inputs = [os.path.abspath(args.input), wchoice.artifacts]
    try:
        calls = [a.ready.remote(marker, inputs) for a in actors]
        _, waiting = ray.wait(calls, num_returns=len(calls), timeout=READY_SECONDS)
        if waiting:
            raise ClusterError(f"{len(waiting)} of {args.workers} workers did not start within {READY_SECONDS} s "
                               "(the cluster may lack the CPUs or GPUs they ask for); see `ray status`")
        states = ray.get(calls)
        for index, state in enumerate(states):
            for problem in state["problems"]:
                raise ClusterError(f"worker {index + 1} on {state['host']}: {problem}")
    except BaseException:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        raise
    os.unlink(marker)
    local = [s["host"] == socket.gethostname() for s in states]
    return actors, [s["pid"] for s in states], local


def run_on_ray(args, out: str, choice, engine_size, graphs: Optional[str], todo: list, options, summary: dict,
               progress: bool) -> int:
    """Segment `todo` on the cluster; the exit status of a run (0, 1; 130 on Ctrl-C). A cluster
    that cannot serve raises ClusterError (exit 2)."""
    from .progress import bar as progress_bar

    address = None if args.ray == "local" else args.ray
    summary["ray"] = {"address": args.ray, "workers": args.workers, "threads_per_worker": args.threads,
                      "gpus_per_worker": args.gpus_per_worker}
    started = time.perf_counter()
    try:
        with Cluster(address, max(os.cpu_count() or 1, args.workers * (args.threads or 1)), log) as ray:
            signals.install()  # ray.init sets its own SIGTERM handler (sys.exit): ours again
            check_resources(ray, args.workers, args.threads or 1, args.gpus_per_worker or 0)
            actors, pids, local = start_workers(ray, args, choice, engine_size, out, options, graphs)
            where = "a local cluster" if address is None else address
            log(f"{args.workers} Ray worker{'s' if args.workers > 1 else ''} ({where}), "
                f"PIDs {' '.join(map(str, pids))}")
            summary["ray"]["startup_seconds"] = round(time.perf_counter() - started, 3)
            bar = progress_bar(sum(s.num_frames for s in todo), "frames", "frame", progress, log)
            try:
                return collect(Pool(ray, actors, pids, local, todo, bar), out, summary)
            finally:
                bar.close()
                for actor in actors:
                    ray.kill(actor, no_restart=True)
                wait_gone([pid for pid, here in zip(pids, local) if here])
    except KeyboardInterrupt as exc:
        log(f"{signals.describe(exc)}; the workers are stopped, finished sequences are kept in {out}; run "
            "the same command again to resume")
        save_summary(out, summary, log)
        return signals.exit_code(exc)


def wait_gone(pids: List[int], seconds: float = 10.0) -> None:
    """Wait for killed workers on this machine to exit (ray.kill returns at once), so that none
    writes into OUT/.partial/ after the run removed it and released OUT."""
    deadline = time.monotonic() + seconds
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break  # exited, not yet reaped by its raylet
            except OSError:
                break
            time.sleep(0.05)


def collect(pool: Pool, out: str, summary: dict) -> int:
    records = summary.setdefault("sequences", {})
    total, failed, saved = len(pool.queue), 0, True
    started, frames = time.perf_counter(), 0
    this_run = []
    for sequence, kind, value in pool.events():
        name = sequence.name
        if kind == "done":
            if pool.deaths[name]:
                value["worker_restarts"] = pool.deaths[name]
            frames += value["frames"]
            this_run.append(value)
            record_done(records, name, value, log, f", worker PID {value['worker']['pid']}")
        elif kind == "failed":
            failed += 1
            record_failed(out, records, name, value, log)
        else:
            continue
        saved = save_summary(out, summary, log) and saved
    seconds = time.perf_counter() - started  # from the workers' start (ready) to the last video's end
    summary["ray"].update({"segment_seconds": round(seconds, 3),
                           "videos_per_minute": round(60 * (total - failed) / seconds, 2),
                           "frames_per_second": round(frames / seconds, 2)})
    saved = save_summary(out, summary, log) and saved
    log(closing_line(f"{total - failed} of {total} sequences done on Ray", failed, saved, this_run, " per worker"))
    return Exit.FAILED if failed or not saved else Exit.DONE

