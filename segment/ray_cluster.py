"""The Ray cluster of `hmmn-run --ray`: a private local one, or an existing one by address.

A private local cluster is started and stopped by this run alone: `address="local"` (never a
cluster found through RAY_ADDRESS or a temp folder), its own temp folder under /tmp, no
dashboard, the node on 127.0.0.1, token authentication with a token made for this run (unless
the caller set RAY_AUTH_MODE / RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH), so nothing is read from
or written to ~/.ray. Stopping it (`ray.shutdown()`) ends only its own processes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import sys
import tempfile
from typing import Callable, Optional

from hmmn_ref.errors import HMMNError

AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


class ClusterError(HMMNError):
    """Ray is missing, a cluster cannot be started or reached, or it lacks the resources asked."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'hmmn-deploy[ray]' (or pip install 'ray>=2.60')") from None
    return ray


class Cluster:
    """`with Cluster(address, ...) as ray:` -> the ray module, connected. address None: a
    private local cluster with `num_cpus` CPUs; otherwise an existing cluster ('auto' or
    'host:port', 'ray://host:10001')."""

    def __init__(self, address: Optional[str], num_cpus: int, log: Callable[[str], None]) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.log = log
        self.ray = None
        self.temp: Optional[str] = None
        self.saved_env: dict = {}
        self.reused = False

    def __enter__(self):
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            return self._reuse(sys.modules["ray"])
        if self.address is None:
            self._private_token()
        ray = import_ray()
        try:
            if self.address is None:
                self._start_local(ray)
            elif self.address != "auto" and "://" not in self.address and not reachable(self.address):
                raise ClusterError(f"nothing answers at --ray {self.address} (Ray would wait minutes for it); give "
                                   "the head node's GCS address (HOST:6379 by default; `ray status` on the head node "
                                   "shows it), or --ray alone for a local cluster")
            elif self.address.rsplit(":", 1)[0] in ("127.0.0.1", "localhost"):
                with loopback():  # a cluster on this machine's loopback: this driver's node is 127.0.0.1 too
                    ray.init(address=self.address, _node_ip_address="127.0.0.1", log_to_driver=False,
                             configure_logging=False)
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        except ClusterError:
            self.__exit__(None, None, None)
            raise
        except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError, ValueError ...
            self.__exit__(None, None, None)
            if self.address is None:
                where, hint = "start a local Ray cluster", ""
            else:
                where = f"connect to the Ray cluster {self.address!r}"
                hint = ("; check the address (ray status on the head node) and, with token authentication, that "
                        "RAY_AUTH_TOKEN or ~/.ray/auth_token holds the cluster's token")
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ClusterError(f"cannot {where}: {type(exc).__name__}: {first}{hint}") from None
        except BaseException:  # Ctrl-C while starting: stop what was started
            self.__exit__(None, None, None)
            raise
        self.ray = ray
        return ray

    def _reuse(self, ray):
        """This process is already connected (a program that calls hmmn-run's main): use that
        connection when it is the cluster asked for, and leave it connected."""
        connected = ray.get_runtime_context().gcs_address
        if self.address not in ("auto", connected):
            asked = "a local cluster of its own" if self.address is None else repr(self.address)
            raise ClusterError(f"this process is already connected to the Ray cluster {connected!r}, so it cannot "
                               f"use {asked}; pass --ray {connected}")
        self.reused = True
        return ray

    def _private_token(self) -> None:
        """Token authentication with a token of this run's own, in the environment its processes inherit."""
        self.saved_env = {name: os.environ.get(name) for name in AUTH_VARIABLES}
        if any(self.saved_env.values()):
            return  # the caller's choice
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        if "ray" in sys.modules:  # Ray read its settings when imported: have it read them again
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()

    def _start_local(self, ray) -> None:
        self.temp = tempfile.mkdtemp(prefix="hmmn-ray-", dir="/tmp")  # short: Ray's socket paths live under it
        with loopback():
            ray.init(address="local", _temp_dir=self.temp, _node_ip_address="127.0.0.1", include_dashboard=False,
                     num_cpus=self.num_cpus, log_to_driver=False, configure_logging=False)

    def __exit__(self, *exc_info) -> None:
        if self.reused:
            return
        ray = self.ray or import_ray()
        if ray.is_initialized():
            ray.shutdown()
        self.ray = None
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved_env = {}
        if self.temp:
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None


def reachable(address: str, seconds: float = 5.0) -> bool:
    """Whether something accepts a TCP connection at HOST:PORT (a wrong address fails at once)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=seconds):
            return True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def loopback():
    """ray.init turns 127.0.0.1 into the machine's network address unless Ray believes it runs a
    single-machine cluster (its setting for Windows and macOS): say so while it starts."""
    from ray._private import ray_constants

    multi_node = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if multi_node is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if multi_node is not None:
            ray_constants.ENABLE_RAY_CLUSTER = multi_node


def check_resources(ray, workers: int, cpus: float, gpus: float) -> None:
    """ClusterError when the cluster can never place `workers` actors of this size (they would wait forever)."""
    have = ray.cluster_resources()
    for name, each in (("CPU", cpus), ("GPU", gpus)):
        if each and have.get(name, 0) < workers * each:
            raise ClusterError(f"--workers {workers} needs {workers * each:g} {name}s ({each:g} each) but the cluster "
                               f"has {have.get(name, 0):g}; give fewer --workers, or add nodes")
