"""A real multi-node Ray cluster on this machine, for tests: one ``ray start --block`` process per node.

Every node listens on 127.0.0.1 ports picked free, keeps its own temp dir, and runs without token
authentication (RAY_AUTH_MODE=disabled). We own each node's process tree by PID, so ``stop()`` ends
exactly what it started (never ``ray stop``, which would end other people's Ray too), and
``kill_raylet(i)`` takes one node down the way a lost machine does. Health checks are tightened so
the head notices a dead node in about a second instead of ~12 s.

    with RayCluster(tmp_path, nodes=2) as cluster:
        sweeper.launch(spec, address=cluster.address)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 2,
}
PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster_env(extra_path: list[str] | None = None) -> dict[str, str]:
    """The environment Ray's processes (and so its workers) get: sweeper, tests and objectives importable."""
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / "tests"), *(extra_path or []), env.get("PYTHONPATH", "")]
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONUNBUFFERED="1",
    )
    env.pop("RAY_ADDRESS", None)
    return env


class RayCluster:
    """A head and ``nodes - 1`` worker nodes, each with ``cpus`` CPUs and optional custom resources."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        nodes: int = 2,
        cpus: int = 1,
        resources: dict[str, float] | None = None,
        extra_path: list[str] | None = None,
        system_config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ):
        # Unix socket paths must stay short (~107 bytes), so temp dirs live under /tmp, not tmp_path.
        self.root = Path(tempfile.mkdtemp(prefix="swc-", dir="/tmp"))
        self.workdir = workdir or self.root
        self.env = {**cluster_env(extra_path), **(env or {})}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = free_port()
        self.client_address = f"ray://127.0.0.1:{self.client_port}"  # Ray Client
        self.procs: list[subprocess.Popen[bytes]] = []
        self._args: list[tuple[bool, int | None, int, dict[str, float] | None]] = []  # add_node's, per node
        self._want, self._cpus, self._resources = nodes, cpus, resources or {}
        self._system_config = {**FAST_HEALTH_CHECKS, **(system_config or {})}

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> RayCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90.0, workers: list[dict[str, Any]] | None = None) -> None:
        """Start the head and the worker nodes (``workers``: add_node keyword arguments for each)."""
        self.add_node(head=True)
        specs = workers if workers is not None else [{} for _ in range(self._want - 1)]
        for kwargs in specs:
            self.add_node(**kwargs)
        self.wait_for_nodes(1 + len(specs), timeout)

    def add_node(
        self,
        *,
        head: bool = False,
        cpus: int | None = None,
        gpus: int = 0,
        resources: dict[str, float] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start one node; ``gpus`` are declared, not detected, so placement is testable anywhere."""
        self.procs.append(self._spawn(len(self.procs), head, cpus, gpus, resources))
        self._args.append((head, cpus, gpus, resources))
        return self.procs[-1]

    def _spawn(
        self, i: int, head: bool, cpus: int | None, gpus: int, resources: dict[str, float] | None
    ) -> subprocess.Popen[bytes]:
        temp = self.root / f"n{i}"
        temp.mkdir(parents=True, exist_ok=True)
        args = [
            RAY,
            "start",
            "--block",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
            f"--num-cpus={self._cpus if cpus is None else cpus}",
            f"--num-gpus={gpus}",
            "--node-ip-address=127.0.0.1",
            f"--resources={json.dumps(resources or self._resources)}",
        ]
        args += [f"{flag}={free_port()}" for flag in PORT_FLAGS]
        if head:
            args += [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--ray-client-server-port={self.client_port}",
                f"--system-config={json.dumps(self._system_config)}",
            ]
        else:
            args += [f"--address={self.address}"]
        with open(self.workdir / f"ray-node-{i}.log", "ab") as log:  # the process holds its own copy
            return subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_for_nodes(self, n: int, timeout: float = 90.0) -> None:
        """Block until ``n`` nodes are alive (asked of the head in a short-lived subprocess)."""
        deadline = time.monotonic() + timeout
        code = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='error');"
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        alive, restarts = -1, 2
        while time.monotonic() < deadline:
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and i > 0 and restarts > 0:
                    # Ray gives a joining raylet a fixed 30 s to register; on a loaded machine it
                    # can miss that and exit 1. The head is up, so start that node again.
                    restarts -= 1
                    with contextlib.suppress(ProcessLookupError):  # what it left behind: its group is ours
                        os.killpg(proc.pid, signal.SIGKILL)
                    self.procs[i] = self._spawn(i, *self._args[i])
                elif proc.poll() is not None:
                    raise RuntimeError(
                        f"ray node {i} exited with {proc.returncode}; see "
                        f"{self.workdir / f'ray-node-{i}.log'}"
                    )
            out = subprocess.run(
                [sys.executable, "-c", code, self.address],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip().isdigit():
                alive = int(out.stdout.strip())
                if alive >= n:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"only {alive} of {n} Ray nodes came up in {timeout:.0f} s")

    def logs(self, pattern: str, lines: int = 30) -> str:
        """The last ``lines`` of every head log matching ``pattern``: what a failed test should show."""
        out = []
        for path in sorted(self.root.glob(f"n0/session_*/logs/{pattern}")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out) or f"(no head log matches {pattern})"

    def pids(self, i: int) -> list[int]:
        """PIDs of node ``i``'s process tree (its ``ray start``, raylet, workers, ...)."""
        import psutil

        try:
            top = psutil.Process(self.procs[i].pid)
            return [top.pid, *(c.pid for c in top.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def raylet_pid(self, i: int) -> int:
        import psutil

        for pid in self.pids(i):
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).name() == "raylet":
                    return pid
        raise LookupError(f"node {i} has no raylet process")

    def kill_raylet(self, i: int) -> int:
        """SIGKILL node ``i``'s raylet. A worker whose raylet died still finishes its current task
        and hands the result to the driver (measured: Ray 2.60), so nothing in flight is lost."""
        pid = self.raylet_pid(i)
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_node(self, i: int) -> int:
        """Lose node ``i`` as when its machine dies: SIGKILL its raylet, then every other process
        of the node (its workers and the runs in them). Returns the raylet's PID."""
        tree = self.pids(i)
        pid = self.kill_raylet(i)
        for other in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(other, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        """End every process this cluster started, by PID (children first), and its temp dirs."""
        import psutil

        trees = [self.pids(i) for i in range(len(self.procs))]
        for tree in reversed(trees):
            for pid in reversed(tree):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for tree in trees:
            for pid in tree:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                    psutil.Process(pid).wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)
