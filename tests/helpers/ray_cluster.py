"""A real Ray cluster on the loopback address for tests: a head node and a second node, each its own
``ray start --block`` process group, so teardown ends exactly the processes it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"
OBJECT_STORE_BYTES = 100 * 2**20
START_TIMEOUT_S = 90
HEAD_IP = "127.0.0.2"
"""Ray turns 127.0.0.1 into the machine's outward address; other loopback addresses it keeps as given,
so every node (127.0.0.2, 127.0.0.3, ...) and every connection stays inside 127.0.0.0/8."""


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports nobody listens on right now (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def ray_env() -> dict[str, str]:
    """The environment of Ray processes and drivers: this checkout's sources, offline, no usage stats."""
    paths = [str(REPOSITORY / "src"), str(REPOSITORY / "tests")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "HF_HUB_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "TQDM_DISABLE": "1",
    }


def _node_ports() -> list[str]:
    manager, objects, client, agent, agent_grpc, metrics, env_agent = free_ports(7)
    return [
        f"--node-manager-port={manager}",
        f"--object-manager-port={objects}",
        f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={env_agent}",
        "--min-worker-port=0",  # workers bind ports the system picks
        "--max-worker-port=0",
    ]


@dataclass
class Cluster:
    """A running loopback cluster: its address, temp folder and the process groups it owns."""

    address: str
    temp_dir: Path
    groups: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pids(self) -> set[int]:
        """Every live process of this cluster (the sessions of its ``ray start`` processes)."""
        sessions = {process.pid for process in self.groups}
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with suppress(OSError):
                    if os.getsid(int(entry.name)) in sessions:
                        found.add(int(entry.name))
        return found

    def actor_pids(self, name: str) -> list[int]:
        """The processes of this cluster whose title names ``name`` (Ray titles actors by class)."""
        found = []
        for pid in self.pids():
            with suppress(OSError):
                if name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    found.append(pid)
        return sorted(found)

    def stop(self) -> None:
        """End this cluster's process groups: SIGTERM, then SIGKILL what is left."""
        for process in self.groups:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.groups:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(RAY), "start", "--block", *args],
            env=ray_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex((HEAD_IP, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(
        f"the Ray head did not listen on {port} in {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}"
    )


@contextmanager
def local_ray(cpus: int = 2) -> Iterator[None]:
    """``ray.init()`` in this process: a fresh local Ray on the loopback address, shut down on exit."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    temp_dir = tempfile.mkdtemp(prefix="oe-ray-", dir="/tmp")
    ray.init(
        address="local",
        num_cpus=cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        _node_ip_address=HEAD_IP,
        _temp_dir=temp_dir,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextmanager
def loopback_cluster(nodes: int = 2) -> Iterator[Cluster]:
    """Start a head node and ``nodes - 1`` more on 127.0.0.1, one CPU each; stop them all on exit."""
    temp_dir = Path(tempfile.mkdtemp(prefix="oe-ray-", dir="/tmp"))
    port = free_ports(1)[0]
    common = [
        "--num-cpus=1",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
    ]
    cluster = Cluster(f"{HEAD_IP}:{port}", temp_dir)
    try:
        head = [
            "--head",
            f"--node-ip-address={HEAD_IP}",
            f"--port={port}",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
            *common,
            *_node_ports(),
        ]
        cluster.groups.append(_start(head, temp_dir / "head.log"))
        _wait_for_port(port, cluster.groups[0], temp_dir / "head.log")
        for index in range(1, nodes):
            more = [f"--address={cluster.address}", f"--node-ip-address=127.0.0.{2 + index}"]
            more += [*common, *_node_ports()]
            cluster.groups.append(_start(more, temp_dir / f"node{index}.log"))
        waiter = [sys.executable, "-m", "helpers.ray_jobs", "wait", cluster.address, str(nodes)]
        subprocess.run(waiter, env=ray_env(), check=True, timeout=START_TIMEOUT_S, capture_output=True)
        yield cluster
    finally:
        cluster.stop()
