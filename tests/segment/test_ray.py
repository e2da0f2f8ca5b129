"""hmmn-run --ray: a whole video per Ray worker, masks identical to a plain run, faults.

One private local cluster for the module (segment.ray_cluster.Cluster, on 127.0.0.1, its own
temp folder and token), which `--ray ADDRESS` runs use: in this process, or from a second
driver process. Generated 96x128 videos of 12-16 frames, the built-in small model (`--config
small`) on torch with one thread per worker (a 2-core machine).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import ray  # noqa: F401  (the test extra installs it: a missing Ray fails here, it is not skipped)

from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.segment import cli
from hmmn_deploy.segment.ray_cluster import Cluster
from hmmn_ref.media import davis_palette
from hmmn_ref.sample_video import make_sample_video

NAMES = ["v0", "v1", "v2", "v3"]
TORCH = ["--backend", "torch", "--config", "small", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def address():
    with Cluster(None, 2, print) as ray:
        yield ray.get_runtime_context().gcs_address
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    """(dataset root, a plain run's output folder)."""
    root = tmp_path_factory.mktemp("davis") / "data"
    write_davis(str(root), [(name, 100 + i) for i, name in enumerate(NAMES)], 14, 96, 128, "val")
    plain = root.parent / "plain"
    assert cli.main([str(root), "-o", str(plain)] + TORCH) == 0
    return root, plain


def pngs(folder: pathlib.Path) -> dict:
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder)) if n.endswith(".png")}


def assert_same_masks(out: pathlib.Path, plain: pathlib.Path, names=NAMES) -> None:
    for name in names:
        got, want = pngs(out / name), pngs(plain / name)
        assert list(got) == list(want), name
        for frame in want:  # compared as labels: the same ids on every pixel, the same palette
            a, b = Image.open(out / name / frame), Image.open(plain / name / frame)
            assert a.getpalette() == b.getpalette() and np.array_equal(np.asarray(a), np.asarray(b)), (name, frame)


def summary_of(out: pathlib.Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def ray_workers() -> list:
    """PIDs of this process's descendants that are hmmn-run's Ray workers (ray::VideoWorker)."""
    parent, workers = {}, []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::VideoWorker"):
                    workers.append(pid)
        except OSError:
            continue
    mine = []
    for pid in workers:
        ancestor = parent.get(pid, 0)
        while ancestor > 1 and ancestor != os.getpid():
            ancestor = parent.get(ancestor, 0)
        if ancestor == os.getpid():
            mine.append(pid)
    return mine


def test_two_workers_same_masks_as_a_plain_run(address, davis, tmp_path):
    root, plain = davis
    out = tmp_path / "out"
    assert cli.main([str(root), "-o", str(out), "--ray", address, "--workers", "2"] + TORCH) == 0
    assert_same_masks(out, plain)
    summary = summary_of(out)
    assert summary["ray"]["workers"] == 2 and summary["frames"] == 14 * len(NAMES)
    assert summary["ray"]["videos_per_minute"] > 0 and summary["ray"]["frames_per_second"] > 0
    records = summary["sequences"]
    assert all(records[n]["status"] == "done" and records[n]["frames"] == 14 for n in NAMES)
    assert len({records[n]["worker"]["pid"] for n in NAMES}) == 2  # both workers segmented videos
    assert all(records[n]["worker"]["peak_host_memory_mb"] > 0 for n in NAMES)
    assert sorted(os.listdir(out)) == ["summary.json"] + NAMES  # no .partial, no lock left
    deadline = time.monotonic() + 20
    while ray_workers() and time.monotonic() < deadline:  # ray.kill ends them; the processes exit soon after
        time.sleep(0.2)
    assert ray_workers() == []


def test_the_private_cluster_listens_on_loopback_only(address):
    """Every address the cluster advertises is 127.0.0.1 (ray.init turns it into the network address unless told)."""
    import ray

    assert address.startswith("127.0.0.1:")
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}


def test_a_wrong_address_is_refused_at_once(address):
    """Ray itself would wait minutes for a GCS that is not there."""
    from hmmn_deploy.segment.ray_cluster import reachable

    assert reachable(address)
    assert not reachable("127.0.0.1:1") and not reachable("no-port")


def test_a_killed_worker_is_restarted_and_its_video_redone(address, davis, tmp_path, capfd):
    root, plain = davis
    out = tmp_path / "out"
    codes = []
    run = threading.Thread(target=lambda: codes.append(
        cli.main([str(root), "-o", str(out), "--ray", address, "--workers", "2"] + TORCH)))
    run.start()
    killed = None
    deadline = time.monotonic() + 240  # generous: the machine may be shared
    while killed is None and run.is_alive() and time.monotonic() < deadline:
        partial = out / ".partial"
        busy = [n for n in NAMES if (partial / n / "masks").is_dir() and len(os.listdir(partial / n / "masks")) >= 3]
        workers = ray_workers()
        if busy and len(workers) == 2:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    run.join(300)
    assert killed is not None, "no video was seen mid-way to kill its worker"
    assert codes == [0]
    err = capfd.readouterr().err
    assert "died after" in err and "redoing the video from its first frame" in err
    assert_same_masks(out, plain)
    records = summary_of(out)["sequences"]
    assert sum(r.get("worker_restarts", 0) for r in records.values()) == 1
    assert all(r["status"] == "done" and r["frames"] == 14 for r in records.values())
    assert killed not in {r["worker"]["pid"] for r in records.values() if r.get("worker_restarts")}


def test_a_corrupt_frame_fails_its_video_alone(address, davis, tmp_path, capfd):
    root, plain = davis
    data = tmp_path / "data"
    shutil.copytree(root, data)
    (data / "JPEGImages/480p/v2/00005.jpg").write_bytes(b"not a JPEG")
    out = tmp_path / "out"
    assert cli.main([str(data), "-o", str(out), "--ray", address, "--workers", "2"] + TORCH) == 1
    records = summary_of(out)["sequences"]
    assert records["v2"]["status"] == "failed" and "00005" in records["v2"]["error"]
    assert not (out / "v2").exists() and not (out / ".partial").exists()
    assert_same_masks(out, plain, [n for n in NAMES if n != "v2"])
    assert "v2: FAILED" in capfd.readouterr().err


def default_sigint() -> None:
    """In the driver child before exec: SIGINT back to its default. A child inherits an ignored
    SIGINT, and Python then installs no KeyboardInterrupt handler. Once, in a whole-suite run,
    both Ctrl-C tests' drivers ran to the end (exit 0) as such a driver would; alone they pass.
    The cause was not pinned down; this makes the tests independent of the parent's state."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_driver_then_resume(address, davis, tmp_path):
    """A second driver process on the same cluster, Ctrl-C after the first video; the rerun
    skips what is published and does the rest."""
    root, plain = davis
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hmmn_deploy.segment.cli", str(root), "-o", str(out), "--ray", address,
               "--workers", "1"] + TORCH
    driver = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 240
    while not any((out / n).is_dir() for n in NAMES) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "interrupted; the workers are stopped" in err
    done = [n for n in NAMES if (out / n).is_dir()]
    assert 1 <= len(done) < len(NAMES)
    assert not (out / ".partial").exists() and not (out / ".hmmn-run.lock").exists()
    assert_same_masks(out, plain, done)
    assert cli.main([str(root), "-o", str(out), "--ray", address, "--workers", "2"] + TORCH) == 0
    assert_same_masks(out, plain)
    assert all(r["status"] == "done" for r in summary_of(out)["sequences"].values())


def write_youtube_vos(root: pathlib.Path) -> None:
    """Two videos; in 'late' the second object joins on the 5th frame (its own annotation)."""
    for seed, name in enumerate(("early", "late")):
        video, labels = make_sample_video(12, 96, 128, num_objects=2, seed=20 + seed)
        (root / "JPEGImages" / name).mkdir(parents=True)
        (root / "Annotations" / name).mkdir(parents=True)
        for t in range(12):
            Image.fromarray(video[t]).save(root / "JPEGImages" / name / f"{t * 5:05d}.jpg", quality=95)
        first = labels[0] if name == "early" else np.where(labels[0] == 1, 1, 0)
        for t, mask in ((0, first), (4, labels[4])) if name == "late" else ((0, first),):
            image = Image.fromarray(mask.astype(np.uint8))
            image.putpalette(davis_palette())
            image.save(root / "Annotations" / name / f"{t * 5:05d}.png")


def test_youtube_vos_objects_joining_later(address, tmp_path):
    root = tmp_path / "ytvos"
    write_youtube_vos(root)
    plain, out = tmp_path / "plain", tmp_path / "out"
    assert cli.main([str(root), "-o", str(plain), "--save-probs"] + TORCH) == 0
    assert cli.main([str(root), "-o", str(out), "--save-probs", "--ray", address, "--workers", "2"] + TORCH) == 0
    assert_same_masks(out, plain, ["early", "late"])
    for name in sorted(os.listdir(plain / "probs/late")):
        a, b = np.load(out / "probs/late" / name), np.load(plain / "probs/late" / name)
        assert a["object_ids"].tolist() == b["object_ids"].tolist() and np.array_equal(a["probs"], b["probs"])
    summary = summary_of(out)
    assert summary["kind"] == "youtube-vos" and summary["sequences"]["late"]["objects"] == [1, 2]


def test_arguments_and_resources_checked_before_any_video(address, davis, tmp_path, capfd):
    root, _ = davis
    out = tmp_path / "out"
    assert cli.main([str(root), "-o", str(out), "--workers", "2"] + TORCH) == 2
    assert "add --ray" in capfd.readouterr().err
    assert cli.main([str(root), "-o", str(out), "--ray", "--gpus-per-worker", "1"] + TORCH) == 2
    assert "add --device cuda" in capfd.readouterr().err
    assert cli.main([str(root), "-o", str(out), "--ray", address, "--workers", "3"] + TORCH) == 2
    assert "needs 3 CPUs (1 each) but the cluster has 2" in capfd.readouterr().err
    assert cli.main([str(root), "-o", str(out), "--ray"] + TORCH) == 2  # a second cluster from this process
    assert f"pass --ray {address}" in capfd.readouterr().err
    assert not out.exists()


def test_live_stream_same_masks_in_order_and_refused_after_a_restart(address):
    from hmmn_deploy.models import ModelChoice, open_session
    from hmmn_deploy.segment.ray_stream import LiveStream, StreamLost

    video, labels = make_sample_video(9, 96, 128, num_objects=2, seed=31)
    choice = ModelChoice(backend="torch", config="small", threads=1)
    session, _ = open_session(choice, None, print)
    state = session.start(video[0], labels[0])
    want = [session.step(state, frame).labels for frame in video[1:]]
    stream = LiveStream(choice, max_in_flight=3)
    try:
        assert stream.start(video[0], labels[0]) == [1, 2]
        got = []
        for frame in video[1:]:
            got.extend(stream.push(frame))
            assert len(stream.pending) <= 3  # bounded
        got.extend(stream.finish())
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
        first = stream.pid()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # Ray restarts the actor: it holds no stream now
            try:
                if stream.pid() != first:
                    break
            except Exception:
                time.sleep(0.2)
        list(stream.push(video[1]))
        with pytest.raises(StreamLost, match="restarted"):
            list(stream.finish())  # never a mask computed from an empty bank
        with pytest.raises(StreamLost, match="start"):
            list(stream.push(video[2]))
        stream.start(video[0], labels[0])
        assert np.array_equal(next(iter(list(stream.push(video[1])) + list(stream.finish()))), want[0])
    finally:
        stream.close()


def test_a_worker_that_does_not_share_out_or_the_inputs_says_so(tmp_path):
    """The multi-node check, on the worker class itself: a marker the driver wrote in OUT, the inputs."""
    from hmmn_deploy.models import ModelChoice
    from hmmn_deploy.segment.ray_worker import VideoWorker
    from hmmn_deploy.segment.sequence import SequenceOptions

    worker = VideoWorker(ModelChoice(backend="torch", config="small", threads=1), None, str(tmp_path), SequenceOptions())
    marker = tmp_path / ".partial" / ".ray-check"
    state = worker.ready(str(marker), [str(tmp_path / "data"), None])
    assert len(state["problems"]) == 2 and state["pid"] == os.getpid()
    assert "put OUT on storage every node mounts" in state["problems"][0]
    assert "data' does not exist here" in state["problems"][1]
    marker.parent.mkdir()
    marker.write_text("")
    (tmp_path / "data").mkdir()
    assert worker.ready(str(marker), [str(tmp_path / "data"), None])["problems"] == []


def test_ctrl_c_stops_the_local_cluster_the_run_started(address, davis, tmp_path):
    """`--ray` alone: a cluster of its own even with RAY_ADDRESS set, a token of its own with
    nothing written to $HOME; Ctrl-C (to the process group, as a terminal sends it) exits 130
    and leaves no Ray process and no temp folder behind."""
    import glob

    root, plain = davis
    out, home = tmp_path / "out", tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(RAY_ADDRESS=address, HOME=str(home))
    before = set(glob.glob("/tmp/hmmn-ray-*"))
    command = [sys.executable, "-m", "hmmn_deploy.segment.cli", str(root), "-o", str(out), "--ray"] + TORCH
    driver = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                              preexec_fn=default_sigint)
    deadline = time.monotonic() + 240
    while not any((out / n).is_dir() for n in NAMES) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    started = set(glob.glob("/tmp/hmmn-ray-*")) - before
    os.killpg(driver.pid, signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "1 Ray worker (a local cluster)" in err
    assert len(started) == 1 and not os.path.exists(started.pop())
    assert not (home / ".ray").exists()
    done = [n for n in NAMES if (out / n).is_dir()]
    assert done and sorted(os.listdir(out)) == ["summary.json"] + done
    assert_same_masks(out, plain, done)
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read()
        except OSError:
            continue
        if b"hmmn-ray-" in line and not any(d.encode() in line for d in before):
            leftovers.append(line[:120])
    assert leftovers == []
